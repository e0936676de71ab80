"""What a loader returns: the :class:`Dataset` and the raw arrays a source hands over."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Arrays", "Dataset"]

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
        name: canonical name, as listed by :func:`bayesjax.data.registry.names`.
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
