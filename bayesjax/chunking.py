"""Fixed-size chunks of a leading axis, for bounded-memory scans over samples or examples.

Two ways to cut an axis of length N into chunks of ``chunk_size``:

* interleaved (:func:`chunk_leading`): a reshaped (padded) copy whose chunk j
  holds entries ``j, j + num_chunks, ...``; a leading axis sharded over
  devices stays sharded within every chunk. For samples, which are small
  and may be sharded.
* contiguous (:func:`scan_chunks`, :func:`map_chunks`): one chunk of rows
  gathered per iteration of a ``lax.scan`` / ``lax.map``, nothing of the size
  of the data copied. For inputs and training data, which are large.

Chunk sizes come from a memory budget (:mod:`bayesjax.memory`).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from bayesjax.types import Array


def chunk_leading(tree, size: int, chunk_size: int):
    """Cuts every leaf's leading axis (of length ``size``) into interleaved chunks.

    The axis is padded to ``num_chunks * chunk_size`` by repeating its last
    entry, then chunk j holds entries ``j, j + num_chunks, j + 2 num_chunks,
    ...``. Interleaving keeps a leading axis that is sharded over devices
    sharded within every chunk, so a scan over chunks runs on each device's
    own share and never gathers the axis to one device.

    Returns:
      Leaves ``[num_chunks, chunk_size, ...]`` and a mask ``[num_chunks,
      chunk_size]`` that is False on padded entries.
    """
    num_chunks = -(-size // chunk_size)
    pad = num_chunks * chunk_size - size

    def interleave(a):
        padded = jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)])
        return jnp.swapaxes(padded.reshape((chunk_size, num_chunks) + a.shape[1:]), 0, 1)

    mask = (jnp.arange(num_chunks * chunk_size) < size).reshape(chunk_size, num_chunks).T
    return jax.tree.map(interleave, tree), mask


def unchunk_leading(chunked, size: int):
    """Inverse of :func:`chunk_leading` on ``[num_chunks, chunk_size, ...]`` leaves: the first ``size`` entries."""
    return jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1).reshape((-1,) + a.shape[2:])[:size], chunked)


def chunking(num_examples: int, chunk_size: int) -> tuple[int, int]:
    """``(chunk, num_chunks)`` for ``num_examples`` split into contiguous chunks of at most ``chunk_size``."""
    chunk = max(1, min(int(chunk_size), num_examples))
    return chunk, -(-num_examples // chunk)


def _take_chunk(arrays, index: Array, chunk: int, num_examples: int):
    rows = index * chunk + jnp.arange(chunk)
    mask = rows < num_examples
    rows = jnp.minimum(rows, num_examples - 1)
    return jax.tree.map(lambda a: jnp.take(a, rows, axis=0), arrays), mask


def scan_chunks(fn: Callable, init, arrays, chunk_size: int):
    """``fn(carry, chunk_arrays, mask) -> carry`` folded over contiguous chunks of ``arrays`` (leading axis).

    One chunk is gathered at a time inside a ``lax.scan``: no padded copy of
    the data is made. ``mask`` marks the real rows of the (last) chunk, whose
    padding repeats the last row.

    Example:
      >>> import jax.numpy as jnp
      >>> from bayesjax.chunking import scan_chunks
      >>> float(scan_chunks(lambda total, x, keep: total + jnp.sum(jnp.where(keep, x, 0.0)), 0.0,
      ...                   jnp.arange(10.0), chunk_size=4))
      45.0
    """
    num_examples = jax.tree.leaves(arrays)[0].shape[0]
    chunk, num_chunks = chunking(num_examples, chunk_size)
    if num_chunks == 1:
        return fn(init, arrays, jnp.ones((num_examples,), bool))

    def body(carry, index):
        chunk_arrays, mask = _take_chunk(arrays, index, chunk, num_examples)
        return fn(carry, chunk_arrays, mask), None

    carry, _ = jax.lax.scan(body, init, jnp.arange(num_chunks))
    return carry


def map_chunks(fn: Callable, arrays, chunk_size: int):
    """``fn(chunk_arrays) -> outputs`` (leading axis = chunk) over contiguous chunks, concatenated.

    Example:
      >>> import jax.numpy as jnp
      >>> from bayesjax.chunking import map_chunks
      >>> map_chunks(lambda x: 2 * x, jnp.arange(5), chunk_size=2).tolist()
      [0, 2, 4, 6, 8]
    """
    num_examples = jax.tree.leaves(arrays)[0].shape[0]
    chunk, num_chunks = chunking(num_examples, chunk_size)
    if num_chunks == 1:
        return fn(arrays)
    outputs = jax.lax.map(lambda index: fn(_take_chunk(arrays, index, chunk, num_examples)[0]),
                          jnp.arange(num_chunks))
    return jax.tree.map(lambda o: o.reshape((num_chunks * chunk,) + o.shape[2:])[:num_examples], outputs)
