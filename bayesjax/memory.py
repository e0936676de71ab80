"""The memory budget of evaluation: bytes per example of a pass, and chunk sizes that fit a budget.

Every evaluation over large data (the predictive, the sweep's full-data
gradient, Laplace's curvature and GLM passes) runs over chunks of inputs and
samples small enough that one chunk's intermediates fit :data:`DEFAULT_BUDGET`
bytes (or a budget the caller passes). The cost of a pass is estimated
without running or compiling it: the function is traced to a jaxpr on
abstract inputs of two batch sizes and the peak of the bytes held alive
while its equations run in order (each value freed after its last use) is
read off (:func:`peak_bytes`); the difference per added example is the
per-example cost, the rest the fixed cost of one sample (its
parameter-sized intermediates). This models an unfused execution: an
estimate, not a bound. XLA allocates less where it fuses elementwise work
into a convolution or matmul (forward passes fuse the most), and may add
workspace of its own (convolution gradients), so keep the budget well
below the memory the process may take.
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
from jax.extend import core

DEFAULT_BUDGET = 512 * 2**20
"""Bytes of per-chunk intermediates an evaluation may hold at once (512 MiB)."""

CPU_STREAM_BUDGET = 64 * 2**20
"""The default budget of :func:`input_chunk` on the CPU (64 MiB), below :data:`DEFAULT_BUDGET`.

A streaming pass over inputs (Laplace's curvature and GLM predictive) runs no
faster in larger chunks on the CPU, and slower once a chunk leaves the
caches: the KFAC fit of the Fashion-MNIST MLP on 60,000 images took 0.87-0.97 s
in chunks of 2,048-4,096 images and 1.29-1.64 s in the 25,880 that 512 MiB
allows; the CNN's last-layer fit was the same within 15% from 64 to 1,190
images per chunk. Chunks of a few inputs waste the matmul units, so
:func:`input_chunk` does not go below :data:`MIN_INPUT_CHUNK` for it: the
CNN's all-weights KFAC sum took 7.2 s per 1,024 images in the 5 that 64 MiB
allows, 4.9 s in the 47 of 512 MiB (benchmarks/README.md, "Chunk sizes on
the CPU").
"""

MIN_INPUT_CHUNK = 128
"""Inputs per chunk below which more samples per chunk are not taken (small chunks waste the matmul units)."""

_PROBES = (256, 512)
"""The batches :func:`example_cost` traces: at 1 and 33 a fixed-size phase (KFAC's 3137 x 3137 factor of the
Fashion-MNIST CNN's head, 39 MB) was the peak at both and hid the per-example phase (its convolutions, 0.45 MB per
image), which then chose chunks 29 times too large."""


def _size(var) -> int:
    aval = var.aval
    if not hasattr(aval, "shape") or not hasattr(aval, "dtype"):
        return 0
    # aval.dtype.itemsize, not NumPy's: PRNG keys (a dropout key inside a model) have no NumPy dtype.
    return math.prod(aval.shape) * aval.dtype.itemsize


def _peak(jaxpr: core.Jaxpr) -> int:
    """Peak bytes alive running ``jaxpr``'s equations in order, inputs included, each value freed after its last use."""
    eqns = jaxpr.eqns
    last_use = {}
    for i, eqn in enumerate(eqns):
        for var in eqn.invars:
            if isinstance(var, core.Var):
                last_use[var] = i
    for var in jaxpr.outvars:
        if isinstance(var, core.Var):
            last_use[var] = len(eqns)
    held = set(jaxpr.invars) | set(jaxpr.constvars)
    live = sum(_size(v) for v in held)
    peak = live
    for i, eqn in enumerate(eqns):
        inner = max((_peak(sub) - sum(_size(v) for v in sub.invars) for sub in core.jaxprs_in_params(eqn.params)), default=0)
        outputs = [v for v in eqn.outvars if not isinstance(v, core.DropVar)]
        produced = sum(_size(v) for v in outputs)
        peak = max(peak, live + max(inner, produced))
        live += produced
        freed = {v for v in eqn.invars if isinstance(v, core.Var) and last_use.get(v) == i and v not in held}
        freed |= {v for v in outputs if v not in last_use}
        live -= sum(_size(v) for v in freed)
    return peak


def peak_bytes(fn: Callable, *args) -> int:
    """Estimated peak bytes of ``fn(*args)``, from its jaxpr (traced, never run or compiled).

    Args:
      fn: a jax-traceable function.
      *args: arrays, pytrees of arrays or ``jax.ShapeDtypeStruct`` (tracers too).

    Example:
      >>> import jax.numpy as jnp
      >>> from bayesjax.memory import peak_bytes
      >>> peak_bytes(lambda x: jnp.sum(jnp.exp(x)), jax.ShapeDtypeStruct((1000,), jnp.float32))  # x, exp(x), sum
      8004
    """
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), args)
    return _peak(jax.make_jaxpr(fn)(*abstract).jaxpr)


