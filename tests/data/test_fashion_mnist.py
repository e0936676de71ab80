"""Tests for bayesjax.data.fashion_mnist: IDX files read, found, refused."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from bayesjax import data
from bayesjax.data import fashion_mnist


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
    for name, array in zip(fashion_mnist.FILES, arrays):
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
    with gzip.open(tmp_path / fashion_mnist.FILES[0], "wb") as f:
        f.write(b"\x1f\x00\x08\x03" + bytes(16))
    with pytest.raises(ValueError, match="not an IDX file"):
        data.load("fashion_mnist", root=tmp_path)


def test_fashion_mnist_installed():
    """The real files, where installed (`make fashion-mnist`): shapes, dtypes, labels, standardization."""
    try:
        ds = data.load("fashion_mnist")
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST not installed: `make fashion-mnist` (apt-get install dataset-fashion-mnist)")
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert ds.x_train.dtype == ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == ds.y_test.dtype == np.int32
    assert ds.task == "classification" and ds.num_classes == 10
    for labels in (ds.y_train, ds.y_test):  # balanced: 6,000 and 1,000 of each class
        np.testing.assert_array_equal(np.bincount(labels), np.full(10, len(labels) // 10))
    pixels = ds.x_train.reshape(-1)
    mean = float(pixels.mean(dtype=np.float64))
    second_moment = float(np.einsum("i,i->", pixels, pixels, dtype=np.float64)) / pixels.size
    assert abs(mean) < 1e-6 and second_moment == pytest.approx(1.0, abs=1e-6)
    background = ds.x_train.min()  # raw black pixels: -mean / std of the raw pixels
    assert float(background) == pytest.approx(-72.94 / 90.02, abs=1e-3)
