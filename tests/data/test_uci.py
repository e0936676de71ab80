"""Tests for bayesjax.data.uci: the fixed splits of the UCI regression sets, synthetic and shared."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bayesjax import data
from tests.data.checks import assert_same_dataset, assert_standardized

REPO = Path(__file__).resolve().parents[2]
UCI_ROOTS = [Path("../shared/data/uci").resolve(), REPO.parent / "shared" / "data" / "uci"]
UCI_ROOT = next((r for r in UCI_ROOTS if (r / "concrete" / "data.txt").is_file()), None)


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
    assert_standardized(ds.x_train, per_feature=True)
    assert_same_dataset(data.load("concrete", split=3), ds)  # found without root


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
