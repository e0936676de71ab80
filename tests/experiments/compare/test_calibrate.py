"""Post-hoc calibration of a method's predictive: temperature scaling and conformal sets / intervals."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesjax import metrics
from bayesjax.experiments.compare.calibrate import CLASSIFICATION_COLUMNS, REGRESSION_COLUMNS, calibrate
from bayesjax.predictive import ClassificationPredictive, RegressionPredictive


def classifier(key, n, sharpness):
    """A predictive ``sharpness`` times as confident as the labels' true distribution."""
    logits_key, label_key = jax.random.split(key)
    logits = 2.0 * jax.random.normal(logits_key, (n, 5))
    labels = jax.random.categorical(label_key, logits)
    return ClassificationPredictive(jax.nn.log_softmax(sharpness * logits), jnp.zeros(n)), labels


def test_an_overconfident_predictive_is_softened_and_its_ece_drops():
    (pred_val, y_val), (pred_test, y_test) = (classifier(jax.random.key(k), 2000, 3.0) for k in (0, 1))
    scores = calibrate(pred_val, y_val, pred_test, y_test, alpha=0.1)
    assert list(scores) == list(CLASSIFICATION_COLUMNS)
    assert abs(scores["ts_temperature"] - 3.0) < 0.3
    ece = float(metrics.ece(pred_test, y_test))
    assert scores["ts_ece"] < ece / 3
    # 2,000 test labels: coverage within 3 binomial sd of 90% (plus the 1 / (n + 1) slack).
    assert abs(scores["conformal_coverage"] - 0.9) < 3 * math.sqrt(0.09 / 2000) + 1 / 2001
    assert 1 <= scores["conformal_size"] <= 5


def test_regression_widths_are_in_original_units_and_non_finite_predictives_are_nan():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(2, 4000))

    def pred(n):
        return RegressionPredictive(jnp.zeros((1, n)), jnp.ones((1, n)))

    scores = calibrate(pred(4000), y[0], pred(4000), y[1], alpha=0.1, y_std=2.0)
    assert list(scores) == list(REGRESSION_COLUMNS)
    assert scores["conformal_width"] == pytest.approx(2.0 * 2 * 1.645, rel=0.05)  # 2 y_std z_0.95
    assert abs(scores["conformal_coverage"] - 0.9) < 3 * math.sqrt(0.09 / 4000) + 1 / 4001
    bad = ClassificationPredictive(jnp.full((4, 3), jnp.nan), jnp.zeros(4))
    good, labels = classifier(jax.random.key(0), 4, 1.0)
    scores = calibrate(bad, labels, good, labels, alpha=0.1)
    assert list(scores) == list(CLASSIFICATION_COLUMNS) and all(math.isnan(v) for v in scores.values())
