"""Tests for bayesjax.data: shapes, dtypes, training-only standardization, splits, files."""
from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bayesjax import data

REPO = Path(__file__).resolve().parents[1]
UCI_ROOTS = [Path("../shared/data/uci").resolve(), REPO.parent / "shared" / "data" / "uci"]
UCI_ROOT = next((r for r in UCI_ROOTS if (r / "concrete" / "data.txt").is_file()), None)

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


def _assert_standardized(x: np.ndarray, per_feature: bool) -> None:
    axis = 0 if per_feature else None
    np.testing.assert_allclose(x.mean(axis, dtype=np.float64), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis, dtype=np.float64), 1.0, rtol=1e-4)


def _assert_equal(a: data.Dataset, b: data.Dataset) -> None:
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


# --------------------------------------------------------------------------- #
# Names
# --------------------------------------------------------------------------- #
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


# --------------------------------------------------------------------------- #
# In-memory sets: scikit-learn bundled and generated
# --------------------------------------------------------------------------- #
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
    _assert_standardized(ds.x_train, per_feature=len(shape) == 1)


@pytest.mark.parametrize("name", list(REGRESSION))
def test_regression_sets(name):
    ds = data.load(name)
    assert (ds.name, ds.task, ds.num_classes) == (name, "regression", 0)
    assert ds.x_train.shape[1:] == ds.x_test.shape[1:] == REGRESSION[name]
    assert all(a.dtype == np.float32 for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test))
    assert ds.y_train.shape == ds.x_train.shape[:1] and ds.y_test.shape == ds.x_test.shape[:1]
    assert isinstance(ds.y_mean, float) and isinstance(ds.y_std, float) and ds.y_std > 0
    _assert_standardized(ds.x_train, per_feature=True)
    _assert_standardized(ds.y_train, per_feature=True)


@pytest.mark.parametrize("name", IN_MEMORY)
def test_split_is_deterministic_and_seeded(name):
    _assert_equal(data.load(name, split=1), data.load(name, split=1))
    assert not np.array_equal(data.load(name, split=1).y_test, data.load(name, split=2).y_test)


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


# --------------------------------------------------------------------------- #
# MNIST-1D
# --------------------------------------------------------------------------- #
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
    _assert_standardized(ds.x_train, per_feature=False)


def test_mnist1d_missing_package_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ImportError, match=r"pip install 'bayesjax\[mnist1d\]'"):
        data.load("mnist1d")


