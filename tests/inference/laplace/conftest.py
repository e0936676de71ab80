"""Fixtures the Laplace tests share: linear-Gaussian data, a tiny CNN fitted three ways, a trained classifier."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj
from bayesjax.inference.laplace import laplace
from tests.helpers.laplace_problems import CNN
from tests.helpers.linear_gaussian import NOISE, D, N


@pytest.fixture(scope="session")
def linear_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D))
    return x, x @ np.array([1.0, -2.0, 0.5]) + NOISE * rng.normal(size=N), rng.normal(size=(7, D))


@pytest.fixture(scope="session")
def cnn_problem():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(40, 8, 8, 2))
    y = rng.integers(0, 3, size=40).astype(np.int32)
    with jax.enable_x64(True):
        init = jax.jit(lambda key, xs: jax.tree.map(lambda p: p.astype(jnp.float64), CNN.init(key, xs)))
        params = init(jax.random.key(0), jnp.asarray(x[:1]))
        lj = bj.log_joint(CNN.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=40)
        full = laplace(lj, params, (x, y), hessian="full", chunk_size=16)
        kfac = laplace(lj, params, (x, y), hessian="kfac", chunk_size=16)
    return x, y, params, lj, full, kfac


@pytest.fixture(scope="session")
def classifier():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(96, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int32) + (x[:, 2] > 1).astype(np.int32)
    model = bj.models.mlp([8], num_outputs=3)
    lj = bj.log_joint(model.apply, bj.priors.layerwise("he"), bj.likelihoods.categorical(), num_data=96)
    params = bj.run(jax.random.key(0), bj.map(lj, optax.adam(1e-2)), model.init(jax.random.key(0), x[:1]),
                    (x, y), num_steps=300, progress=False).state.params
    params = jax.tree.map(lambda p: p[0], params)
    return x, y, model, lj, params
