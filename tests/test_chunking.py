"""bayesjax.chunking: interleaved and contiguous chunks give back the unchunked results."""
import jax.numpy as jnp
import numpy as np
import pytest

from bayesjax.chunking import chunk_leading, chunking, map_chunks, scan_chunks, unchunk_leading


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 10, 25])
def test_contiguous_chunks_equal_one_pass(chunk_size):
    x = jnp.arange(30.0).reshape(10, 3)
    total = scan_chunks(lambda t, xc, keep: t + jnp.sum(jnp.where(keep[:, None], xc**2, 0.0)), 0.0, x, chunk_size)
    np.testing.assert_allclose(total, jnp.sum(x**2), rtol=1e-6)
    doubled, rows = map_chunks(lambda xc: (2 * xc, jnp.sum(xc, axis=1)), x, chunk_size)
    np.testing.assert_array_equal(doubled, 2 * x)
    np.testing.assert_array_equal(rows, jnp.sum(x, axis=1))
    assert chunking(10, chunk_size) == (min(chunk_size, 10), -(-10 // min(chunk_size, 10)))


@pytest.mark.parametrize("chunk_size", [1, 3, 7])
def test_interleaved_chunks_round_trip(chunk_size):
    tree = {"a": jnp.arange(7.0), "b": jnp.arange(14.0).reshape(7, 2)}
    chunks, mask = chunk_leading(tree, 7, chunk_size)
    assert chunks["a"].shape == mask.shape == (-(-7 // chunk_size), chunk_size)
    assert int(mask.sum()) == 7
    back = unchunk_leading(chunks, 7)
    for key in tree:
        np.testing.assert_array_equal(back[key], tree[key])
