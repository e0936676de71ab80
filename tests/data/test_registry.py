"""Tests for bayesjax.data.registry: names, aliases, argument checks, every in-memory set, import cost."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bayesjax import data
from tests.data.checks import assert_same_dataset, assert_standardized

REPO = Path(__file__).resolve().parents[2]

# name -> (example shape, num_classes)
CLASSIFICATION = {
    "digits": ((8, 8, 1), 10),
    "breast_cancer": ((30,), 2),
    "wine": ((13,), 3),
    "iris": ((4,), 3),
    "moons": ((2,), 2),
}
REGRESSION = {"diabetes": (10,), "gap": (1,)}
IN_MEMORY = [*CLASSIFICATION, *REGRESSION]


def test_names_lists_every_source():
    expected = {"digits", "breast_cancer", "wine", "iris", "diabetes", "moons", "gap", "mnist1d", "fashion_mnist"}
    expected |= {"bostonHousing", "concrete", "energy", "kin8nm", "naval-propulsion-plant", "power-plant"}
    expected |= {"protein-tertiary-structure", "wine-quality-red", "yacht"}
    assert set(data.names()) == expected


@pytest.mark.parametrize("spelling", ["breast_cancer", "Breast-Cancer", "BREAST_CANCER"])
def test_names_case_and_separator_insensitive(spelling):
    assert data.load(spelling).name == "breast_cancer"


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'.*digits.*fashion_mnist.*concrete"):
        data.load("cifar10")


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_bad_test_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        data.load("iris", test_fraction=fraction)


@pytest.mark.parametrize("name", list(CLASSIFICATION))
def test_classification_sets(name):
    shape, num_classes = CLASSIFICATION[name]
    ds = data.load(name)
    assert (ds.name, ds.task, ds.num_classes, ds.y_mean, ds.y_std) == (name, "classification", num_classes, 0.0, 1.0)
    assert ds.x_train.shape[1:] == ds.x_test.shape[1:] == shape
    assert ds.x_train.dtype == ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == ds.y_test.dtype == np.int32
    assert ds.y_train.shape == ds.x_train.shape[:1] and ds.y_test.shape == ds.x_test.shape[:1]
    n = len(ds.y_train) + len(ds.y_test)
    assert abs(len(ds.y_test) - 0.2 * n) <= 1
    # Stratified: every class in both parts, in the same proportions up to rounding.
    train_counts = np.bincount(ds.y_train, minlength=num_classes)
    test_counts = np.bincount(ds.y_test, minlength=num_classes)
    assert len(train_counts) == len(test_counts) == num_classes and test_counts.min() > 0
    np.testing.assert_allclose(test_counts / len(ds.y_test), train_counts / len(ds.y_train), atol=0.02)
    assert_standardized(ds.x_train, per_feature=len(shape) == 1)


@pytest.mark.parametrize("name", list(REGRESSION))
def test_regression_sets(name):
    ds = data.load(name)
    assert (ds.name, ds.task, ds.num_classes) == (name, "regression", 0)
    assert ds.x_train.shape[1:] == ds.x_test.shape[1:] == REGRESSION[name]
    assert all(a.dtype == np.float32 for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test))
    assert ds.y_train.shape == ds.x_train.shape[:1] and ds.y_test.shape == ds.x_test.shape[:1]
    assert isinstance(ds.y_mean, float) and isinstance(ds.y_std, float) and ds.y_std > 0
    assert_standardized(ds.x_train, per_feature=True)
    assert_standardized(ds.y_train, per_feature=True)


@pytest.mark.parametrize("name", IN_MEMORY)
def test_split_is_deterministic_and_seeded(name):
    assert_same_dataset(data.load(name, split=1), data.load(name, split=1))
    assert not np.array_equal(data.load(name, split=1).y_test, data.load(name, split=2).y_test)


def test_package_imports_no_heavy_dependency():
    code = (
        "import sys, types\n"
        "package = types.ModuleType('bayesjax')  # bayesjax.data alone, without the package's own imports\n"
        f"package.__path__ = [{str(REPO / 'bayesjax')!r}]\n"
        "sys.modules['bayesjax'] = package\n"
        "import bayesjax.data\n"
        "print(sorted(m for m in ('sklearn', 'scipy', 'mnist1d', 'matplotlib', 'jax') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
