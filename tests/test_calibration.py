"""Tests for bayesjax.calibration: temperature scaling and split-conformal sets and intervals on synthetic data.

The data are exchangeable by construction: true logits t ~ N(0, 2^2) per
class, labels drawn from softmax(t); regression targets y = sin(x) + noise
with a spread that grows with |x|. The conformal coverage tests average over
R = 2,000 independent calibration / test splits (vmapped): for continuous
scores the expected coverage is exactly k / (n + 1) with k = ceil((n + 1)(1 -
alpha)), inside [1 - alpha, 1 - alpha + 1 / (n + 1)); the average's sd is
sqrt((alpha (1 - alpha) / (n + 2) + alpha (1 - alpha) / m) / R) (the
calibration split's Beta(k, n + 1 - k) coverage plus the test split's
binomial noise).
"""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from bayesjax.predictive import ClassificationPredictive, RegressionPredictive

NUM_CLASSES = 5
ALPHA = 0.1
N_CAL, N_TEST, REPEATS = 204, 500, 2000  # (n + 1)(1 - alpha) = 184.5: k / (n + 1) = 0.9024, mid-interval


def classification_data(key, shape):
    """True logits ``shape + [C]`` and labels drawn from them."""
    logit_key, label_key = jax.random.split(key)
    logits = 2.0 * jax.random.normal(logit_key, shape + (NUM_CLASSES,))
    return logits, jax.random.categorical(label_key, logits)


def regression_data(key, shape):
    """Targets y = sin(x) + (0.2 + 0.3 |x|) eps, x ~ U(-3, 3), and the exact predictive mean and std."""
    x_key, noise_key = jax.random.split(key)
    x = jax.random.uniform(x_key, shape, minval=-3.0, maxval=3.0)
    std = 0.2 + 0.3 * jnp.abs(x)
    return jnp.sin(x) + std * jax.random.normal(noise_key, shape), jnp.sin(x), std


def predictive(log_probs):
    return ClassificationPredictive(jax.nn.log_softmax(log_probs), jnp.zeros(log_probs.shape[0]))


def test_temperature_scaling_mends_an_overconfident_predictive_without_changing_its_accuracy():
    logits, labels = classification_data(jax.random.key(0), (4000,))
    val, test = slice(0, 2000), slice(2000, None)
    overconfident = predictive(3.0 * logits)  # the true probabilities, sharpened
    temperature = bj.calibration.temperature_scale(overconfident.log_probs[val], labels[val])
    calibrated = bj.calibration.apply_temperature(overconfident, temperature)
    assert isinstance(calibrated, ClassificationPredictive)
    for split in (val, test):
        before, after = (ClassificationPredictive(p.log_probs[split], p.expected_entropy[split])
                         for p in (overconfident, calibrated))
        y = labels[split]
        assert float(bj.metrics.nll(after, y)) < float(bj.metrics.nll(before, y)) - 0.1
        assert float(bj.metrics.ece(after, y)) < 0.5 * float(bj.metrics.ece(before, y))
        np.testing.assert_array_equal(jnp.argmax(after.log_probs, -1), jnp.argmax(before.log_probs, -1))
    # The fit is the minimum: nearby temperatures do worse on the validation split.
    nll = lambda t: float(bj.metrics.nll(predictive(overconfident.log_probs[val] / t), labels[val]))  # noqa: E731
    assert nll(temperature) <= min(nll(0.95 * temperature), nll(1.05 * temperature))


@pytest.mark.parametrize("scale", [3.0, 0.5])
def test_the_temperature_of_a_rescaled_predictive_is_recovered(scale):
    """logits = scale * true logits: the NLL minimizer is T = scale, up to the MLE's sampling error.

    With beta = 1 / T, the MLE of beta has sd 1 / sqrt(N I), I = mean_i Var_p(z_i)
    (the Fisher information of the scaled logits z = scale * t at the truth);
    by the delta method sd(T) = T^2 sd(beta). The tolerance is 4 sd.
    """
    logits, labels = classification_data(jax.random.key(1), (5000,))
    z = scale * logits
    probs = jax.nn.softmax(logits, axis=-1)
    information = float(jnp.mean(jnp.sum(probs * z**2, -1) - jnp.sum(probs * z, -1) ** 2))
    sd = scale**2 / np.sqrt(len(labels) * information)
    temperature = float(bj.calibration.temperature_scale(z, labels))
    assert abs(temperature - scale) < 4 * sd, (temperature, scale, sd)


