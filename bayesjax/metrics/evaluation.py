"""The standard metrics of a predictive in one call, compiled as one program per shape."""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

from bayesjax.metrics.classification import accuracy, brier, ece
from bayesjax.metrics.likelihood import nll
from bayesjax.metrics.regression import gaussian_nll, rmse
from bayesjax.metrics.validation import check_labels, check_scale, check_targets, check_unit_scale
from bayesjax.predictive import ClassificationPredictive, RegressionPredictive
from bayesjax.types import Array

__all__ = ["CLASSIFICATION_METRICS", "REGRESSION_METRICS", "evaluate"]


CLASSIFICATION_METRICS = ("accuracy", "nll", "ece", "brier")
REGRESSION_METRICS = ("rmse", "nll", "gaussian_nll")


@jax.jit
def _classification_metrics(pred: ClassificationPredictive, y: Array) -> dict[str, Array]:
    return {"accuracy": accuracy(pred, y), "nll": nll(pred, y), "ece": ece(pred, y), "brier": brier(pred, y)}


@jax.jit
def _regression_metrics(pred: RegressionPredictive, y: Array, y_std: Array) -> dict[str, Array]:
    return {"rmse": rmse(pred, y, y_std), "nll": nll(pred, y, y_std), "gaussian_nll": gaussian_nll(pred, y, y_std)}


def evaluate(
    pred: ClassificationPredictive | RegressionPredictive, y: Array, y_std: float | Array | None = 1.0
) -> dict[str, float]:
    """The standard metrics of a predictive, as Python floats.

    Classification: ``accuracy``, ``nll``, ``ece`` (15 bins), ``brier``.
    Regression: ``rmse``, ``nll`` (exact mixture) and ``gaussian_nll``
    (moment-matched), all in original units given ``y_std``.

    The inputs are validated once here (label range included); the metrics
    then run as one jitted computation (compiled once per shape). This
    function returns host floats, so call the individual metrics inside your
    own ``jit`` / ``vmap``. A predictive that is not finite (NaN or infinite
    probabilities, means or variances: a diverged posterior) gives NaN for
    every metric, never a finite score.

    Args:
      pred: classification or regression predictive.
      y: integer labels or (standardized) targets ``[N]``.
      y_std: target standardization scale (regression; ``None`` means 1; a
        value other than 1 with a classification predictive raises).

    Returns:
      Dict from metric name to value.

    Example:
      >>> import jax.numpy as jnp
      >>> from bayesjax.metrics import evaluate
      >>> from bayesjax.predictive import RegressionPredictive
      >>> pred = RegressionPredictive(jnp.array([[0.0, 1.0]]), jnp.array([[1.0, 1.0]]))  # S = 1, N = 2
      >>> {name: round(value, 4) for name, value in evaluate(pred, jnp.array([0.0, 2.0]), y_std=2.0).items()}
      {'rmse': 1.4142, 'nll': 1.8621, 'gaussian_nll': 1.8621}
    """
    if isinstance(pred, ClassificationPredictive):
        check_unit_scale(y_std, "evaluate")
        y = check_labels(pred, y, "evaluate")  # concrete checks (label range) before jit
        values, names = _classification_metrics(pred, y), CLASSIFICATION_METRICS
    elif isinstance(pred, RegressionPredictive):
        if jnp.issubdtype(jnp.result_type(y), jnp.integer):
            warnings.warn("evaluate: a regression predictive scored against integer targets: if these are class "
                          "labels, the model needs a categorical likelihood (bj.likelihoods.categorical()), "
                          "not a Gaussian", UserWarning, stacklevel=2)
        y = check_targets(pred, y, "evaluate")
        values, names = _regression_metrics(pred, y, check_scale(y_std, "evaluate")), REGRESSION_METRICS
    else:
        raise TypeError(f"evaluate: expected a ClassificationPredictive or RegressionPredictive, got {type(pred).__name__}")
    values = jax.device_get(values)  # a jitted dict comes back key-sorted: restore the documented order
    return {name: float(values[name]) for name in names}
