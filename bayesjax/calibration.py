"""Post-hoc calibration of any predictive on a held-out split: temperature scaling and split-conformal prediction.

Both read only the predictive on a validation (calibration) split the model
did not train on, so they suit every method alike: :func:`temperature_scale`
fits one temperature to the validation likelihood and :func:`apply_temperature`
applies it; :func:`conformal_sets` (classification) and
:func:`conformal_intervals` (regression), or :func:`conformal` for either,
turn validation scores into sets or intervals with a finite-sample coverage
guarantee and report their coverage on a test split. Inputs are bayesjax
predictives or plain arrays: logits ``[N, C]`` (log-probabilities are
logits), or a regression ``(mean, std)`` pair. Inputs are checked before
anything compiles; the arithmetic is jitted.
"""
from __future__ import annotations

import math
import warnings
from fractions import Fraction
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax.checks import check_positive, concrete
from bayesjax.metrics.validation import check_labels
from bayesjax.predictive import ClassificationPredictive, RegressionPredictive
from bayesjax.types import Array

__all__ = [
    "ConformalIntervals",
    "ConformalSets",
    "apply_temperature",
    "conformal",
    "conformal_intervals",
    "conformal_sets",
    "temperature_scale",
]

_BISECTIONS = 50  # halvings of the log-temperature interval: past float32 resolution


class ConformalSets(NamedTuple):
    """Split-conformal prediction sets of a classifier.

    Attributes:
      sets: ``[M, C]`` booleans, class c in the set of test point m.
      threshold: the score quantile q (inf when the calibration split is too
        small for ``alpha``: every set is every class).
      coverage: fraction of test labels in their set (None without labels).
      mean_size: mean number of classes per set.
    """

    sets: Array
    threshold: Array
    coverage: Array | None
    mean_size: Array


class ConformalIntervals(NamedTuple):
    """Split-conformal prediction intervals of a regression model.

    Attributes:
      lower: ``[M]`` lower ends, ``mean - threshold * std``.
      upper: ``[M]`` upper ends, ``mean + threshold * std``.
      threshold: the score quantile q (inf if the calibration split is too small).
      coverage: fraction of test targets in their interval (None without).
      mean_width: mean of ``upper - lower``.
    """

    lower: Array
    upper: Array
    threshold: Array
    coverage: Array | None
    mean_width: Array


def _logits(value, fn: str, name: str) -> Array:
    """``[N, C]`` finite logits from a ClassificationPredictive or an array, else a clear error."""
    if isinstance(value, (tuple, list)) and not isinstance(value, ClassificationPredictive):
        raise TypeError(f"{fn}: {name} is a regression predictive or a (mean, std) pair; this takes logits [N, C]")
    logits = jnp.asarray(value.log_probs if isinstance(value, ClassificationPredictive) else value)
    if logits.ndim != 2 or 0 in logits.shape:
        raise ValueError(f"{fn}: {name} must be logits or log-probabilities [N, C], got shape {logits.shape}")
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise ValueError(f"{fn}: {name} must be floating point, got dtype {logits.dtype}")
    values = _finite(logits, fn, name)
    probabilities = values is not None and np.all((values >= 0) & (values <= 1))
    if probabilities and values.shape[1] > 1 and np.allclose(values.sum(-1), 1, atol=1e-4):
        raise ValueError(f"{fn}: {name} looks like probabilities (rows in [0, 1] summing to 1); "
                         "pass logits or log-probabilities (np.log(probs))")
    return logits


def _finite(array: Array, fn: str, name: str) -> np.ndarray | None:
    """``array``'s values when concrete (None when traced); ValueError if any is NaN or inf."""
    values = concrete(array)
    if values is not None and not np.all(np.isfinite(values)):
        raise ValueError(f"{fn}: {name} has {int(np.sum(~np.isfinite(values)))} non-finite value(s) (NaN or inf)")
    return values


def _labels(logits: Array, y, fn: str, name: str) -> Array:
    """Integer labels ``[N]`` matching ``logits`` (range checked when concrete), checked as the metrics do."""
    return check_labels(ClassificationPredictive(logits, jnp.zeros(logits.shape[:1])), y, f"{fn} ({name})")


