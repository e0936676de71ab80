"""Input checks shared by every module: run before anything compiles.

Values that are tracers (inside ``jit``/``vmap``) cannot be inspected and pass
unchecked; their shapes are still checked where the caller does so.
"""
from __future__ import annotations

from typing import Any

import jax
import numpy as np


def concrete(value: Any) -> np.ndarray | None:
    """``value`` as a NumPy array when it is concrete, ``None`` when traced."""
    try:
        return np.asarray(value)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def check_positive(name: str, value: Any, allow_zero: bool = False) -> None:
    """Raises ValueError unless a concrete ``value`` is finite and > 0 (>= 0 with ``allow_zero``)."""
    array = concrete(value)
    if array is None:
        return
    bad = ~np.isfinite(array) | ((array < 0) if allow_zero else (array <= 0))
    if np.any(bad):
        raise ValueError(f"{name} must be finite and {'>=' if allow_zero else '>'} 0, got {value!r}")


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int; ValueError unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_key(key: Any, name: str = "key") -> None:
    """TypeError unless ``key`` is one PRNG key: ``jax.random.key(seed)`` or a legacy ``jax.random.PRNGKey(seed)``."""
    dtype, shape = getattr(key, "dtype", None), getattr(key, "shape", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if shape == ():
            return
        raise TypeError(f"{name} must be one PRNG key, got keys of shape {shape}")
    if dtype == np.uint32 and shape is not None and len(shape) == 1:  # a legacy key's raw data
        return
    raise TypeError(f"{name} must be a PRNG key such as jax.random.key(seed), got {type(key).__name__} {key!r:.60}")


def check_data(data) -> tuple[np.ndarray | jax.Array, np.ndarray | jax.Array]:
    """``(x, y)``; ValueError unless a non-empty pair with one leading axis and finite values.

    JAX arrays stay where they are (checked there, not copied to the host);
    anything else becomes a NumPy array.
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError("data must be a pair (x, y)")
    x, y = (a if isinstance(a, jax.Array) else np.asarray(a) for a in data)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"x and y need a leading data axis, got shapes {x.shape} and {y.shape}")
    if x.shape[0] == 0:
        raise ValueError("data is empty: x has 0 examples")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y disagree on the number of examples: {x.shape[0]} vs {y.shape[0]}")
    for name, a in (("x", x), ("y", y)):
        xp = jax.numpy if isinstance(a, jax.Array) else np
        if np.issubdtype(a.dtype, np.inexact) and not bool(xp.all(xp.isfinite(a))):
            bad = int(xp.sum(~xp.isfinite(a)))
            raise ValueError(f"data {name} contains {bad} non-finite value(s) (NaN or inf)")
    return x, y