def check_coverage(coverage, n, m):
    """The average coverage is inside the finite-sample interval and at its exact expectation, up to 4 sd."""
    spread = 4 * np.sqrt((ALPHA * (1 - ALPHA) / (n + 2) + ALPHA * (1 - ALPHA) / m) / len(coverage))
    assert spread < 0.003  # a tenth of the room between the bounds: the checks below mean something
    average = float(jnp.mean(coverage))
    assert 1 - ALPHA - spread < average < 1 - ALPHA + 1 / (n + 1) + spread, average
    exact = np.ceil((n + 1) * (1 - ALPHA)) / (n + 1)  # 185 / 205; an off-by-one rank would be 9 sd away
    assert abs(average - exact) < spread, (average, exact)


def test_split_conformal_sets_cover_at_the_finite_sample_level():
    keys = jax.random.split(jax.random.key(2), REPEATS)
    logits, labels = jax.vmap(lambda k: classification_data(k, (N_CAL + N_TEST,)))(keys)
    overconfident = 3.0 * logits  # conformal coverage holds for any predictive, calibrated or not

    def split(l, y):
        return bj.calibration.conformal_sets(l[:N_CAL], y[:N_CAL], l[N_CAL:], y[N_CAL:], alpha=ALPHA)

    result = jax.vmap(split)(overconfident, labels)
    check_coverage(result.coverage, N_CAL, N_TEST)
    # Sets hold every class whose probability clears the threshold, and nothing else.
    first = bj.calibration.conformal_sets(overconfident[0, :N_CAL], labels[0, :N_CAL], overconfident[0, N_CAL:],
                                          alpha=ALPHA)
    assert first.coverage is None
    probs = jax.nn.softmax(overconfident[0, N_CAL:], -1)
    np.testing.assert_array_equal(first.sets, 1 - probs <= first.threshold)
    assert float(first.mean_size) == pytest.approx(float(first.sets.sum(-1).mean()))


@pytest.mark.parametrize("score", ["normalized", "residual"])
def test_split_conformal_intervals_cover_at_the_finite_sample_level(score):
    keys = jax.random.split(jax.random.key(3), REPEATS)
    y, mean, std = jax.vmap(lambda k: regression_data(k, (N_CAL + N_TEST,)))(keys)
    std = 0.5 * std  # an overconfident model: conformal widens it

    def split(y, mean, std):
        cal, test = slice(0, N_CAL), slice(N_CAL, None)
        return bj.calibration.conformal_intervals((mean[cal], std[cal]), y[cal], (mean[test], std[test]), y[test],
                                                  alpha=ALPHA, score=score)

    result = jax.vmap(split)(y, mean, std)
    check_coverage(result.coverage, N_CAL, N_TEST)
    width = result.upper - result.lower
    if score == "normalized":  # the threshold recovers the understated scale: q ~ 2 * 1.645
        np.testing.assert_allclose(width, 2 * result.threshold[:, None] * std[:, N_CAL:], rtol=1e-5)
        assert abs(float(jnp.median(result.threshold)) - 2 * 1.6449) < 0.1
    else:
        np.testing.assert_allclose(width, 2 * result.threshold[:, None] * jnp.ones_like(width), rtol=1e-5)


def test_a_regression_predictive_and_the_dispatcher():
    y, mean, std = regression_data(jax.random.key(4), (300,))
    pred = RegressionPredictive(mean[None], std[None] ** 2)  # one component: mean and variance exact
    from_pred = bj.calibration.conformal(pred, y, pred, y, alpha=ALPHA)
    from_pair = bj.calibration.conformal_intervals((mean, std), y, (mean, std), y, alpha=ALPHA)
    assert isinstance(from_pred, bj.calibration.ConformalIntervals)
    np.testing.assert_allclose(from_pred.lower, from_pair.lower, rtol=1e-5, atol=1e-6)
    logits, labels = classification_data(jax.random.key(5), (300,))
    assert isinstance(bj.calibration.conformal(predictive(logits), labels, predictive(logits), labels),
                      bj.calibration.ConformalSets)