def _check_alpha(alpha, fn: str) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (float, int, np.floating)) or not 0 < alpha < 1:
        raise ValueError(f"{fn}: alpha (the miscoverage) must be a number strictly between 0 and 1, got {alpha!r}")
    return float(alpha)


def _rank(alpha: float, n: int, fn: str) -> int:
    """k = ceil((n + 1)(1 - alpha)), exactly (rational arithmetic on the float alpha); warns when k > n."""
    k = math.ceil((n + 1) * (1 - Fraction(alpha)))
    if k > n:  # n < 1 / alpha - 1
        warnings.warn(f"{fn}: alpha={alpha} needs at least {math.ceil(1 / Fraction(alpha)) - 1} calibration "
                      f"points, got {n}: the threshold is infinite (every class / an unbounded interval)",
                      UserWarning, stacklevel=3)
    return k


@jax.jit
def _fit_temperature(logits: Array, y: Array, low: Array, high: Array) -> Array:
    """Bisection on u = log(1 / T) in [-log high, -log low] for the zero of the NLL's slope in beta = e^u."""
    logits = logits - jnp.max(logits, axis=-1, keepdims=True)  # softmax and the slope are shift-invariant
    label_logits = jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0]

    def halve(_, bounds):
        lo, hi = bounds
        middle = (lo + hi) / 2
        probs = jax.nn.softmax(jnp.exp(middle) * logits, axis=-1)
        rising = jnp.mean(jnp.sum(probs * logits, axis=-1) - label_logits) > 0  # mean_i(E_p[z_i] - z_{i, y_i})
        return jnp.where(rising, lo, middle), jnp.where(rising, middle, hi)

    lo, hi = jax.lax.fori_loop(0, _BISECTIONS, halve, (-jnp.log(high), -jnp.log(low)))
    return jnp.exp(-(lo + hi) / 2)


def temperature_scale(logits_val, y_val, *, bounds: tuple[float, float] = (0.01, 100.0)) -> Array:
    r"""The temperature that minimizes the validation NLL of softmax(logits / T) (Guo et al. 2017).

    .. math::

        \hat T = \arg\min_{T > 0} \; -\frac1N \sum_i \log \mathrm{softmax}(z_i / T)_{y_i}.

    With :math:`\beta = 1/T` the objective
    :math:`\frac1N \sum_i (\log \sum_c e^{\beta z_{ic}} - \beta z_{i y_i})` is
    convex, its derivative :math:`\frac1N \sum_i (\mathbb E_{p_\beta}[z_i] - z_{i y_i})`
    is nondecreasing, and bisection on it in :math:`\log \beta` finds the
    minimum to float precision. T > 1 softens an overconfident predictive,
    T < 1 sharpens an underconfident one; the argmax, hence the accuracy,
    never changes. A Bayesian model average has no logits of its own: its log
    probabilities serve (softmax(log p / T) is p^(1/T), renormalized).
    Reference: Guo, Pleiss, Sun & Weinberger (2017), "On Calibration of
    Modern Neural Networks", ICML.

    Args:
      logits_val: validation logits or log-probabilities ``[N, C]``, or a
        :class:`~bayesjax.predictive.ClassificationPredictive`.
      y_val: integer validation labels ``[N]``.
      bounds: the search interval ``(T_min, T_max)``; a result clipped to it is warned of.

    Returns:
      The temperature, a scalar array.

    Raises:
      ValueError: shapes, dtypes, non-finite values, probabilities for
        logits, labels out of range, or bounds.

    Example:
      >>> import jax
      >>> import bayesjax as bj
      >>> true_logits = 2.0 * jax.random.normal(jax.random.key(0), (2000, 5))
      >>> labels = jax.random.categorical(jax.random.key(1), true_logits)
      >>> temperature = bj.calibration.temperature_scale(3.0 * true_logits, labels)  # 3x overconfident
      >>> bool(abs(temperature - 3.0) < 0.3)
      True
    """
    logits = _logits(logits_val, "temperature_scale", "logits_val")
    y = _labels(logits, y_val, "temperature_scale", "y_val")
    if len(bounds) != 2 or not 0 < bounds[0] < bounds[1] < math.inf:
        raise ValueError(f"temperature_scale: bounds must be (T_min, T_max), 0 < T_min < T_max < inf, got {bounds!r}")
    dtype = jnp.promote_types(logits.dtype, jnp.float32)
    temperature = _fit_temperature(logits.astype(dtype), y, *(jnp.asarray(b, dtype) for b in bounds))
    if concrete(temperature) is not None and np.any(np.isclose(float(temperature), bounds, rtol=1e-4)):
        warnings.warn(f"temperature_scale: the validation NLL is least at the search bound T={float(temperature):g} "
                      "(e.g. every validation point classified right): the temperature is not identified", stacklevel=2)
    return temperature


