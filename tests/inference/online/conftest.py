"""Fixtures the online-learning tests share: linear-Gaussian streams with correlated or batchwise-orthogonal designs."""
import numpy as np
import pytest

from tests.helpers.linear_gaussian import NOISE, D, N


@pytest.fixture(scope="module")
def correlated():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)) @ np.array([[1.0, 0.6, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    return x, x @ np.array([1.0, -2.0, 0.5]) + NOISE * rng.normal(size=N)


@pytest.fixture(scope="module")
def orthogonal_batches():
    """Every block of 10 rows has centred, orthogonal columns: each batch's [1, X]^T [1, X] is diagonal
    (for batches of 10 and of 20), so diagonal and KFAC structures are exact too."""
    rng = np.random.default_rng(1)
    blocks = [np.linalg.qr(a - a.mean(0))[0] * np.array([3.0, 2.0, 1.0])
              for a in rng.normal(size=(N // 10, 10, D))]
    x = np.concatenate(blocks)
    return x, x @ np.array([1.0, -2.0, 0.5]) + 0.3 + NOISE * rng.normal(size=N)
