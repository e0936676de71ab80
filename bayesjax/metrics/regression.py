"""Metrics of a regression model's predictive mixture, in the original units of the targets: RMSE, Gaussian NLL."""
from __future__ import annotations

import math

import jax.numpy as jnp

from bayesjax.metrics.validation import check_scale, check_targets, finite_mean, finite_points
from bayesjax.predictive import RegressionPredictive
from bayesjax.types import Array

__all__ = ["gaussian_nll", "rmse"]


def rmse(pred: RegressionPredictive, y: Array, y_std: float | Array | None = 1.0) -> Array:
    """Root mean squared error of the predictive mean, in original units.

        RMSE = y_std * sqrt(1/N sum_i (E[y | x_i, D] - y_i)^2)

    Args:
      pred: regression predictive.
      y: (standardized) targets ``[N]``.
      y_std: scale of the standardization (> 0; may be traced; ``None`` = 1).

    Returns:
      Scalar RMSE in the units of the original targets; NaN if any point's
      mean or variance is not finite.
    """
    y = check_targets(pred, y, "rmse")
    return jnp.sqrt(finite_mean(jnp.square(pred.mean - y), finite_points(pred))) * check_scale(y_std, "rmse")


def gaussian_nll(pred: RegressionPredictive, y: Array, y_std: float | Array | None = 1.0) -> Array:
    """NLL of the moment-matched Gaussian N(mean, variance), in original units.

        NLL_G = 1/N sum_i [ 0.5 log(2 pi v_i) + (y_i - m_i)^2 / (2 v_i) ] + log(y_std)

    with ``m_i``, ``v_i`` the mixture's total mean and variance. This is what
    Deep Ensembles report on the UCI benchmarks (Lakshminarayanan, Pritzel &
    Blundell 2017, "Simple and Scalable Predictive Uncertainty Estimation
    using Deep Ensembles"). It coincides with the exact mixture :func:`~bayesjax.metrics.likelihood.nll`
    when all components are identical (e.g. S = 1) and differs otherwise, in
    either direction on a given dataset.

    Args:
      pred: regression predictive.
      y: (standardized) targets ``[N]``.
      y_std: scale of the standardization (> 0; may be traced; ``None`` = 1).

    Returns:
      Scalar mean Gaussian NLL (nats per point); NaN if any point's mean or
      variance is not finite.
    """
    y = check_targets(pred, y, "gaussian_nll")
    scale = check_scale(y_std, "gaussian_nll")
    mean, var = pred.mean, pred.variance
    log_density = -0.5 * (jnp.log(2 * math.pi * var) + jnp.square(y - mean) / var)
    return finite_mean(-log_density, finite_points(pred)) + jnp.log(scale)
