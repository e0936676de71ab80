"""Metrics of a classifier's averaged prediction against labels: accuracy, calibration (ECE), Brier score."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax.metrics.validation import check_labels, finite_mean, finite_points
from bayesjax.predictive import ClassificationPredictive
from bayesjax.types import Array

__all__ = ["accuracy", "brier", "ece", "reliability_bins"]


def accuracy(pred: ClassificationPredictive, y: Array) -> Array:
    """Fraction of points whose most probable class is the label.

        acc = 1/N sum_i 1[argmax_c p(c | x_i, D) = y_i]

    Ties in the averaged probabilities go to the lowest class index. NaN if
    any point's probabilities are not finite (a diverged posterior), never the
    accuracy of ``argmax`` over NaNs.

    Args:
      pred: classification predictive, ``probs [N, C]``.
      y: integer labels ``[N]``.

    Returns:
      Scalar accuracy in [0, 1], or NaN.

    Raises:
      ValueError: ``y`` is not integer ``[N]`` (or, when concrete, out of range).
      TypeError: ``pred`` is not a ClassificationPredictive.
    """
    y = check_labels(pred, y, "accuracy")
    return finite_mean(jnp.argmax(pred.log_probs, axis=-1) == y, finite_points(pred))


def reliability_bins(
    pred: ClassificationPredictive, y: Array, num_bins: int = 15
) -> tuple[Array, Array, Array]:
    """Per-bin counts, accuracies and confidences of a reliability diagram.

    Confidence is the top averaged probability ``conf_i = max_c p(c | x_i, D)``.
    Bins are equal-width in [0, 1] and right-closed: bin ``b`` holds
    ``b/B < conf <= (b+1)/B`` (edges rounded to the predictive's dtype), and
    bin 0 also holds ``conf = 0``; confidences that round above 1 fall in the
    last bin. This is the convention of Guo et al. (2017).

    Args:
      pred: classification predictive.
      y: integer labels ``[N]``.
      num_bins: number of bins B (a static Python int >= 1).

    Returns:
      ``(counts, acc, conf)``, each ``[B]``: number of points per bin, and the
      mean correctness / mean confidence of each bin (0 for empty bins; NaN
      in a bin holding a point whose probabilities are not finite).
    """
    y = check_labels(pred, y, "reliability_bins")
    if not isinstance(num_bins, (int, np.integer)) or isinstance(num_bins, bool) or num_bins < 1:
        raise ValueError(f"num_bins must be a static int >= 1, got {num_bins!r}")
    num_bins = int(num_bins)
    conf = jnp.exp(jnp.max(pred.log_probs, axis=-1))
    correct = jnp.where(finite_points(pred), jnp.argmax(pred.log_probs, axis=-1) == y, jnp.nan).astype(conf.dtype)
    edges = jnp.arange(num_bins + 1, dtype=conf.dtype) / num_bins  # correctly rounded b / B
    index = jnp.clip(jnp.searchsorted(edges, conf, side="left") - 1, 0, num_bins - 1)
    counts = jax.ops.segment_sum(jnp.ones_like(conf), index, num_segments=num_bins)
    correct_sum = jax.ops.segment_sum(correct, index, num_segments=num_bins)
    conf_sum = jax.ops.segment_sum(conf, index, num_segments=num_bins)
    safe = jnp.maximum(counts, 1.0)
    return counts, correct_sum / safe, conf_sum / safe


def ece(pred: ClassificationPredictive, y: Array, num_bins: int = 15) -> Array:
    """Expected calibration error with equal-width confidence bins (Guo et al. 2017).

        ECE = sum_b |B_b| / N * |acc(B_b) - conf(B_b)|

    where ``B_b`` is the set of points whose top probability falls in bin
    ``b`` (right-closed bins ``(b/B, (b+1)/B]``, the first also holding 0; see
    :func:`reliability_bins`), ``acc`` the fraction of them classified
    correctly and ``conf`` their mean top probability.

    Reference:
      Guo, Pleiss, Sun & Weinberger (2017), "On Calibration of Modern Neural
      Networks", ICML.

    Args:
      pred: classification predictive.
      y: integer labels ``[N]``.
      num_bins: number of bins B (static int, default 15 as in Guo et al.).

    Returns:
      Scalar ECE in [0, 1]; NaN if any point's probabilities are not finite.
    """
    counts, acc, conf = reliability_bins(pred, y, num_bins)
    return jnp.sum(counts * jnp.abs(acc - conf)) / jnp.sum(counts)


def brier(pred: ClassificationPredictive, y: Array) -> Array:
    """Multi-class Brier score (Brier 1950).

        BS = 1/N sum_i sum_c (p(c | x_i, D) - 1[y_i = c])^2,   in [0, 2]

    Note ``sklearn.metrics.brier_score_loss`` with a vector of positive-class
    probabilities is the binary form ``1/N sum_i (p_i - y_i)^2``; for two
    classes this score is exactly twice it.

    Reference:
      Brier (1950), "Verification of forecasts expressed in terms of
      probability", Monthly Weather Review 78(1).

    Args:
      pred: classification predictive.
      y: integer labels ``[N]``.

    Returns:
      Scalar Brier score; NaN if any point's probabilities are not finite.
    """
    y = check_labels(pred, y, "brier")
    probs = pred.probs
    onehot = jax.nn.one_hot(y, probs.shape[-1], dtype=probs.dtype)
    return finite_mean(jnp.sum(jnp.square(probs - onehot), axis=-1), finite_points(pred))
