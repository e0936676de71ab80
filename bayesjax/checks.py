"""Input checks shared by every module: run before anything compiles.

Values that are tracers (inside ``jit``/``vmap``) cannot be inspected and pass
unchecked; their shapes are still checked where the caller does so.
"""
from __future__ import annotations

from typing import Any

import jax
import numpy as np

from bayesjax import sharding


def concrete(value: Any) -> np.ndarray | None:
    """``value`` as a NumPy array when it is concrete, ``None`` when traced.

    An array that spans several processes is gathered (:func:`bayesjax.sharding.to_host`, a collective).
    """
    try:
        return sharding.to_host(value)
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
        check_numeric(f"data {name}", a)
        if bad := count_non_finite(a):
            raise ValueError(f"data {name} contains {bad} non-finite value(s) (NaN or inf)")
    return x, y


def check_numeric(name: str, a) -> None:
    """ValueError unless array ``a`` has a boolean, integer or floating dtype (not object, string or complex)."""
    dtype = a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype
    if getattr(dtype, "kind", None) not in tuple("biuf"):
        raise ValueError(f"{name} has dtype {dtype}: it must be a numeric array (bool, int or float); an object "
                         f"array usually holds ragged rows or mixed types")


def count_non_finite(a) -> int:
    """How many entries of a floating array are NaN or inf (0 for other dtypes); a JAX array is counted where it lives."""
    xp = jax.numpy if isinstance(a, jax.Array) else np
    if not np.issubdtype(a.dtype, np.inexact) or bool(xp.all(xp.isfinite(a))):
        return 0
    return int(xp.sum(~xp.isfinite(a)))


def check_params(params, name: str = "params", floating: bool = True) -> None:
    """ValueError naming the first leaf of ``params`` that is not a floating array (with ``floating``) or not finite.

    PRNG-key leaves (a dropout key) are skipped; a traced leaf is checked for
    its dtype only. Run before anything compiles: a non-finite start would
    otherwise surface as a divergence at step 1 (blamed on the step size) or
    a MAP fit that runs on in NaN, and integer weights as JAX's dtype errors.
    """
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        where = f"{name}{jax.tree_util.keystr(path)}"
        dtype = leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            continue
        if floating and not jax.dtypes.issubdtype(dtype, np.floating):
            raise ValueError(f"{where} has dtype {dtype}: parameters must be floating (e.g. float32), since "
                             f"gradients and noise act on them; cast with .astype(jnp.float32)")
        if isinstance(leaf, jax.core.Tracer):
            continue
        if bad := count_non_finite(leaf if isinstance(leaf, jax.Array) else np.asarray(leaf)):
            raise ValueError(f"{where} contains {bad} non-finite value(s) (NaN or inf): the run would start "
                             f"diverged")


def check_batch(batch, name: str = "batch") -> int:
    """The batch size; ValueError unless every leaf is an array with one common, non-zero leading axis and finite values.

    A batch is any pytree of arrays (``(x, y)``, several inputs, a dict).
    """
    leaves = jax.tree_util.tree_flatten_with_path(batch)[0]
    if not leaves:
        raise ValueError(f"{name} holds no arrays")
    shapes = {jax.tree_util.keystr(path): np.shape(leaf) for path, leaf in leaves}
    sizes = {shape[0] if shape else None for shape in shapes.values()}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"{name} needs arrays with one common leading batch axis, got shapes {shapes}")
    if sizes == {0}:
        raise ValueError(f"{name} is empty: it has 0 examples")
    for path, leaf in leaves:
        check_numeric(f"{name}{jax.tree_util.keystr(path)}", leaf)
        if bad := count_non_finite(leaf):
            raise ValueError(f"{name}{jax.tree_util.keystr(path)} contains {bad} non-finite value(s) (NaN or inf)")
    return sizes.pop()
