"""Fixed-size chunks of a leading axis, for bounded-memory scans over samples or examples."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def chunk_leading(tree, size: int, chunk_size: int):
    """Pads every leaf's leading axis (of length ``size``) to a multiple of ``chunk_size``.

    The padding repeats the last entry. Returns leaves reshaped to
    ``[num_chunks, chunk_size, ...]`` and a mask ``[num_chunks, chunk_size]``
    that is False on padded entries.
    """
    num_chunks = -(-size // chunk_size)
    pad = num_chunks * chunk_size - size
    chunks = jax.tree.map(
        lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)]).reshape(
            (num_chunks, chunk_size) + a.shape[1:]
        ),
        tree,
    )
    mask = (jnp.arange(num_chunks * chunk_size) < size).reshape(num_chunks, chunk_size)
    return chunks, mask
