"""Tests for bayesjax.metrics.likelihood: the NLL of a classifier (regression: tests/metrics/test_regression.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesjax import metrics
from tests.metrics.predictives import ATOL, random_cls


def test_classification_nll_matches_numpy():
    pred, probs, y = random_cls()
    probs64 = np.exp(np.log(probs.astype(np.float64)))
    expected_nll = -np.mean(np.log(probs64[np.arange(len(y)), y]))
    assert float(metrics.nll(pred, y)) == pytest.approx(expected_nll, abs=ATOL)


def test_metrics_vmap_over_stacked_predictives():
    preds = [random_cls(n=40, c=3, seed=s)[0] for s in range(3)]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *preds)
    y = np.random.default_rng(0).integers(0, 3, size=40)
    got = jax.vmap(metrics.nll, in_axes=(0, None))(stacked, y)
    np.testing.assert_allclose(got, [metrics.nll(p, y) for p in preds], atol=1e-6)
