"""NUTS against the exact (tempered) posterior of Bayesian linear regression."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from bayesjax.inference.mcmc.nuts import build_nuts
from tests.helpers.linear_problem import D
from tests.helpers.mcmc_runs import ADAPT, BUILD, CHAINS, NUM_STEPS, adapted_run, data, log_joint, run_adapted
from tests.helpers.stats import assert_gaussian_moments


@pytest.mark.parametrize("temperature, tempering", [(1.0, "posterior"), (0.1, "posterior")])
def test_recovers_the_tempered_linear_posterior(temperature, tempering):
    post, samples, (mean, cov) = adapted_run("nuts", temperature, tempering)
    assert samples.shape == (CHAINS, NUM_STEPS - ADAPT, D)
    assert post.divergences == {}
    assert_gaussian_moments(samples, mean, cov)


def test_same_key_reproduces_and_chains_differ():
    first, _, _ = adapted_run("nuts", 1.0)
    again = run_adapted("nuts", 1.0, "posterior", seed=0)
    for a, b in zip(jax.tree.leaves((first.state, first.info)), jax.tree.leaves((again.state, again.info))):
        np.testing.assert_array_equal(a, b)
    final = np.asarray(first.state.inner.position["w"])
    assert all(not np.allclose(final[i], final[j]) for i in range(CHAINS) for j in range(i))
    other = run_adapted("nuts", 1.0, "posterior", seed=1)
    assert not np.allclose(other.state.inner.position["w"], final)


def test_a_minibatch_is_refused():
    x, y = data()
    algo = BUILD["nuts"](log_joint())
    with pytest.raises(ValueError, match="full data set"):
        bj.run(jax.random.key(0), algo, {"w": jnp.zeros(D)}, (x, y), num_steps=5, batch_size=10, progress=False)
    state = algo.init(jax.random.key(0), {"w": jnp.zeros(D)})
    with pytest.raises(ValueError, match="batch_size=None"):
        algo.step(jax.random.key(1), state, (x[:10], y[:10]))


def test_hyperparameters_checked():
    with pytest.raises(ValueError):
        build_nuts(log_joint(), max_num_doublings=0)
