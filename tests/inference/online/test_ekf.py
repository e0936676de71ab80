"""Draws from an EKF belief have its moments, and a key fixes them."""
import jax
import jax.numpy as jnp
import numpy as np

import bayesjax as bj
from bayesjax.inference.online import online
from tests.helpers.linear_gaussian import NOISE, PRIOR, D, linear_apply
from tests.helpers.online_streams import log_joint, stream


def test_samples_have_the_belief_moments(correlated):
    x, y = correlated
    with jax.enable_x64(True):
        lj = log_joint(linear_apply)
        post = stream(online(lj, "ekf", structure="full"), {"w": jnp.zeros(D)}, (x, y), 15)
        draws = np.asarray(post.sample(jax.random.key(0), 20_000)["w"])
        again = np.asarray(post.sample(jax.random.key(0), 20_000)["w"])
        mean, cov = (np.asarray(a) for a in bj.linear.posterior(x, y, NOISE, PRIOR))
    num = draws.shape[0]
    z_mean = (draws.mean(0) - mean) / np.sqrt(np.diag(cov) / num)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / num)
    assert np.all(np.abs(z_mean) < 4) and np.all(np.abs((np.cov(draws.T) - cov) / se_cov) < 4)
    np.testing.assert_array_equal(draws, again)
