"""Tests for bayesjax.metrics.validation: every metric checks its inputs, eagerly and under jit."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesjax import metrics
from tests.metrics.predictives import random_cls, random_reg


def test_metrics_under_jit():
    pred, _, y = random_cls(seed=5)
    other, _, _ = random_cls(seed=6)

    @jax.jit
    def all_cls(pred, other, y):
        return jnp.stack([
            metrics.accuracy(pred, y), metrics.nll(pred, y), metrics.ece(pred, y), metrics.brier(pred, y),
            metrics.agreement(pred, other), metrics.total_variation(pred, other),
            metrics.auroc(pred.entropy[:100], pred.entropy[100:]),
        ])

    eager = [
        metrics.accuracy(pred, y), metrics.nll(pred, y), metrics.ece(pred, y), metrics.brier(pred, y),
        metrics.agreement(pred, other), metrics.total_variation(pred, other),
        metrics.auroc(pred.entropy[:100], pred.entropy[100:]),
    ]
    np.testing.assert_allclose(all_cls(pred, other, y), jnp.stack(eager), atol=1e-6)

    rpred, _, _, ry = random_reg()
    all_reg = jax.jit(lambda p, y, s: jnp.stack([metrics.rmse(p, y, s), metrics.nll(p, y, s), metrics.gaussian_nll(p, y, s)]))
    eager = jnp.stack([metrics.rmse(rpred, ry, 2.5), metrics.nll(rpred, ry, 2.5), metrics.gaussian_nll(rpred, ry, 2.5)])
    np.testing.assert_allclose(all_reg(rpred, ry, 2.5), eager, rtol=1e-6)


def test_bad_inputs_raise():
    pred, _, y = random_cls(n=10, c=3)
    for bad in (y[:9], y[:, None], y.astype(np.float32)):
        for fn in (metrics.accuracy, metrics.nll, metrics.ece, metrics.brier, metrics.evaluate):
            with pytest.raises(ValueError):
                fn(pred, bad)
    with pytest.raises(ValueError, match="out of range"):
        metrics.accuracy(pred, np.full(10, 3))
    with pytest.raises(ValueError):  # static shapes are checked under jit too
        jax.jit(metrics.brier)(pred, jnp.zeros(9, jnp.int32))
    with pytest.raises(ValueError):
        metrics.nll(pred, y, y_std=2.0)  # y_std is regression-only
    with pytest.raises(ValueError):
        metrics.ece(pred, y, num_bins=0)
    with pytest.raises(ValueError):
        metrics.agreement(pred, random_cls(n=11, c=3)[0])
    with pytest.raises(TypeError):
        metrics.accuracy(random_reg(n=10)[0], y)

    rpred, _, _, ry = random_reg(n=10)
    for fn in (metrics.rmse, metrics.nll, metrics.gaussian_nll, metrics.evaluate):
        with pytest.raises(ValueError):
            fn(rpred, ry[:9])
        with pytest.raises(ValueError):
            fn(rpred, ry[:, None])
        with pytest.raises(ValueError):
            fn(rpred, ry, y_std=-1.0)
    with pytest.raises(ValueError):
        jax.jit(metrics.rmse)(rpred, jnp.zeros(11))

    with pytest.raises(ValueError):
        metrics.auroc(jnp.zeros((3, 2)), jnp.zeros(3))
    with pytest.raises(ValueError):
        metrics.auroc(jnp.zeros(3), jnp.zeros(0))
