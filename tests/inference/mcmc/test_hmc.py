"""HMC against the exact (tempered) posterior of Bayesian linear regression."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from bayesjax.inference.mcmc.hmc import build_hmc
from tests.helpers.linear_problem import D
from tests.helpers.mcmc_runs import ADAPT, BUILD, CHAINS, NUM_STEPS, adapted_run, data, log_joint, run_adapted
from tests.helpers.stats import assert_gaussian_moments


@pytest.mark.parametrize("temperature, tempering", [(1.0, "posterior"), (0.1, "posterior"), (0.3, "likelihood")])
def test_recovers_the_tempered_linear_posterior(temperature, tempering):
    post, samples, (mean, cov) = adapted_run("hmc", temperature, tempering)
    assert samples.shape == (CHAINS, NUM_STEPS - ADAPT, D)
    assert post.divergences == {}
    assert_gaussian_moments(samples, mean, cov)


def test_a_huge_step_size_is_rejected_and_flagged_divergent():
    with jax.enable_x64(True):
        algo = build_hmc(log_joint(), step_size=10.0, num_integration_steps=10)
        post = bj.run(jax.random.key(1), algo, {"w": jnp.zeros(D)}, data(), num_steps=50, num_chains=2,
                      progress=False)
        assert np.asarray(post.info.acceptance_rate).mean() < 1e-3
        assert np.asarray(post.info.is_divergent).mean() > 0.9
        assert post.divergences == {}  # rejected proposals never reach the chain
        samples = post.sample(jax.random.key(2), 20)["w"]
        assert np.all(np.isfinite(samples))
        np.testing.assert_array_equal(samples, 0.0)  # every proposal was rejected
        assert np.all(np.isfinite(np.asarray(post.info.log_density)))


def test_a_cold_posterior_concentrates_on_the_map():
    temperature = 1e-4
    post, samples, (mean, cov) = adapted_run("hmc", temperature)
    assert_gaussian_moments(samples, mean, cov)
    _, _, (_, warm_cov) = adapted_run("hmc", 1.0)
    np.testing.assert_allclose(np.trace(cov), temperature * np.trace(warm_cov), rtol=1e-10)
    np.testing.assert_allclose(samples.mean((0, 1)), mean, atol=10 * np.sqrt(temperature * np.trace(warm_cov)))
    assert np.cov(samples.reshape(-1, D).T).trace() < 1e-3 * np.trace(warm_cov)


def test_same_key_reproduces_and_chains_differ():
    first, _, _ = adapted_run("hmc", 1.0)
    again = run_adapted("hmc", 1.0, "posterior", seed=0)
    for a, b in zip(jax.tree.leaves((first.state, first.info)), jax.tree.leaves((again.state, again.info))):
        np.testing.assert_array_equal(a, b)
    final = np.asarray(first.state.inner.position["w"])
    assert all(not np.allclose(final[i], final[j]) for i in range(CHAINS) for j in range(i))
    other = run_adapted("hmc", 1.0, "posterior", seed=1)
    assert not np.allclose(other.state.inner.position["w"], final)


def test_a_minibatch_is_refused():
    x, y = data()
    algo = BUILD["hmc"](log_joint())
    with pytest.raises(ValueError, match="full data set"):
        bj.run(jax.random.key(0), algo, {"w": jnp.zeros(D)}, (x, y), num_steps=5, batch_size=10, progress=False)
    state = algo.init(jax.random.key(0), {"w": jnp.zeros(D)})
    with pytest.raises(ValueError, match="batch_size=None"):
        algo.step(jax.random.key(1), state, (x[:10], y[:10]))


def test_state_types_are_stable_and_hyperparameters_checked():
    x, y = data()
    params = {"w": jnp.zeros(D, jnp.float32)}
    batch = (x.astype(np.float32), y.astype(np.float32))
    for algo in (build_hmc(log_joint(), step_size=0.05, num_adaptation_steps=3, diagonal_mass_matrix=False),):
        step = jax.jit(algo.step)
        state = algo.init(jax.random.key(0), params)
        types = jax.tree.map(lambda leaf: str(jax.typeof(leaf)), state)
        for key in jax.random.split(jax.random.key(1), 4):  # through the end of adaptation
            state, info = step(key, state, batch)
            assert jax.tree.map(lambda leaf: str(jax.typeof(leaf)), state) == types
            np.testing.assert_allclose(info.log_density, log_joint()(state.position, batch), rtol=1e-5)
        assert state.step == 4
    for bad in (dict(step_size=0.0), dict(step_size=float("nan")), dict(num_adaptation_steps=-1),
                dict(target_acceptance_rate=1.0), dict(num_integration_steps=0), dict(step_size_jitter=1.0)):
        with pytest.raises(ValueError):
            build_hmc(log_joint(), **bad)
