"""Compile time against run time: programs that run for milliseconds compile without LLVM's optimizations.

A cold Laplace fit, a GLM predictive or a draw of posterior samples for a
small network is dominated by XLA's compile, and on CPU most of that compile
is LLVM's optimization of the fused elementwise kernels (threefry random
numbers are the worst, each drawn leaf adding its own share). For a small
MLP, compiling at ``xla_backend_optimization_level=0`` cuts the compile of a
fit, a GLM predictive or a draw of weight samples several-fold while the run
becomes slower by less than the compile saved. For large programs the trade
reverses: matrix products are library calls at either level but the
elementwise work is not, so at level 0 a large fit loses more run time than
it saves compiling. The measurements are in benchmarks/README.md ("Compile
optimization level").

So each entry point is jitted twice (:func:`jit`) and a call picks by an
estimate of its work (:func:`forward_macs` times examples times passes):
below :data:`SMALL_WORK` multiply-adds, on CPU, the quickly compiled twin.
Both compute the same function; only the machine code differs. Inside
another trace the optimized twin is used (compiler options apply to
top-level programs only; the enclosing one decides).
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import numpy as np

from bayesjax.types import Params

FAST_COMPILE = {"xla_backend_optimization_level": 0}
SMALL_WORK = 1e9
"""Multiply-adds below which compiling fast beats running fast.

At this size (the digits MLP on about 13,000 examples) a fit or a GLM
predictive costs about the same compiled either way, compile plus one run;
each further call would favour optimizing. Measured in benchmarks/README.md.
"""


class Twins(NamedTuple):
    """One function jitted at the default optimization level and at :data:`FAST_COMPILE`."""

    optimized: Callable
    fast: Callable

    def pick(self, work: float, *args) -> Callable:
        """The fast-compiling twin for less than :data:`SMALL_WORK` multiply-adds on CPU, else the optimized one.

        ``args``: the call's arguments; if any is traced, the optimized twin.
        """
        if work >= SMALL_WORK or jax.default_backend() != "cpu" or is_traced(args):
            return self.optimized
        return self.fast


def is_traced(tree) -> bool:
    """Whether any leaf of ``tree`` is a tracer (we are inside ``jit``, ``vmap``, ``grad``...)."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def jit(fn: Callable, **jit_kwargs) -> Twins:
    """``jax.jit(fn, **jit_kwargs)`` at both optimization levels (each with its own compile cache)."""
    return Twins(jax.jit(fn, **jit_kwargs), jax.jit(fn, compiler_options=FAST_COMPILE, **jit_kwargs))


def _normal(key, shape: tuple[int, ...], dtype):
    return jax.random.normal(jax.random.key(0) if key is None else key, shape, dtype)


_NORMAL = jit(_normal, static_argnums=(1, 2))


def normal(key, shape: tuple[int, ...], dtype, *context):
    """``jax.random.normal(key, shape, dtype)`` (``key=None``: ``jax.random.key(0)``, made inside the program).

    A threefry draw is some 20 integer operations per number, and compiling
    them optimized dominates a small draw on CPU: small draws compile fast.
    ``context``: other values of the caller, checked for tracers (see :meth:`Twins.pick`).
    """
    return _NORMAL.pick(20 * math.prod(shape), key, context)(key, shape, dtype)


def forward_macs(params: Params, input_shape: tuple[int, ...]) -> int:
    """An upper bound on one example's multiply-adds in a forward pass, from shapes alone.

    Every weight is used once per example, except that a kernel with more
    than two axes (a convolution) is applied at most once per input entry:
    dense networks are counted exactly, convolutional ones from above (so
    they lean to the optimized compile).
    """
    entries = math.prod(input_shape[1:])
    shapes = [np.shape(leaf) for leaf in jax.tree.leaves(params)]
    return sum(math.prod(shape) * (entries if len(shape) > 2 else 1) for shape in shapes)
