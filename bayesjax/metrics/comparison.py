"""Two classifiers' predictives compared point by point: top-1 agreement and total variation (Izmailov et al. 2021)."""
from __future__ import annotations

import jax.numpy as jnp

from bayesjax.metrics.validation import check_pair, finite_mean, finite_points
from bayesjax.predictive import ClassificationPredictive
from bayesjax.types import Array

__all__ = ["agreement", "total_variation"]


def agreement(pred_a: ClassificationPredictive, pred_b: ClassificationPredictive) -> Array:
    """Top-1 agreement between two predictives (Izmailov et al. 2021).

        agreement = 1/N sum_i 1[argmax_c p_a(c | x_i) = argmax_c p_b(c | x_i)]

    Reference:
      Izmailov, Vikram, Hoffman & Wilson (2021), "What Are Bayesian Neural
      Network Posteriors Really Like?", ICML.

    Args:
      pred_a: classification predictive ``[N, C]``, e.g. the HMC reference.
      pred_b: classification predictive of the same shape.

    Returns:
      Scalar agreement in [0, 1]; NaN if either predictive is not finite.
    """
    check_pair(pred_a, pred_b, "agreement")
    same = jnp.argmax(pred_a.log_probs, axis=-1) == jnp.argmax(pred_b.log_probs, axis=-1)
    return finite_mean(same, finite_points(pred_a) & finite_points(pred_b))


def total_variation(pred_a: ClassificationPredictive, pred_b: ClassificationPredictive) -> Array:
    """Mean total-variation distance between two predictives (Izmailov et al. 2021).

        TV = 1/N sum_i 1/2 sum_c |p_a(c | x_i) - p_b(c | x_i)|,   in [0, 1]

    Reference:
      Izmailov, Vikram, Hoffman & Wilson (2021), "What Are Bayesian Neural
      Network Posteriors Really Like?", ICML.

    Args:
      pred_a: classification predictive ``[N, C]``.
      pred_b: classification predictive of the same shape.

    Returns:
      Scalar mean total variation; NaN if either predictive is not finite.
    """
    check_pair(pred_a, pred_b, "total_variation")
    distance = 0.5 * jnp.sum(jnp.abs(pred_a.probs - pred_b.probs), axis=-1)
    return finite_mean(distance, finite_points(pred_a) & finite_points(pred_b))