def apply_temperature(logits, temperature):
    """log softmax(logits / T): calibrated log-probabilities, or a calibrated predictive.

    Args:
      logits: logits or log-probabilities ``[N, C]``, or a
        :class:`~bayesjax.predictive.ClassificationPredictive`.
      temperature: T > 0, e.g. from :func:`temperature_scale`.

    Returns:
      Log-probabilities ``[N, C]``; for a predictive, the predictive with
      them as ``log_probs`` and ``expected_entropy`` (the members' mean
      entropy, which scaling the average does not define) unchanged, so its
      ``mutual_information`` is no longer the epistemic part.

    Raises:
      ValueError: as :func:`temperature_scale`, or T not finite and > 0.

    Example:
      >>> import jax.numpy as jnp
      >>> import bayesjax as bj
      >>> scaled = bj.calibration.apply_temperature(jnp.log(jnp.array([[0.8, 0.2]])), 2.0)
      >>> [round(float(p), 3) for p in jnp.exp(scaled[0])]  # 0.8 ** 0.5 : 0.2 ** 0.5, renormalized
      [0.667, 0.333]
    """
    log_probs = _logits(logits, "apply_temperature", "logits")
    check_positive("apply_temperature: temperature", temperature)
    scaled = jax.nn.log_softmax(log_probs / temperature, axis=-1)
    if isinstance(logits, ClassificationPredictive):
        return logits._replace(log_probs=scaled)
    return scaled


@jax.jit
def _quantile(scores: Array, k: int) -> Array:
    """The k-th smallest score (1-based), inf when k exceeds their number."""
    ordered = jnp.sort(scores)
    return jnp.where(k <= scores.shape[0], ordered[jnp.minimum(k, scores.shape[0]) - 1], jnp.inf)


