"""Metrics of a Bayesian model average: accuracy, likelihood, calibration, OOD, agreement.

Every metric reads a :class:`~bayesjax.predictive.ClassificationPredictive` or
:class:`~bayesjax.predictive.RegressionPredictive` (the output of
:func:`bayesjax.predictive`) and returns a scalar ``jnp`` array. They are pure
``jnp`` code: they jit, vmap (e.g. over a leading temperature or seed axis of
a stacked predictive) and run on any device. Shapes are checked when traced,
so a mismatch raises ``ValueError`` under ``jax.jit`` as well; label values are
range-checked only when they are concrete (outside ``jit``). Each metric
validates in Python and then runs one compiled kernel, so eager calls do not
pay op-by-op dispatch; inside a user's ``jit`` the kernels inline.

Regression models in bayesjax are usually trained on standardized targets
``y_std_units = (y_orig - y_mean) / y_std``. The regression metrics take that
``y_std`` and report in ORIGINAL units, which is what the UCI tables
(Hernandez-Lobato & Adams 2015; Lakshminarayanan et al. 2017) report: an RMSE
scales by ``y_std``; a density transforms by the Jacobian,
``p(y_orig) = p(y_std_units) / y_std``, so an NLL shifts by ``+ log(y_std)``.

:func:`evaluate` bundles the standard set into a dict of Python floats.

Example:
  >>> import jax.numpy as jnp
  >>> from bayesjax._checks import concrete
from bayesjax.predictive import ClassificationPredictive
  >>> probs = jnp.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
  >>> pred = ClassificationPredictive(jnp.log(probs), jnp.zeros(3))
  >>> y = jnp.array([0, 1, 1])
  >>> round(float(accuracy(pred, y)), 4)
  0.6667
  >>> sorted(evaluate(pred, y))
  ['accuracy', 'brier', 'ece', 'nll']
"""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax._checks import concrete
from bayesjax.predictive import ClassificationPredictive, RegressionPredictive
from bayesjax.types import Array

__all__ = [
    "accuracy",
    "nll",
    "ece",
    "reliability_bins",
    "brier",
    "rmse",
    "gaussian_nll",
    "auroc",
    "agreement",
    "total_variation",
    "evaluate",
]


# ----------------------------------------------------------------------------- validation


def _num_points(pred, fn: str) -> int:
    if isinstance(pred, ClassificationPredictive):
        if jnp.ndim(pred.log_probs) != 2:
            raise ValueError(f"{fn}: log_probs must have shape [N, C], got {jnp.shape(pred.log_probs)}")
        return pred.log_probs.shape[0]
    if isinstance(pred, RegressionPredictive):
        if jnp.ndim(pred.component_mean) != 2 or jnp.shape(pred.component_mean) != jnp.shape(
            pred.component_variance
        ):
            raise ValueError(
                f"{fn}: component_mean and component_variance must both have shape [S, N], got "
                f"{jnp.shape(pred.component_mean)} and {jnp.shape(pred.component_variance)}"
            )
        return pred.component_mean.shape[1]
    raise TypeError(f"{fn}: expected a ClassificationPredictive or RegressionPredictive, got {type(pred).__name__}")


def _classification(pred, fn: str) -> int:
    if not isinstance(pred, ClassificationPredictive):
        raise TypeError(f"{fn} needs a ClassificationPredictive, got {type(pred).__name__}")
    return _num_points(pred, fn)


def _regression(pred, fn: str) -> int:
    if not isinstance(pred, RegressionPredictive):
        raise TypeError(f"{fn} needs a RegressionPredictive, got {type(pred).__name__}")
    return _num_points(pred, fn)


def _labels(pred: ClassificationPredictive, y, fn: str) -> Array:
    """Checks integer labels ``[N]`` against a classification predictive."""
    n = _classification(pred, fn)
    num_classes = pred.log_probs.shape[1]
    if concrete(y) is not None:
        y_np = np.asarray(y)
        if y_np.ndim != 1 or y_np.shape[0] != n:
            raise ValueError(f"{fn}: labels must have shape [N] = ({n},) to match the predictive, got {y_np.shape}")
        if not np.issubdtype(y_np.dtype, np.integer):
            raise ValueError(f"{fn}: labels must be integers, got dtype {y_np.dtype}")
        if y_np.size and (y_np.min() < 0 or y_np.max() >= num_classes):
            raise ValueError(
                f"{fn}: labels out of range: found labels in [{y_np.min()}, {y_np.max()}] "
                f"but the predictive has {num_classes} classes"
            )
    y = jnp.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{fn}: labels must have shape [N] = ({n},) to match the predictive, got {y.shape}")
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"{fn}: labels must be integers, got dtype {y.dtype}")
    return y


