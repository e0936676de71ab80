"""Assertions shared by the data tests."""
import numpy as np

from bayesjax import data


def assert_standardized(x: np.ndarray, per_feature: bool) -> None:
    axis = 0 if per_feature else None
    np.testing.assert_allclose(x.mean(axis, dtype=np.float64), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis, dtype=np.float64), 1.0, rtol=1e-4)


def assert_same_dataset(a: data.Dataset, b: data.Dataset) -> None:
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