def conformal_sets(logits_val, y_val, logits_test, y_test=None, *, alpha: float = 0.1) -> ConformalSets:
    r"""Split-conformal prediction sets for classification, with the score 1 - p(y | x).

    On n validation points the scores :math:`s_i = 1 - p(y_i \mid x_i)` give
    the threshold :math:`\hat q = s_{(k)}`, the k-th smallest with
    :math:`k = \lceil (n + 1)(1 - \alpha) \rceil` (the
    :math:`\lceil (n+1)(1-\alpha) \rceil / n` empirical quantile), and each
    test point gets the set :math:`\{c : 1 - p(c \mid x) \le \hat q\}`. If the
    validation and test points are exchangeable, a test label falls in its
    set with probability

    .. math::

        1 - \alpha \;\le\; P(y \in C(x)) \;\le\; 1 - \alpha + \frac{1}{n + 1},

    the upper bound when scores have no ties; a sharper predictive gives
    smaller sets, never lower coverage (with the true probabilities, the
    smallest sets: Sadinle, Lei & Wasserman 2019, JASA). References: Vovk,
    Gammerman & Shafer (2005), *Algorithmic Learning in a Random World*;
    Angelopoulos & Bates (2021), "A Gentle Introduction to Conformal
    Prediction".

    Args:
      logits_val: validation logits or log-probabilities ``[n, C]``, or a
        :class:`~bayesjax.predictive.ClassificationPredictive`.
      y_val: integer validation labels ``[n]``.
      logits_test: as ``logits_val``, ``[M, C]``.
      y_test: integer test labels ``[M]``, for the empirical coverage.
      alpha: the allowed miscoverage, in (0, 1): 0.1 asks for 90% coverage.

    Returns:
      A :class:`ConformalSets`.

    Raises:
      ValueError: as :func:`temperature_scale`, class counts, or alpha.

    Example:
      >>> import jax.numpy as jnp
      >>> import bayesjax as bj
      >>> logits = jnp.log(jnp.array([[0.7, 0.2, 0.1]] * 9 + [[0.1, 0.2, 0.7]]))
      >>> labels = jnp.array([0] * 8 + [1, 2])
      >>> result = bj.calibration.conformal_sets(logits, labels, logits[:2], labels[:2], alpha=0.1)
      >>> float(result.threshold)  # k = ceil(11 * 0.9) = 10: the largest of the 10 scores, 1 - 0.2
      0.8
      >>> result.sets.tolist(), float(result.coverage)  # every class with p >= 0.2
      ([[True, True, False], [True, True, False]], 1.0)
    """
    fn = "conformal_sets"
    alpha = _check_alpha(alpha, fn)
    val, test = _logits(logits_val, fn, "logits_val"), _logits(logits_test, fn, "logits_test")
    if val.shape[1] != test.shape[1]:
        raise ValueError(f"{fn}: {val.shape[1]} classes in logits_val but {test.shape[1]} in logits_test")
    y = _labels(val, y_val, fn, "y_val")
    labels = None if y_test is None else _labels(test, y_test, fn, "y_test")
    k = _rank(alpha, val.shape[0], fn)
    threshold = _quantile(1 - jnp.take_along_axis(jax.nn.softmax(val, axis=-1), y[:, None], axis=-1)[:, 0], k)
    sets = 1 - jax.nn.softmax(test, axis=-1) <= threshold
    coverage = None if labels is None else jnp.mean(jnp.take_along_axis(sets, labels[:, None], axis=-1))
    return ConformalSets(sets, threshold, coverage, jnp.mean(jnp.sum(sets, axis=-1)))


def _mean_std(value, fn: str, name: str) -> tuple[Array, Array]:
    """``(mean, std)`` ``[N]`` from a RegressionPredictive or a pair, checked finite (std > 0)."""
    if isinstance(value, ClassificationPredictive):
        raise TypeError(f"{fn}: {name} is a ClassificationPredictive; this takes a regression predictive")
    if isinstance(value, RegressionPredictive):
        mean, std = value.mean, jnp.sqrt(value.variance)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        mean, std = (jnp.asarray(v) for v in value)
    else:
        raise TypeError(f"{fn}: {name} must be a RegressionPredictive or a (mean, std) pair, "
                        f"got {type(value).__name__}")
    if mean.ndim != 1 or mean.shape != std.shape or mean.shape[0] == 0:
        raise ValueError(f"{fn}: {name} needs mean and std of one shape [N], got {mean.shape} and {std.shape}")
    _finite(mean, fn, f"the mean of {name}")
    std_values = _finite(std, fn, f"the std of {name}")
    if std_values is not None and np.any(std_values <= 0):
        raise ValueError(f"{fn}: the std of {name} must be > 0, found {int(np.sum(std_values <= 0))} value(s) <= 0")
    return mean, std


def _targets(y, n: int, fn: str, name: str) -> Array:
    """Finite real targets ``[n]``."""
    y = jnp.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{fn}: {name} must have shape [N] = ({n},) to match the predictive, got {y.shape}")
    _finite(y, fn, name)
    return y