def _targets(pred: RegressionPredictive, y, fn: str) -> Array:
    """Checks real targets ``[N]`` against a regression predictive."""
    n = _regression(pred, fn)
    y = jnp.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{fn}: targets must have shape [N] = ({n},) to match the predictive, got {y.shape}")
    return y


def _scale(y_std, fn: str) -> Array:
    """Checks the target scale (positive when concrete); ``None`` means 1."""
    if y_std is None:
        return jnp.asarray(1.0)
    if jnp.ndim(y_std) != 0:
        raise ValueError(f"{fn}: y_std must be a scalar, got shape {jnp.shape(y_std)}")
    if concrete(y_std) is not None and not float(y_std) > 0:
        raise ValueError(f"{fn}: y_std must be > 0, got {y_std}")
    return jnp.asarray(y_std)


def _unit_scale_only(y_std, fn: str) -> None:
    """Classification has no target units: refuse a concrete y_std other than 1."""
    if y_std is not None and concrete(y_std) is not None and float(y_std) != 1.0:
        raise ValueError(f"{fn}: y_std rescales regression targets only; a classification predictive got y_std={y_std}")


def _pair(pred_a, pred_b, fn: str) -> None:
    _classification(pred_a, fn)
    _classification(pred_b, fn)
    if pred_a.log_probs.shape != pred_b.log_probs.shape:
        raise ValueError(
            f"{fn}: the two predictives must have the same shape [N, C], got "
            f"{pred_a.log_probs.shape} and {pred_b.log_probs.shape}"
        )


# ----------------------------------------------------------------------------- classification


def accuracy(pred: ClassificationPredictive, y: Array) -> Array:
    """Fraction of points whose most probable class is the label.

        acc = 1/N sum_i 1[argmax_c p(c | x_i, D) = y_i]

    Ties in the averaged probabilities go to the lowest class index.

    Args:
      pred: classification predictive, ``probs [N, C]``.
      y: integer labels ``[N]``.

    Returns:
      Scalar accuracy in [0, 1].

    Raises:
      ValueError: ``y`` is not integer ``[N]`` (or, when concrete, out of range).
      TypeError: ``pred`` is not a ClassificationPredictive.
    """
    y = _labels(pred, y, "accuracy")
    return _accuracy(pred.log_probs, y)


@jax.jit
def _accuracy(log_probs, y):
    return jnp.mean(jnp.argmax(log_probs, axis=-1) == y)


def nll(pred: ClassificationPredictive | RegressionPredictive, y: Array, y_std: float | Array | None = 1.0) -> Array:
    """Mean negative log predictive density of the Bayesian model average.

        NLL = -1/N sum_i log p(y_i | x_i, D)

    For classification ``p`` is the averaged class probability of the label.
    For regression it is the exact Gaussian mixture density
    ``1/S sum_s N(y_i | mu_s(x_i), sigma_s^2(x_i))`` of
    :meth:`RegressionPredictive.log_prob`. When the model saw standardized
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
      Scalar mean NLL (nats per point).

    Raises:
      ValueError: shape / dtype / scale mismatch.
    """
    if isinstance(pred, ClassificationPredictive):
        _unit_scale_only(y_std, "nll")
        y = _labels(pred, y, "nll")
        return _nll(pred, y, jnp.asarray(1.0, pred.log_probs.dtype))
    y = _targets(pred, y, "nll")
    return _nll(pred, y, _scale(y_std, "nll"))


@jax.jit
def _nll(pred, y, scale):
    return -jnp.mean(pred.log_prob(y)) + jnp.log(scale)


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
      mean correctness / mean confidence of each bin (0 for empty bins).
    """
    y = _labels(pred, y, "reliability_bins")
    if not isinstance(num_bins, (int, np.integer)) or isinstance(num_bins, bool) or num_bins < 1:
        raise ValueError(f"num_bins must be a static int >= 1, got {num_bins!r}")
    return _reliability_bins(pred.log_probs, y, int(num_bins))


@partial(jax.jit, static_argnums=2)
def _reliability_bins(log_probs, y, num_bins):
    log_conf = jnp.max(log_probs, axis=-1)
    conf = jnp.exp(log_conf)
    correct = (jnp.argmax(log_probs, axis=-1) == y).astype(conf.dtype)
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
      Scalar ECE in [0, 1].
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
      Scalar Brier score.
    """
    y = _labels(pred, y, "brier")
    return _brier(pred.log_probs, y)


