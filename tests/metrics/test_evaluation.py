"""Tests for bayesjax.metrics.evaluation: the standard set of a predictive from the reducer."""
import jax.numpy as jnp
import numpy as np
import pytest

from bayesjax import likelihoods, metrics
from bayesjax.predictive import predictive


def test_through_predictive_reducer():
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(30, 3)), jnp.float32)
    apply = lambda w, x: x @ w  # noqa: E731
    # regression: 5 samples of a 3 -> 1 linear model
    w = jnp.asarray(rng.normal(size=(5, 3, 1)), jnp.float32)
    pred = predictive(apply, w, x, likelihoods.gaussian(noise_std=0.5))
    y = jnp.asarray(rng.normal(size=30), jnp.float32)
    out = metrics.evaluate(pred, y, y_std=2.0)
    assert set(out) == {"rmse", "nll", "gaussian_nll"}
    assert out["rmse"] == pytest.approx(2.0 * np.sqrt(np.mean((np.asarray(pred.mean) - np.asarray(y)) ** 2)), rel=1e-5)
    # classification: 5 samples of a 3 -> 4 linear model
    w = jnp.asarray(rng.normal(size=(5, 3, 4)), jnp.float32)
    pred = predictive(apply, w, x, likelihoods.categorical())
    labels = rng.integers(0, 4, size=30)
    out = metrics.evaluate(pred, labels)
    assert set(out) == {"accuracy", "nll", "ece", "brier"}
    assert all(type(v) is float for v in out.values())
    assert out["accuracy"] == pytest.approx(float(metrics.accuracy(pred, labels)))
    assert out["ece"] == pytest.approx(float(metrics.ece(pred, labels)), abs=1e-6)
