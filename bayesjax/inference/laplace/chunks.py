"""Chunks of the data for the curvature and GLM passes: one chunk gathered at a time, no padded copy.

The curvature sums (:mod:`.curvature`) and the functional covariance
(:mod:`.glm`) process ``N`` examples in chunks of a size chosen from a memory
budget, inside a ``lax.scan`` (folding) or ``lax.map`` (mapping) that gathers
one contiguous chunk per iteration; the last chunk is masked (folds) or cut
(maps). Unlike :func:`bayesjax.chunking.chunk_leading`, nothing of the size of
the data is ever copied.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from bayesjax.types import Array

DEFAULT_MEMORY_BUDGET = 64 * 2**20  # bytes of per-chunk intermediates
MAX_CHUNK = 4096


def chunking(num_examples: int, chunk_size: int) -> tuple[int, int]:
    """``(chunk, num_chunks)`` for ``num_examples`` split into chunks of at most ``chunk_size``."""
    chunk = max(1, min(int(chunk_size), num_examples))
    return chunk, -(-num_examples // chunk)


def auto_chunk_size(num_examples: int, bytes_per_example: float, budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """The largest chunk whose intermediates fit ``budget`` bytes (at least 1, at most 4096)."""
    return int(max(1, min(num_examples, MAX_CHUNK, budget // max(1.0, bytes_per_example))))


def _take_chunk(arrays, index: Array, chunk: int, num_examples: int):
    rows = index * chunk + jnp.arange(chunk)
    mask = rows < num_examples
    rows = jnp.minimum(rows, num_examples - 1)
    return jax.tree.map(lambda a: jnp.take(a, rows, axis=0), arrays), mask


def scan_chunks(fn: Callable, init, arrays, chunk_size: int):
    """``fn(carry, chunk_arrays, mask) -> carry`` folded over chunks of ``arrays`` (leading axis).

    One chunk is gathered at a time inside a ``lax.scan``: no padded copy of
    the data is made. ``mask`` marks the real rows of the (last) chunk.
    """
    num_examples = jax.tree.leaves(arrays)[0].shape[0]
    chunk, num_chunks = chunking(num_examples, chunk_size)
    if num_chunks == 1 and chunk == num_examples:
        return fn(init, arrays, jnp.ones((num_examples,), bool))

    def body(carry, index):
        chunk_arrays, mask = _take_chunk(arrays, index, chunk, num_examples)
        return fn(carry, chunk_arrays, mask), None

    carry, _ = jax.lax.scan(body, init, jnp.arange(num_chunks))
    return carry


def map_chunks(fn: Callable, arrays, chunk_size: int):
    """``fn(chunk_arrays) -> outputs`` (leading axis = chunk) over chunks, concatenated."""
    num_examples = jax.tree.leaves(arrays)[0].shape[0]
    chunk, num_chunks = chunking(num_examples, chunk_size)
    if num_chunks == 1 and chunk == num_examples:
        return fn(arrays)
    outputs = jax.lax.map(lambda index: fn(_take_chunk(arrays, index, chunk, num_examples)[0]),
                          jnp.arange(num_chunks))
    return jax.tree.map(lambda o: o.reshape((num_chunks * chunk,) + o.shape[2:])[:num_examples], outputs)