@jax.jit
def _brier(log_probs, y):
    probs = jnp.exp(log_probs)
    onehot = jax.nn.one_hot(y, probs.shape[-1], dtype=probs.dtype)
    return jnp.mean(jnp.sum(jnp.square(probs - onehot), axis=-1))


# ----------------------------------------------------------------------------- regression


def rmse(pred: RegressionPredictive, y: Array, y_std: float | Array | None = 1.0) -> Array:
    """Root mean squared error of the predictive mean, in original units.

        RMSE = y_std * sqrt(1/N sum_i (E[y | x_i, D] - y_i)^2)

    Args:
      pred: regression predictive.
      y: (standardized) targets ``[N]``.
      y_std: scale of the standardization (> 0; may be traced; ``None`` = 1).

    Returns:
      Scalar RMSE in the units of the original targets.
    """
    y = _targets(pred, y, "rmse")
    return _rmse(pred, y, _scale(y_std, "rmse"))


@jax.jit
def _rmse(pred, y, scale):
    return jnp.sqrt(jnp.mean(jnp.square(pred.mean - y))) * scale


def gaussian_nll(pred: RegressionPredictive, y: Array, y_std: float | Array | None = 1.0) -> Array:
    """NLL of the moment-matched Gaussian N(mean, variance), in original units.

        NLL_G = 1/N sum_i [ 0.5 log(2 pi v_i) + (y_i - m_i)^2 / (2 v_i) ] + log(y_std)

    with ``m_i``, ``v_i`` the mixture's total mean and variance. This is what
    Deep Ensembles report on the UCI benchmarks (Lakshminarayanan, Pritzel &
    Blundell 2017, "Simple and Scalable Predictive Uncertainty Estimation
    using Deep Ensembles"). It coincides with the exact mixture :func:`nll`
    when all components are identical (e.g. S = 1) and differs otherwise, in
    either direction on a given dataset.

    Args:
      pred: regression predictive.
      y: (standardized) targets ``[N]``.
      y_std: scale of the standardization (> 0; may be traced; ``None`` = 1).

    Returns:
      Scalar mean Gaussian NLL (nats per point).
    """
    y = _targets(pred, y, "gaussian_nll")
    return _gaussian_nll(pred, y, _scale(y_std, "gaussian_nll"))


@jax.jit
def _gaussian_nll(pred, y, scale):
    mean, var = pred.mean, pred.variance
    log_density = -0.5 * (jnp.log(2 * math.pi * var) + jnp.square(y - mean) / var)
    return -jnp.mean(log_density) + jnp.log(scale)


# ----------------------------------------------------------------------------- OOD and agreement


def auroc(scores_in: Array, scores_out: Array) -> Array:
    """Area under the ROC curve for detecting out-of-distribution points.

    Positives are the out-of-distribution points; a HIGHER score must mean
    "more likely OOD" (e.g. predictive entropy or mutual information; negate
    a max-probability score). Computed exactly as the normalized Mann-Whitney
    U statistic, ties counted one half:

        AUROC = 1/(n_in n_out) sum_{j in out} sum_{i in in}
                    (1[s_j > s_i] + 1/2 1[s_j = s_i])

    by sorting the in-distribution scores and binary-searching each OOD score
    (O(n log n), jittable). Equals ``sklearn.metrics.roc_auc_score`` with
    labels 1 for ``scores_out`` and 0 for ``scores_in``. NaN scores are not
    supported.

    Args:
      scores_in: scores of in-distribution points, ``[n_in]`` (n_in >= 1).
      scores_out: scores of out-of-distribution points, ``[n_out]`` (n_out >= 1).

    Returns:
      Scalar AUROC in [0, 1]; 0.5 is chance.

    Example:
      >>> float(auroc(jnp.array([0.1, 0.4]), jnp.array([0.4, 0.9])))
      0.875
    """
    scores_in = jnp.asarray(scores_in)
    scores_out = jnp.asarray(scores_out)
    for name, s in (("scores_in", scores_in), ("scores_out", scores_out)):
        if s.ndim != 1 or s.shape[0] == 0:
            raise ValueError(f"auroc: {name} must be a non-empty 1-D array, got shape {s.shape}")
    return _auroc(scores_in, scores_out)