def conformal_intervals(pred_val, y_val, pred_test, y_test=None, *, alpha: float = 0.1,
                        score: str = "normalized") -> ConformalIntervals:
    r"""Split-conformal prediction intervals for regression, around the predictive mean.

    With :math:`\mu, \sigma` the predictive mean and standard deviation, the
    validation scores are :math:`s_i = |y_i - \mu(x_i)| / \sigma(x_i)`
    (``score="normalized"``: intervals as wide as the model's own uncertainty,
    Lei et al. 2018 §5.2) or :math:`s_i = |y_i - \mu(x_i)|` (``"residual"``:
    one width everywhere); :math:`\hat q` is their k-th smallest,
    :math:`k = \lceil (n + 1)(1 - \alpha) \rceil`, and each test point gets

    .. math::

        [\mu(x) - \hat q\,\sigma(x),\; \mu(x) + \hat q\,\sigma(x)]

    (:math:`\sigma = 1` for residual scores), which covers an exchangeable
    test target with probability between :math:`1 - \alpha` and
    :math:`1 - \alpha + 1/(n + 1)`. Reference: Lei, G'Sell, Rinaldo,
    Tibshirani & Wasserman (2018), "Distribution-free predictive inference for
    regression", JASA.

    Args:
      pred_val: a :class:`~bayesjax.predictive.RegressionPredictive` (its
        mean and total variance) or a ``(mean, std)`` pair, ``[n]``.
      y_val: validation targets ``[n]``, in the predictive's units.
      pred_test: as ``pred_val``, ``[M]``.
      y_test: test targets ``[M]``, for the empirical coverage.
      alpha: the allowed miscoverage, in (0, 1).
      score: ``"normalized"`` or ``"residual"``.

    Returns:
      A :class:`ConformalIntervals`.

    Raises:
      ValueError: shapes, non-finite values, std <= 0, alpha, or score.

    Example:
      >>> import jax.numpy as jnp
      >>> import bayesjax as bj
      >>> mean, std = jnp.zeros(9), jnp.ones(9)
      >>> y = jnp.arange(-4.0, 5.0)  # scores 4, 3, 2, 1, 0, 1, 2, 3, 4
      >>> result = bj.calibration.conformal_intervals((mean, std), y, (mean[:1], 2 * std[:1]), alpha=0.2)
      >>> float(result.threshold), float(result.lower[0]), float(result.upper[0])  # k = ceil(10 * 0.8) = 8
      (4.0, -8.0, 8.0)
    """
    fn = "conformal_intervals"
    alpha = _check_alpha(alpha, fn)
    if score not in ("normalized", "residual"):
        raise ValueError(f"{fn}: score must be 'normalized' or 'residual', got {score!r}")
    mean_val, std_val = _mean_std(pred_val, fn, "pred_val")
    mean_test, std_test = _mean_std(pred_test, fn, "pred_test")
    y = _targets(y_val, mean_val.shape[0], fn, "y_val")
    targets = None if y_test is None else _targets(y_test, mean_test.shape[0], fn, "y_test")
    if score == "residual":
        std_val, std_test = jnp.ones_like(std_val), jnp.ones_like(std_test)
    threshold = _quantile(jnp.abs(y - mean_val) / std_val, _rank(alpha, mean_val.shape[0], fn))
    lower, upper = mean_test - threshold * std_test, mean_test + threshold * std_test
    coverage = None if targets is None else jnp.mean((lower <= targets) & (targets <= upper))
    return ConformalIntervals(lower, upper, threshold, coverage, jnp.mean(upper - lower))


def conformal(pred_val, y_val, pred_test, y_test=None, *, alpha: float = 0.1, **options):
    """Split-conformal sets or intervals, whichever fits the predictive.

    Logits or a :class:`~bayesjax.predictive.ClassificationPredictive` go to
    :func:`conformal_sets`; a ``(mean, std)`` pair or a
    :class:`~bayesjax.predictive.RegressionPredictive` to
    :func:`conformal_intervals` (``options``: its ``score``).

    Example:
      >>> import jax.numpy as jnp
      >>> import bayesjax as bj
      >>> pair = (jnp.zeros(9), jnp.ones(9))
      >>> type(bj.calibration.conformal(pair, jnp.zeros(9), pair)).__name__
      'ConformalIntervals'
    """
    if isinstance(pred_val, (tuple, list)) and not isinstance(pred_val, ClassificationPredictive):
        return conformal_intervals(pred_val, y_val, pred_test, y_test, alpha=alpha, **options)
    return conformal_sets(pred_val, y_val, pred_test, y_test, alpha=alpha, **options)
