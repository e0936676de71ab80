"""Every metric is NaN, never a finite score, for a predictive that is not finite (issue 19, item 2)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesjax import metrics
from bayesjax.predictive import RegressionPredictive
from tests.metrics.predictives import cls_pred, random_cls, random_reg


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_classification_metrics_are_nan(bad):
    pred, probs, y = random_cls(n=40, c=10)
    broken = probs.copy()
    broken[7] = bad  # one point of a diverged posterior: argmax would call it class 0
    y = y.copy()
    y[7] = 0
    pred_bad = cls_pred(broken)
    assert all(np.isnan(v) for v in metrics.evaluate(pred_bad, y).values())
    for fn in (metrics.accuracy, metrics.nll, metrics.ece, metrics.brier):
        assert np.isnan(float(fn(pred_bad, y))), fn.__name__
        assert np.isnan(float(jax.jit(fn)(pred_bad, y))), fn.__name__
        assert np.isfinite(float(fn(pred, y))), fn.__name__
    assert np.isnan(float(metrics.agreement(pred, pred_bad)))
    assert np.isnan(float(metrics.total_variation(pred_bad, pred)))
    assert float(metrics.agreement(pred, pred)) == 1.0


def test_all_nan_probabilities_do_not_score_class_zero():
    y = jnp.zeros(10, jnp.int32)  # argmax of NaN is 0: accuracy would read 1.0
    out = metrics.evaluate(cls_pred(np.full((10, 4), np.nan)), y)
    assert all(np.isnan(v) for v in out.values()), out


def test_impossible_classes_stay_finite():
    pred = cls_pred([[1.0, 0.0], [0.0, 1.0]])  # log-probabilities of -inf are probability 0
    assert float(metrics.accuracy(pred, jnp.array([0, 1]))) == 1.0
    assert float(metrics.brier(pred, jnp.array([0, 1]))) == 0.0


@pytest.mark.parametrize("field, bad", [("mean", np.nan), ("mean", np.inf), ("variance", np.nan),
                                        ("variance", np.inf)])
def test_regression_metrics_are_nan(field, bad):
    pred, mu, var, y = random_reg()
    mu, var = mu.astype(np.float32), var.astype(np.float32)
    (mu if field == "mean" else var)[3, 11] = bad
    pred_bad = RegressionPredictive(jnp.asarray(mu), jnp.asarray(var))
    assert all(np.isnan(v) for v in metrics.evaluate(pred_bad, y, y_std=2.0).values())
    for fn in (metrics.rmse, metrics.nll, metrics.gaussian_nll):
        assert np.isnan(float(fn(pred_bad, y))), fn.__name__
        assert np.isfinite(float(fn(pred, y))), fn.__name__


def test_auroc_of_nan_scores_is_nan():
    assert np.isnan(float(metrics.auroc(jnp.array([0.1, jnp.nan]), jnp.array([0.5, 0.9]))))
    assert np.isnan(float(metrics.auroc(jnp.array([0.1, 0.2]), jnp.array([jnp.nan, 0.9]))))
    assert float(metrics.auroc(jnp.array([0.1, 0.2]), jnp.array([0.5, 0.9]))) == 1.0
