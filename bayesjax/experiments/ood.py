"""Out-of-distribution inputs: a shifted copy of the test inputs, scored against them by predictive entropy."""
from __future__ import annotations

import numpy as np

OOD_SHIFTS = ("rot90", "noise", "flip")


def default_shift(x_test: np.ndarray) -> str:
    """``rot90`` for images ``[N, H, W, C]``, else ``noise``."""
    return "rot90" if x_test.ndim == 4 else "noise"


def ood_inputs(x_test: np.ndarray, shift: str, seed: int = 0) -> np.ndarray:
    """A shifted copy of the test inputs to score out-of-distribution detection.

    ``rot90`` rotates images a quarter turn; ``flip`` mirrors them upside down;
    ``noise`` replaces inputs by standard Gaussian noise of the same shape.

    Raises:
      ValueError: an image shift of inputs that are not images.
    """
    if shift == "noise":
        return np.random.default_rng(seed).normal(size=x_test.shape).astype(x_test.dtype)
    if x_test.ndim != 4:
        raise ValueError(f"ood={shift!r} needs images [N, H, W, C]; this data set has inputs {x_test.shape[1:]}")
    return np.ascontiguousarray(np.rot90(x_test, axes=(1, 2)) if shift == "rot90" else x_test[:, ::-1])
