"""Fixed-size chunks of a leading axis, for bounded-memory scans over samples or examples."""
from __future__ import annotations

import jax
import jax.numpy as jnp


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
