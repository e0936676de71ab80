"""Input checks of the metrics, run once at each public entry.

Shapes are checked when traced too, so a mismatch raises ``ValueError`` under
``jax.jit``; values (label range, target scale) only when they are concrete.
Each check names the metric that called it (``fn``) in its message.
:func:`finite_points` and :func:`finite_mean` make every metric NaN, never a
finite number, when the predictive is not finite (a diverged posterior's
NaN probabilities would otherwise score as class 0 under ``argmax``).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from bayesjax.checks import concrete
from bayesjax.predictive import ClassificationPredictive, RegressionPredictive
from bayesjax.types import Array

__all__ = [
    "check_classification",
    "check_labels",
    "check_pair",
    "check_regression",
    "check_scale",
    "check_targets",
    "check_unit_scale",
    "finite_mean",
    "finite_points",
]


def check_classification(pred, fn: str) -> int:
    """Checks a classification predictive ``[N, C]``; returns N."""
    if not isinstance(pred, ClassificationPredictive):
        raise TypeError(f"{fn} needs a ClassificationPredictive, got {type(pred).__name__}")
    if jnp.ndim(pred.log_probs) != 2:
        raise ValueError(f"{fn}: log_probs must have shape [N, C], got {jnp.shape(pred.log_probs)}")
    return pred.log_probs.shape[0]


def check_regression(pred, fn: str) -> int:
    """Checks a regression predictive with components ``[S, N]``; returns N."""
    if not isinstance(pred, RegressionPredictive):
        raise TypeError(f"{fn} needs a RegressionPredictive, got {type(pred).__name__}")
    mean_shape, variance_shape = jnp.shape(pred.component_mean), jnp.shape(pred.component_variance)
    if len(mean_shape) != 2 or mean_shape != variance_shape:
        raise ValueError(
            f"{fn}: component_mean and component_variance must both have shape [S, N], got "
            f"{mean_shape} and {variance_shape}"
        )
    return mean_shape[1]


def check_labels(pred: ClassificationPredictive, y, fn: str) -> Array:
    """Checks integer labels ``[N]`` against a classification predictive (their range only when concrete)."""
    n = check_classification(pred, fn)
    num_classes = pred.log_probs.shape[1]
    values = concrete(y)
    if values is not None and not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{fn}: labels must be integers, got dtype {values.dtype}")
    y = jnp.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{fn}: labels must have shape [N] = ({n},) to match the predictive, got {y.shape}")
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"{fn}: labels must be integers, got dtype {y.dtype}")
    if values is not None and values.size and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(
            f"{fn}: labels out of range: found labels in [{values.min()}, {values.max()}] "
            f"but the predictive has {num_classes} classes"
        )
    return y


def check_targets(pred: RegressionPredictive, y, fn: str) -> Array:
    """Checks real targets ``[N]`` against a regression predictive."""
    n = check_regression(pred, fn)
    y = jnp.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{fn}: targets must have shape [N] = ({n},) to match the predictive, got {y.shape}")
    return y


def check_scale(y_std, fn: str) -> Array:
    """Checks the target scale (positive when concrete); ``None`` means 1."""
    if y_std is None:
        return jnp.asarray(1.0)
    if jnp.ndim(y_std) != 0:
        raise ValueError(f"{fn}: y_std must be a scalar, got shape {jnp.shape(y_std)}")
    if concrete(y_std) is not None and not float(y_std) > 0:
        raise ValueError(f"{fn}: y_std must be > 0, got {y_std}")
    return jnp.asarray(y_std)


def check_unit_scale(y_std, fn: str) -> None:
    """Classification has no target units: refuse a concrete y_std other than 1."""
    if y_std is not None and concrete(y_std) is not None and float(y_std) != 1.0:
        raise ValueError(f"{fn}: y_std rescales regression targets only; a classification predictive got y_std={y_std}")


def check_pair(pred_a, pred_b, fn: str) -> None:
    check_classification(pred_a, fn)
    check_classification(pred_b, fn)
    if pred_a.log_probs.shape != pred_b.log_probs.shape:
        raise ValueError(
            f"{fn}: the two predictives must have the same shape [N, C], got "
            f"{pred_a.log_probs.shape} and {pred_b.log_probs.shape}"
        )


def finite_points(pred: ClassificationPredictive | RegressionPredictive) -> Array:
    """``[N]`` bools: whether point i's predictive is finite.

    Classification: no class probability is NaN or infinite (a log-probability
    of ``-inf``, an impossible class, is finite probability 0). Regression: the
    mixture's mean and variance are finite.
    """
    if isinstance(pred, ClassificationPredictive):
        return jnp.all(jnp.isfinite(jnp.exp(pred.log_probs)), axis=-1)
    return jnp.isfinite(pred.mean) & jnp.isfinite(pred.variance)


def finite_mean(values: Array, finite: Array) -> Array:
    """Mean of per-point ``values`` ``[N]``; NaN if any point's predictive is not ``finite``."""
    return jnp.mean(jnp.where(finite, values, jnp.nan))
