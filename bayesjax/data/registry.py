"""Every dataset by name, and :func:`load`: fetch a source's raw arrays, then standardize them."""
from __future__ import annotations

import functools
import os
from typing import Callable, NamedTuple

import numpy as np

from bayesjax.data.bundled import sklearn_set
from bayesjax.data.dataset import Arrays, Dataset
from bayesjax.data.fashion_mnist import fashion_mnist
from bayesjax.data.generated import gap, mnist1d, moons
from bayesjax.data.standardize import moments, standardize
from bayesjax.data.uci import NAMES as UCI_NAMES
from bayesjax.data.uci import uci

__all__ = ["load", "names"]


class _Source(NamedTuple):
    """How to fetch one dataset and how to standardize its inputs."""

    fetch: Callable[[int, "str | os.PathLike | None", float], Arrays]
    num_classes: int  # 0 for regression
    per_feature: bool  # per-feature input statistics, else one global scalar


def _sklearn_source(loader: str, num_classes: int, shape: tuple[int, ...] = (-1,)) -> _Source:
    """A scikit-learn bundled set; ``shape`` is one example's (images keep theirs)."""
    fetch = functools.partial(sklearn_set, loader, shape, num_classes > 0)
    return _Source(fetch, num_classes, per_feature=len(shape) == 1)


_SOURCES: dict[str, _Source] = {
    "digits": _sklearn_source("load_digits", 10, (8, 8, 1)),
    "breast_cancer": _sklearn_source("load_breast_cancer", 2),
    "wine": _sklearn_source("load_wine", 3),
    "iris": _sklearn_source("load_iris", 3),
    "diabetes": _sklearn_source("load_diabetes", 0),
    "moons": _Source(moons, 2, per_feature=True),
    "gap": _Source(gap, 0, per_feature=True),
    "mnist1d": _Source(mnist1d, 10, per_feature=False),
    "fashion_mnist": _Source(fashion_mnist, 10, per_feature=False),
    **{name: _Source(functools.partial(uci, name), 0, per_feature=True) for name in UCI_NAMES},
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
    """Returns the canonical name of every dataset :func:`load` accepts.

    Example:
        >>> from bayesjax import data
        >>> data.names()[:3]
        ['digits', 'breast_cancer', 'wine']
    """
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
        A :class:`~bayesjax.data.dataset.Dataset`.

    Raises:
        ValueError: unknown ``name``, ``split`` out of range, or
            ``test_fraction`` outside (0, 1).
        FileNotFoundError: on-disk data not found (the message lists where
            it was searched).
        ImportError: ``mnist1d`` without the mnist1d package.

    Example:
        >>> from bayesjax import data
        >>> ds = data.load("diabetes", split=3)
        >>> ds.task, ds.x_train.shape, ds.y_test.shape
        ('regression', (353, 10), (89,))
        >>> y_test_original_units = ds.y_test * ds.y_std + ds.y_mean
    """
    canonical = _LOOKUP.get(_key(name))
    if canonical is None:
        aliases = ", ".join(f"{a} -> {n}" for a, n in _ALIASES.items())
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(names())} (aliases: {aliases})")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1); got {test_fraction}")
    source = _SOURCES[canonical]
    x_train, y_train, x_test, y_test = source.fetch(split, root, test_fraction)
    x_train, x_test = standardize(x_train, x_test, axis=0 if source.per_feature else None)
    if source.num_classes:
        y_train, y_test = y_train.astype(np.int32), y_test.astype(np.int32)
        return Dataset(x_train, y_train, x_test, y_test, "classification", source.num_classes, 0.0, 1.0, canonical)
    y_mean, y_std = moments(y_train, axis=0)
    y_train, y_test = standardize(y_train, y_test, axis=0)
    return Dataset(x_train, y_train, x_test, y_test, "regression", 0, float(y_mean), float(y_std), canonical)
