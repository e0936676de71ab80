"""Compile time against run time: programs that run for milliseconds compile without LLVM's optimizations.

A cold Laplace fit, a GLM predictive or a draw of posterior samples for a
small network is dominated by XLA's compile, and on CPU most of that compile
is LLVM's optimization of the fused elementwise kernels (threefry random
numbers are the worst: about 0.3 s per drawn leaf). Measured on the digits
MLP (64-50-50-10, 2 shared cores, process CPU time): the KFAC fit over 1,437 examples compiled in 0.53 s at the
default level and 0.32 s at ``xla_backend_optimization_level=0``, while its
run went from 14 to 22 ms; the GLM predictive over 1,797 points compiled in
0.82 s against 0.43 s and ran 60 against 110 ms; a threefry draw of
``[100, 10]`` normals compiled in 1.15 s against 0.15 s. Drawing 100 weight
samples from a mean-field q of the digits MLP (6,310 weights, one threefry
draw per leaf) compiled in 9.6 s against 1.6 s and ran in 14 against 97 ms;
10,000 draws ran in 2.3 against 9.5 s. For large programs the trade reverses: a diagonal fit on 20,000 x 784 inputs (256-wide MLP) ran
1.7 s longer at level 0 to save 0.3 s of compile, because matrix products are
library calls either way but the elementwise work is not.

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

Measured at this size (the digits MLP on 13,000 examples, 2 shared cores,
compile CPU time + run): KFAC fit 0.88 + 0.46 s fast against 1.43 + 0.33 s
optimized, diag fit 0.54 + 0.40 against 0.76 + 0.40, GLM predictive 0.67 +
0.79 against 0.99 + 0.56 (KFAC) and 0.57 + 0.95 against 0.96 + 0.46 (diag):
about even for one call, so each further call would favour optimizing.
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
    them optimized costs about a second on CPU: small draws compile fast.
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
