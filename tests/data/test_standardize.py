"""Tests for bayesjax.data.standardize: statistics of the training split only, inputs and targets."""
import numpy as np
import pytest

from bayesjax import data
from bayesjax.data.standardize import ALIGNMENT, standardize


def test_digits_standardized_with_training_statistics_only():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=3, stratify=y)
    ds = data.load("digits", split=3)
    mean, std = x_train.mean(), x_train.std()  # one global scalar for images
    np.testing.assert_allclose(ds.x_train.reshape(len(x_train), -1), (x_train - mean) / std, atol=1e-5)
    np.testing.assert_allclose(ds.x_test.reshape(len(x_test), -1), (x_test - mean) / std, atol=1e-5)
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert abs(ds.x_test.mean()) > 1e-3  # the test part did not enter the statistics


def test_diabetes_target_statistics_are_the_training_targets():
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    x, y = load_diabetes(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    ds = data.load("diabetes")
    assert ds.y_mean == pytest.approx(y_train.mean()) and ds.y_std == pytest.approx(y_train.std())
    np.testing.assert_allclose(ds.y_test * ds.y_std + ds.y_mean, y_test, rtol=1e-5)
    np.testing.assert_allclose(ds.x_test, (x_test - x_train.mean(0)) / x_train.std(0), atol=1e-5)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_global_moments_in_chunks_equal_numpy(monkeypatch, dtype):
    from bayesjax.data import standardize

    monkeypatch.setattr(standardize, "CHUNK", 1000)  # 3 chunks, the last one short
    a = (np.random.default_rng(0).gamma(2.0, 40.0, size=(25, 10, 10)) + 3).astype(dtype)
    mean, std = standardize.moments(a, None)
    assert mean == pytest.approx(a.mean(dtype=np.float64), rel=1e-14)
    assert std == pytest.approx(a.std(dtype=np.float64), rel=1e-12)
    assert standardize.moments(np.full((3, 4), 7, dtype), None)[1] == 1.0  # constant: deviation 1


def test_standardized_arrays_are_shared_by_jax_not_copied():
    """Inputs start on a 64-byte boundary, so ``jax.device_put`` on the CPU aliases them (one copy of the data)."""
    import jax

    ds = data.load("digits")
    for x in (ds.x_train, ds.x_test):
        assert x.ctypes.data % ALIGNMENT == 0
        if jax.default_backend() == "cpu":
            assert jax.device_put(x).unsafe_buffer_pointer() == x.ctypes.data
    train, test = standardize(np.arange(12.0).reshape(4, 3), np.ones((2, 3)), axis=0)  # the float64 path
    assert train.dtype == np.float32 and train.ctypes.data % ALIGNMENT == 0 and test.ctypes.data % ALIGNMENT == 0
    np.testing.assert_allclose(train.mean(0), 0.0, atol=1e-6)
