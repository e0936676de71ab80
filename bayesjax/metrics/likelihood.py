"""The negative log predictive density of a Bayesian model average, for classification and regression."""
from __future__ import annotations

import jax.numpy as jnp

from bayesjax.metrics.validation import (check_labels, check_scale, check_targets, check_unit_scale, finite_mean,
                                         finite_points)
from bayesjax.predictive import ClassificationPredictive, RegressionPredictive
from bayesjax.types import Array

__all__ = ["nll"]


def nll(pred: ClassificationPredictive | RegressionPredictive, y: Array, y_std: float | Array | None = 1.0) -> Array:
    """Mean negative log predictive density of the Bayesian model average.

        NLL = -1/N sum_i log p(y_i | x_i, D)

    For classification ``p`` is the averaged class probability of the label.
    For regression it is the exact Gaussian mixture density
    ``1/S sum_s N(y_i | mu_s(x_i), sigma_s^2(x_i))`` of
    :meth:`~bayesjax.predictive.RegressionPredictive.log_prob`. When the model saw standardized
    targets ``y = (y_orig - y_mean) / y_std``, the density of the original
    target is ``p(y_orig) = p(y) / y_std`` (change of variables), so the NLL is
    reported in original units as

        NLL_orig = NLL + log(y_std).

    Args:
      pred: classification or regression predictive.
      y: integer labels or (standardized) real targets, ``[N]``.
      y_std: scale of the standardization (> 0; may be traced; ``None`` means
        1). Regression only: a concrete value other than 1 with a
        classification predictive raises.

    Returns:
      Scalar mean NLL (nats per point); NaN if any point's predictive (class
      probabilities, or mixture mean and variance) is not finite.

    Raises:
      ValueError: shape / dtype / scale mismatch.
    """
    if isinstance(pred, ClassificationPredictive):
        check_unit_scale(y_std, "nll")
        return finite_mean(-pred.log_prob(check_labels(pred, y, "nll")), finite_points(pred))
    y = check_targets(pred, y, "nll")
    return finite_mean(-pred.log_prob(y), finite_points(pred)) + jnp.log(check_scale(y_std, "nll"))