def _with_batch(x, batch: int) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct((batch,) + tuple(jnp.shape(x)[1:]), jnp.result_type(x))


def example_cost(fn: Callable, params, x) -> tuple[float, float]:
    """``(bytes per example, fixed bytes)`` of ``fn(params, x)`` over the leading axis of ``x`` (a pytree).

    Read from :func:`peak_bytes` at the batches :data:`_PROBES` (256 and
    512; tracing costs the same at any batch): the per-example cost is the
    slope, the fixed cost (parameter-sized intermediates of one sample) the
    rest. ``params`` is one sample (no leading sample axis).
    """
    small, large = (peak_bytes(fn, params, jax.tree.map(lambda a: _with_batch(a, b), x)) for b in _PROBES)
    per_example = max(1.0, (large - small) / (_PROBES[1] - _PROBES[0]))
    return per_example, max(0.0, small - _PROBES[0] * per_example)


def input_chunk(per_chunk: Callable, *arrays, budget: int | None = None) -> int:
    """Inputs per chunk of ``per_chunk(*chunks)`` (a pass over the leading axis of ``arrays``) that fit ``budget``.

    Only the per-example slope of :func:`example_cost` counts: what the
    function holds whatever the chunk (weights, factors it closes over)
    exists anyway, and counting it would shrink the chunk without bound.
    ``budget``: bytes; by default what fits :data:`DEFAULT_BUDGET`, and on
    the CPU (where larger chunks run slower) no more than fits
    :data:`CPU_STREAM_BUDGET` unless that is under :data:`MIN_INPUT_CHUNK`.

    Example:
      >>> import jax.numpy as jnp
      >>> from bayesjax.memory import input_chunk
      >>> input_chunk(lambda x: jnp.exp(x) @ jnp.ones((1000, 1000)), jnp.zeros((60_000, 1000)), budget=2**28)
      22369
    """
    per_example, _ = example_cost(lambda _, chunks: per_chunk(*chunks), None, arrays)
    num_inputs = jax.tree.leaves(arrays)[0].shape[0]
    if budget is not None:
        return chunk_sizes(1, num_inputs, per_example, budget=budget)[1]
    fitting = chunk_sizes(1, num_inputs, per_example)[1]
    if jax.default_backend() != "cpu":
        return fitting
    fast = chunk_sizes(1, num_inputs, per_example, budget=CPU_STREAM_BUDGET)[1]
    return min(fitting, max(fast, MIN_INPUT_CHUNK))


def chunk_sizes(
    num_samples: int,
    num_inputs: int,
    per_example: float,
    fixed: float = 0.0,
    *,
    budget: int | None = None,
    sample_chunk: int | None = None,
    input_chunk: int | None = None,
    sample_multiple: int = 1,
) -> tuple[int, int]:
    """``(samples per chunk, inputs per chunk)`` whose pass fits ``budget`` bytes.

    A chunk of k samples and b inputs costs ``k (b per_example + fixed)``.
    Samples per chunk are as many as fit with ``min(num_inputs, 128)`` inputs
    (:data:`MIN_INPUT_CHUNK`), rounded down to a multiple of
    ``sample_multiple`` (the devices the samples are sharded over; never
    below it); inputs per chunk then fill the budget. An explicit
    ``sample_chunk`` or ``input_chunk`` is kept (capped at the axis length).

    Args:
      num_samples: S (1 for a pass over inputs alone).
      num_inputs: N.
      per_example: bytes per sample and input (:func:`example_cost`).
      fixed: bytes per sample independent of the inputs.
      budget: bytes (default :data:`DEFAULT_BUDGET`).
      sample_chunk: a fixed number of samples per chunk, or ``None`` to choose.
      input_chunk: a fixed number of inputs per chunk, or ``None`` to choose.
      sample_multiple: the chosen sample chunk is a multiple of it (or all S).

    Example:
      >>> from bayesjax.memory import chunk_sizes
      >>> chunk_sizes(20, 10_000, per_example=1e6, budget=2**30)   # 1073 sample-inputs per chunk
      (8, 134)
    """
    budget = DEFAULT_BUDGET if budget is None else int(budget)
    if budget < 1:
        raise ValueError(f"memory budget must be a positive number of bytes, got {budget}")
    for name, value in (("chunk_size", sample_chunk), ("input_chunk_size", input_chunk)):
        if value is not None and int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if sample_chunk is None:
        fitting = int(budget // (min(num_inputs, MIN_INPUT_CHUNK) * per_example + fixed))
        sample_chunk = max(sample_multiple, fitting // sample_multiple * sample_multiple)
    samples = max(1, min(int(sample_chunk), num_samples))
    if input_chunk is None:
        input_chunk = int((budget / samples - fixed) // per_example)
    return samples, max(1, min(int(input_chunk), num_inputs))