# --------------------------------------------------------------------------- #
# Fashion-MNIST (IDX files)
# --------------------------------------------------------------------------- #
def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _write_fashion(folder: Path, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    arrays = (
        rng.integers(0, 256, (12, 5, 4)),
        rng.integers(0, 10, 12),
        rng.integers(100, 256, (3, 5, 4)),
        rng.integers(0, 10, 3),
    )
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in zip(data._FASHION_FILES, arrays):
        _write_idx(folder / name, array)
    return arrays


def test_fashion_mnist_reads_idx_files(tmp_path):
    x_train, y_train, x_test, y_test = _write_fashion(tmp_path)
    ds = data.load("fashion_mnist", root=tmp_path)
    assert ds.x_train.shape == (12, 5, 4, 1) and ds.x_test.shape == (3, 5, 4, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    np.testing.assert_array_equal(ds.y_train, y_train)
    np.testing.assert_array_equal(ds.y_test, y_test)
    mean, std = x_train.mean(), x_train.std()
    np.testing.assert_allclose(ds.x_train[..., 0], (x_train - mean) / std, atol=1e-5)
    np.testing.assert_allclose(ds.x_test[..., 0], (x_test - mean) / std, atol=1e-5)


def test_fashion_mnist_found_through_environment(tmp_path, monkeypatch):
    _, y_train, _, _ = _write_fashion(tmp_path / "fashion-mnist", seed=1)
    monkeypatch.setenv("BAYESJAX_DATA", str(tmp_path))
    np.testing.assert_array_equal(data.load("fashion-mnist").y_train, y_train)


def test_fashion_mnist_absent_message(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)apt-get install dataset-fashion-mnist.*BAYESJAX_DATA") as info:
        data.load("fashion_mnist", root=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)


def test_fashion_mnist_has_one_split(tmp_path):
    _write_fashion(tmp_path)
    with pytest.raises(ValueError, match="1 fixed train/test split"):
        data.load("fashion_mnist", split=1, root=tmp_path)


def test_idx_rejects_other_files(tmp_path):
    _write_fashion(tmp_path)
    with gzip.open(tmp_path / data._FASHION_FILES[0], "wb") as f:
        f.write(b"\x1f\x00\x08\x03" + bytes(16))
    with pytest.raises(ValueError, match="not an IDX file"):
        data.load("fashion_mnist", root=tmp_path)


def test_fashion_mnist_installed():
    try:
        ds = data.load("fashion_mnist")
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert set(np.unique(ds.y_test)) == set(range(10))


# --------------------------------------------------------------------------- #
# UCI regression sets
# --------------------------------------------------------------------------- #
def _write_uci(folder: Path, table: np.ndarray, train: list[int], test: list[int]) -> None:
    folder.mkdir(parents=True)
    np.savetxt(folder / "data.txt", table)
    np.savetxt(folder / "index_features.txt", np.arange(table.shape[1] - 1), fmt="%.1f")  # float-formatted
    np.savetxt(folder / "index_target.txt", [table.shape[1] - 1], fmt="%.1f")
    np.savetxt(folder / "index_train_0.txt", train, fmt="%.1f")
    np.savetxt(folder / "index_test_0.txt", test, fmt="%.1f")


def test_uci_layout_with_float_indices_and_constant_feature(tmp_path):
    rng = np.random.default_rng(0)
    constant = 0.998  # the float64 std of 10 copies is rounding noise, not 0 (as naval's column 11)
    table = np.column_stack([rng.normal(size=13), np.full(13, constant), rng.normal(5.0, 2.0, 13)])
    assert np.full(10, constant).std() > 0
    _write_uci(tmp_path / "yacht", table, train=list(range(10)), test=[10, 11, 12])
    ds = data.load("yacht", root=tmp_path)
    assert (ds.x_train.shape, ds.x_test.shape, ds.y_test.shape) == ((10, 2), (3, 2), (3,))
    np.testing.assert_allclose(ds.x_train[:, 1], 0.0, atol=1e-6)
    np.testing.assert_allclose(ds.x_test[:, 1], 0.0, atol=1e-6)
    assert ds.y_mean == pytest.approx(table[:10, 2].mean()) and ds.y_std == pytest.approx(table[:10, 2].std())


def test_uci_dropout_repository_layout(tmp_path):
    table = np.arange(12.0).reshape(4, 3) ** 1.5
    _write_uci(tmp_path / "kin8nm" / "data", table, train=[0, 1, 2], test=[3])
    assert data.load("kin8nm", root=tmp_path).x_train.shape == (3, 2)


def test_uci_absent_message(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"UCI set 'concrete' not found.*BAYESJAX_UCI") as info:
        data.load("concrete", root=tmp_path)
    assert str(tmp_path / "concrete") in str(info.value)


@pytest.fixture
def uci_root(monkeypatch):
    if UCI_ROOT is None:
        pytest.skip(f"../shared/data/uci not found: looked in {', '.join(map(str, UCI_ROOTS))}")
    monkeypatch.delenv("BAYESJAX_UCI", raising=False)
    return UCI_ROOT


def test_uci_concrete_split(uci_root):
    folder = uci_root / "concrete"
    table = np.loadtxt(folder / "data.txt")
    train = np.loadtxt(folder / "index_train_3.txt").astype(int)
    test = np.loadtxt(folder / "index_test_3.txt").astype(int)
    ds = data.load("concrete", split=3, root=uci_root)
    assert (ds.name, ds.task, ds.num_classes) == ("concrete", "regression", 0)
    assert ds.x_train.shape == (len(train), 8) and ds.x_test.shape == (len(test), 8)
    assert ds.y_train.shape == (len(train),) and ds.y_test.shape == (len(test),)
    assert all(a.dtype == np.float32 for a in ds[:4])
    assert ds.y_mean == pytest.approx(table[train, 8].mean()) and ds.y_std == pytest.approx(table[train, 8].std())
    np.testing.assert_allclose(ds.y_test * ds.y_std + ds.y_mean, table[test, 8], rtol=1e-5)
    x_train = table[train, :8]
    np.testing.assert_allclose(ds.x_test, (table[test, :8] - x_train.mean(0)) / x_train.std(0), atol=1e-4)
    _assert_standardized(ds.x_train, per_feature=True)
    _assert_equal(data.load("concrete", split=3), ds)  # found without root


@pytest.mark.parametrize(
    "alias, name",
    [("boston", "bostonHousing"), ("wine-red", "wine-quality-red"), ("wine_red", "wine-quality-red"),
     ("naval", "naval-propulsion-plant"), ("Protein", "protein-tertiary-structure")],
)
def test_uci_aliases(uci_root, alias, name):
    if not (uci_root / name).is_dir():
        pytest.skip(f"{name} not in {uci_root}")
    assert data.load(alias, root=uci_root).name == name


def test_uci_constant_features_of_naval(uci_root):
    if not (uci_root / "naval-propulsion-plant").is_dir():
        pytest.skip("naval-propulsion-plant not in shared data")
    ds = data.load("naval", root=uci_root)
    assert np.isfinite(ds.x_train).all() and np.isfinite(ds.x_test).all()
    constant = ds.x_train.std(0) == 0
    assert constant.sum() == 2
    np.testing.assert_allclose(ds.x_test[:, constant], 0.0, atol=1e-6)  # not +-1 from rounding noise


def test_uci_bad_split(uci_root):
    with pytest.raises(ValueError, match=r"concrete has 20 splits \(0..19\); got split=20"):
        data.load("concrete", split=20, root=uci_root)


# --------------------------------------------------------------------------- #
# Import cost
# --------------------------------------------------------------------------- #
def test_module_imports_no_heavy_dependency():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('bayesjax_data', {str(REPO / 'bayesjax' / 'data.py')!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted(m for m in ('sklearn', 'scipy', 'mnist1d', 'matplotlib', 'jax') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