def test_a_temperature_on_the_search_bound_is_reported():
    logits = 5.0 * jax.nn.one_hot(jnp.arange(20) % 4, 4)  # every validation point right: NLL falls as T -> 0
    with pytest.warns(UserWarning, match="least at the search bound T=0.01"):
        temperature = bj.calibration.temperature_scale(logits, jnp.arange(20) % 4)
    assert float(temperature) == pytest.approx(0.01)
    logits, labels = classification_data(jax.random.key(7), (500,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bj.calibration.temperature_scale(logits, labels)  # an interior minimum: no warning


def test_a_calibration_split_too_small_for_alpha_gives_everything_with_a_warning():
    logits, labels = classification_data(jax.random.key(6), (8,))
    with pytest.warns(UserWarning, match="alpha=0.1 needs at least 9 calibration points, got 8"):
        result = bj.calibration.conformal_sets(logits, labels, logits, labels, alpha=0.1)
    assert bool(jnp.all(result.sets)) and float(result.coverage) == 1.0 and float(result.threshold) == np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bj.calibration.conformal_sets(jnp.concatenate([logits, logits[:1]]), jnp.append(labels, labels[0]),
                                      logits, alpha=0.1)  # 9 points: k = 9, no warning


LOGITS = jnp.zeros((6, 3))
LABELS = jnp.array([0, 1, 2, 0, 1, 2])
PAIR = (jnp.zeros(6), jnp.ones(6))
BAD = [  # (call, error, message)
    (lambda: bj.calibration.temperature_scale(LOGITS[0], LABELS), ValueError, r"logits_val must be .* \[N, C\]"),
    (lambda: bj.calibration.temperature_scale(LOGITS.at[2, 1].set(jnp.nan), LABELS), ValueError, "1 non-finite"),
    (lambda: bj.calibration.temperature_scale(jnp.full((6, 3), 1 / 3), LABELS), ValueError, "looks like probabilities"),
    (lambda: bj.calibration.temperature_scale(LOGITS, LABELS[:5]), ValueError, r"\(y_val\): labels must have shape"),
    (lambda: bj.calibration.temperature_scale(LOGITS, LABELS + 1), ValueError, r"\(y_val\): labels out of range"),
    (lambda: bj.calibration.temperature_scale(LOGITS, LABELS * 1.0), ValueError, "integers"),
    (lambda: bj.calibration.temperature_scale(LOGITS, LABELS, bounds=(0.0, 10.0)), ValueError, "bounds"),
    (lambda: bj.calibration.apply_temperature(LOGITS, -1.0), ValueError, "temperature must be finite and > 0"),
    (lambda: bj.calibration.conformal_sets(LOGITS, LABELS, LOGITS, alpha=1.0), ValueError, "strictly between 0 and 1"),
    (lambda: bj.calibration.conformal_sets(LOGITS, LABELS, LOGITS, alpha=0), ValueError, "alpha"),
    (lambda: bj.calibration.conformal_sets(LOGITS, LABELS, jnp.zeros((6, 4))), ValueError, "3 classes .* but 4"),
    (lambda: bj.calibration.conformal_sets(LOGITS, LABELS, LOGITS, LABELS[:3], alpha=0.5), ValueError,
     r"\(y_test\): labels must have shape"),
    (lambda: bj.calibration.conformal_sets(PAIR, LABELS, LOGITS), TypeError, r"\(mean, std\) pair; this takes"),
    (lambda: bj.calibration.conformal_intervals((jnp.zeros(6), -jnp.ones(6)), LABELS * 1.0, PAIR), ValueError,
     "std of pred_val must be > 0"),
    (lambda: bj.calibration.conformal_intervals(PAIR, jnp.full(6, jnp.nan), PAIR), ValueError, "y_val has 6 non-finite"),
    (lambda: bj.calibration.conformal_intervals(PAIR, jnp.zeros(5), PAIR), ValueError, r"y_val must have shape"),
    (lambda: bj.calibration.conformal_intervals(PAIR, jnp.zeros(6), (jnp.zeros(6), jnp.ones(5))), ValueError,
     "one shape"),
    (lambda: bj.calibration.conformal_intervals(PAIR, jnp.zeros(6), PAIR, score="abs"), ValueError, "score must be"),
    (lambda: bj.calibration.conformal_intervals(predictive(LOGITS), LABELS, PAIR), TypeError, "ClassificationPredictive"),
    (lambda: bj.calibration.conformal_intervals(jnp.zeros(6), jnp.zeros(6), PAIR), TypeError, r"\(mean, std\) pair"),
]


@pytest.mark.parametrize("call, error, message", BAD)
def test_bad_input_is_refused_with_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
