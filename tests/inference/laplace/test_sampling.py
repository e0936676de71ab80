"""Draws from a Laplace posterior have its moments, and a key fixes them."""
import jax
import numpy as np

import bayesjax as bj
from bayesjax.inference.laplace import laplace
from tests.helpers.laplace_problems import linear_log_joint
from tests.helpers.linear_gaussian import NOISE, PRIOR


def test_samples_have_the_posterior_moments(linear_data):
    x, y, _ = linear_data
    with jax.enable_x64(True):
        mean, cov = bj.linear.posterior(x, y, NOISE, PRIOR, temperature=0.3)
        post = laplace(linear_log_joint(0.3), {"w": mean}, (x, y), hessian="full")
        draws = np.asarray(post.sample(jax.random.key(0), 20_000)["w"])
        again = np.asarray(post.sample(jax.random.key(0), 20_000)["w"])
    mean, cov = np.asarray(mean), np.asarray(cov)
    num = draws.shape[0]
    z_mean = (draws.mean(0) - mean) / np.sqrt(np.diag(cov) / num)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / num)
    assert np.all(np.abs(z_mean) < 4) and np.all(np.abs((np.cov(draws.T) - cov) / se_cov) < 4)
    np.testing.assert_array_equal(draws, again)  # same key, same draws
