"""Predictives with known numbers for the metrics tests."""
import jax.numpy as jnp
import numpy as np

from bayesjax.predictive import ClassificationPredictive, RegressionPredictive

ATOL = 1e-5  # float32 throughout


def cls_pred(probs):
    probs = np.asarray(probs, dtype=np.float32)
    return ClassificationPredictive(jnp.log(jnp.asarray(probs)), jnp.zeros(probs.shape[0], jnp.float32))


def random_cls(n=200, c=5, seed=0, concentration=0.5):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(c, concentration), size=n).astype(np.float32)
    probs = np.clip(probs, 1e-6, None)
    probs /= probs.sum(-1, keepdims=True)
    y = rng.integers(0, c, size=n).astype(np.int32)
    return cls_pred(probs), probs, y


def random_reg(s=7, n=50, seed=0):
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(s, n)).astype(np.float32)
    var = rng.uniform(0.2, 2.0, size=(s, n)).astype(np.float32)
    y = rng.normal(size=n).astype(np.float32)
    return RegressionPredictive(jnp.asarray(mu), jnp.asarray(var)), mu.astype(np.float64), var.astype(np.float64), y