@jax.jit
def _auroc(scores_in, scores_out):
    common = jnp.result_type(scores_in, scores_out)
    sorted_in = jnp.sort(scores_in.astype(common))
    scores_out = scores_out.astype(common)
    below = jnp.searchsorted(sorted_in, scores_out, side="left")  # #in <  s_j
    below_or_tied = jnp.searchsorted(sorted_in, scores_out, side="right")  # #in <= s_j
    float_dtype = jnp.result_type(float) if not jnp.issubdtype(common, jnp.floating) else common
    per_out = (below + below_or_tied).astype(float_dtype) / (2 * scores_in.shape[0])
    return jnp.mean(per_out)


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
      Scalar agreement in [0, 1].
    """
    _pair(pred_a, pred_b, "agreement")
    return _agreement(pred_a.log_probs, pred_b.log_probs)


@jax.jit
def _agreement(log_probs_a, log_probs_b):
    return jnp.mean(jnp.argmax(log_probs_a, axis=-1) == jnp.argmax(log_probs_b, axis=-1))


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
      Scalar mean total variation.
    """
    _pair(pred_a, pred_b, "total_variation")
    return _total_variation(pred_a.log_probs, pred_b.log_probs)


@jax.jit
def _total_variation(log_probs_a, log_probs_b):
    return jnp.mean(0.5 * jnp.sum(jnp.abs(jnp.exp(log_probs_a) - jnp.exp(log_probs_b)), axis=-1))


# ----------------------------------------------------------------------------- bundle


CLASSIFICATION_METRICS = ("accuracy", "nll", "ece", "brier")
REGRESSION_METRICS = ("rmse", "nll", "gaussian_nll")


def _classification_metrics(pred, y):
    return {"accuracy": accuracy(pred, y), "nll": nll(pred, y), "ece": ece(pred, y), "brier": brier(pred, y)}


def _regression_metrics(pred, y, y_std):
    return {"rmse": rmse(pred, y, y_std), "nll": nll(pred, y, y_std), "gaussian_nll": gaussian_nll(pred, y, y_std)}


_classification_metrics_jit = jax.jit(_classification_metrics)
_regression_metrics_jit = jax.jit(_regression_metrics)


def evaluate(
    pred: ClassificationPredictive | RegressionPredictive, y: Array, y_std: float | Array | None = 1.0
) -> dict[str, float]:
    """The standard metrics of a predictive, as Python floats.

    Classification: ``accuracy``, ``nll``, ``ece`` (15 bins), ``brier``.
    Regression: ``rmse``, ``nll`` (exact mixture) and ``gaussian_nll``
    (moment-matched), all in original units given ``y_std``.

    The metrics run as one jitted computation (compiled once per shape); this
    function itself returns host floats, so call the individual metrics inside
    your own ``jit`` / ``vmap``.

    Args:
      pred: classification or regression predictive.
      y: integer labels or (standardized) targets ``[N]``.
      y_std: target standardization scale (regression; ``None`` means 1; a
        value other than 1 with a classification predictive raises).

    Returns:
      Dict from metric name to value.

    Example:
      >>> metrics = evaluate(pred, ds.y_test, y_std=ds.y_std)  # doctest: +SKIP
    """
    if isinstance(pred, ClassificationPredictive):
        _unit_scale_only(y_std, "evaluate")
        y = _labels(pred, y, "evaluate")  # concrete checks (label range) before jit
        values, names = _classification_metrics_jit(pred, y), CLASSIFICATION_METRICS
    elif isinstance(pred, RegressionPredictive):
        y = _targets(pred, y, "evaluate")
        values, names = _regression_metrics_jit(pred, y, _scale(y_std, "evaluate")), REGRESSION_METRICS
    else:
        raise TypeError(f"evaluate: expected a ClassificationPredictive or RegressionPredictive, got {type(pred).__name__}")
    values = jax.device_get(values)  # a jitted dict comes back key-sorted: restore the documented order
    return {name: float(values[name]) for name in names}
