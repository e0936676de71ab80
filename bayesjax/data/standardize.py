"""Standardization with the training split's statistics only.

Tabular inputs are standardized per feature; images and 1-D signals with one
global scalar mean and deviation (``axis=None``). A constant feature keeps a
deviation of 1, so it maps to 0 rather than to NaN or to rounding noise. The
results start on a 64-byte boundary (:func:`aligned_empty`), so that
``jax.device_put`` on the CPU shares their memory instead of copying them.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ALIGNMENT", "CHUNK", "CONSTANT_RTOL", "aligned_empty", "moments", "standardize"]

CONSTANT_RTOL = 1e-8
"""A deviation below this fraction of the mean's magnitude is rounding error of
a constant feature (e.g. naval-propulsion-plant's column 11, whose float64
deviation is 2e-13): it is read as 0, hence replaced by 1."""


ALIGNMENT = 64
"""Bytes: XLA's CPU client aliases a NumPy array in ``jax.device_put`` (no copy) when its data start on such a
boundary; NumPy's own allocations are 16-byte aligned, so 60,000 Fashion-MNIST images (188 MB) were held twice."""

CHUNK = 1 << 20
"""Elements per pass of the global (``axis=None``) deviation: its float64 temporaries stay at 8 MiB."""


def moments(a: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Float64 mean and standard deviation along ``axis``; a zero (or rounding-level) deviation becomes 1.

    With ``axis=None`` the deviation ``sqrt(mean((a - mean)^2))`` is summed
    over chunks of :data:`CHUNK` elements, so Fashion-MNIST's 47 million
    pixels need no float64 copy of the whole array.

    Example:
        >>> import numpy as np
        >>> from bayesjax.data.standardize import moments
        >>> mean, std = moments(np.array([[1.0, 5.0], [3.0, 5.0]]), axis=0)
        >>> mean.tolist(), std.tolist()
        ([2.0, 5.0], [1.0, 1.0])
    """
    if axis is None:
        flat = a.reshape(-1)
        mean = np.float64(flat.sum(dtype=np.float64) / flat.size)
        squares = sum(np.square(flat[i:i + CHUNK] - mean).sum() for i in range(0, flat.size, CHUNK))
        std = np.sqrt(squares / flat.size)
    else:
        mean = a.mean(axis, dtype=np.float64)
        std = a.std(axis, dtype=np.float64)
    return mean, np.where(std > CONSTANT_RTOL * np.abs(mean), std, 1.0)


def aligned_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialized array whose data start on an :data:`ALIGNMENT`-byte boundary.

    Example:
        >>> from bayesjax.data.standardize import aligned_empty
        >>> aligned_empty((3, 5), np.float32).ctypes.data % 64
        0
    """
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(size + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start:start + size].view(dtype).reshape(shape)


def standardize(train: np.ndarray, test: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Standardizes both arrays with ``train``'s moments along ``axis``; returns float32.

    Example:
        >>> import numpy as np
        >>> from bayesjax.data.standardize import standardize
        >>> train, test = standardize(np.array([0.0, 2.0]), np.array([4.0]), axis=0)
        >>> train.tolist(), test.tolist()
        ([-1.0, 1.0], [3.0])
    """
    mean, std = moments(train, axis)
    dtype = np.promote_types(train.dtype, np.float32)  # uint8 images stay float32
    mean, std = mean.astype(dtype), std.astype(dtype)

    def scaled(a: np.ndarray) -> np.ndarray:
        out = aligned_empty(a.shape, np.float32)
        if dtype == np.float32:  # images: in place, no temporary for 60,000 images
            np.divide(np.subtract(a, mean, out=out, dtype=dtype), std, out=out)
        else:  # float64 tabular data: in float64, rounded once
            np.divide(np.subtract(a, mean, dtype=dtype), std, out=out, casting="same_kind")
        return out

    return scaled(train), scaled(test)
