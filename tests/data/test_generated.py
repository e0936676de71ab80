"""Tests for bayesjax.data.generated: two moons, the gap regression, MNIST-1D."""
import sys

import numpy as np
import pytest

from bayesjax import data
from tests.data.checks import assert_standardized


def test_test_fraction_is_honoured():
    ds = data.load("moons", test_fraction=0.5)
    assert len(ds.y_train) == len(ds.y_test) == 500
    np.testing.assert_array_equal(np.bincount(ds.y_test), [250, 250])


def test_gap_has_a_hole_in_the_training_inputs_only():
    ds = data.load("gap")
    x_train, x_test = np.sort(ds.x_train[:, 0]), ds.x_test[:, 0]
    widest = np.argmax(np.diff(x_train))
    lo, hi = x_train[widest], x_train[widest + 1]
    assert hi - lo > 0.5 * ds.x_train.std()  # raw gap 0.6 against a raw std of about 0.7
    assert np.sum((x_test > lo) & (x_test < hi)) >= 10  # test points fall in the gap
    assert x_test.min() < x_train.min() + 0.2 and x_test.max() > x_train.max() - 0.2


def test_mnist1d_generated_offline():
    pytest.importorskip("mnist1d")
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    ds = data.load("mnist1d")
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # global RNG state kept
    assert ds.x_train.shape == (4000, 40) and ds.x_test.shape == (1000, 40)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    assert (ds.task, ds.num_classes) == ("classification", 10)
    assert set(np.unique(ds.y_train)) == set(range(10))
    assert_standardized(ds.x_train, per_feature=False)


def test_mnist1d_missing_package_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ImportError, match=r"pip install 'bayesjax\[mnist1d\]'"):
        data.load("mnist1d")
