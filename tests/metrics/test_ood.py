"""Tests for bayesjax.metrics.ood: AUROC against scikit-learn, ties included."""
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bayesjax import metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    # coarse integer-valued scores make many ties within and across groups
    s_in = rng.integers(0, 6, size=137).astype(np.float32)
    s_out = (rng.integers(0, 6, size=61) + seed).astype(np.float32)
    labels = np.r_[np.zeros(137), np.ones(61)]
    expected = roc_auc_score(labels, np.r_[s_in, s_out])
    assert float(metrics.auroc(s_in, s_out)) == pytest.approx(expected, abs=1e-6)
    # continuous scores, no ties
    s_in, s_out = rng.normal(size=300), rng.normal(0.5, 1.0, size=200)
    expected = roc_auc_score(np.r_[np.zeros(300), np.ones(200)], np.r_[s_in, s_out])
    assert float(metrics.auroc(s_in, s_out)) == pytest.approx(expected, abs=1e-6)


def test_auroc_edge_cases():
    assert float(metrics.auroc(jnp.array([0.0, 1.0]), jnp.array([2.0, 3.0]))) == 1.0
    assert float(metrics.auroc(jnp.array([2.0, 3.0]), jnp.array([0.0, 1.0]))) == 0.0
    assert float(metrics.auroc(jnp.ones(4), jnp.ones(3))) == 0.5
    assert float(metrics.auroc(jnp.array([1, 2, 3]), jnp.array([2]))) == pytest.approx(0.5)  # integer scores
