"""HMC and NUTS against the exact (tempered) posterior of Bayesian linear regression."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from bayesjax.inference.hmc import build_hmc, build_nuts
import linear_problem as blr
from linear_problem import D, NOISE, PRIOR
from stats import assert_gaussian_moments, chain_draws

N = 50
ADAPT, NUM_STEPS, CHAINS = 300, 1300, 4


# --------------------------------------------------------------------------- #
# The problem
# --------------------------------------------------------------------------- #
data = functools.partial(blr.data, N)
log_joint = functools.partial(blr.log_joint, N)  # (temperature=1.0, tempering="posterior")


BUILD = {
    "hmc": lambda lj, **kw: build_hmc(lj, num_integration_steps=10, **kw),
    "nuts": lambda lj, **kw: build_nuts(lj, max_num_doublings=6, **kw),
}


def adapted_run(method, temperature, tempering="posterior"):
    """A run with a deliberately bad initial step size (1e-5) fixed by window adaptation (cached)."""
    return _adapted_run(method, float(temperature), tempering)


@functools.lru_cache(maxsize=None)
def adapted_algorithm(method, temperature, tempering):
    return BUILD[method](log_joint(temperature, tempering), step_size=1e-5, num_adaptation_steps=ADAPT)


def run_adapted(method, temperature, tempering, seed):
    """Reruns of one configuration share the algorithm object, hence one compile."""
    with jax.enable_x64(True):
        return bj.run(jax.random.key(seed), adapted_algorithm(method, temperature, tempering),
                      {"w": jnp.zeros(D)}, data(), num_steps=NUM_STEPS, num_chains=CHAINS, burnin=ADAPT,
                      progress=False)


@functools.lru_cache(maxsize=None)
def _adapted_run(method, temperature, tempering):
    post = run_adapted(method, temperature, tempering, seed=0)
    x, y = data()
    with jax.enable_x64(True):
        exact = bj.linear.posterior(jnp.asarray(x), jnp.asarray(y), NOISE, PRIOR, temperature=temperature,
                                    tempering=tempering)
    return post, chain_draws(post), tuple(np.asarray(a) for a in exact)


# --------------------------------------------------------------------------- #
# Tests
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "method, temperature, tempering",
    [
        ("hmc", 1.0, "posterior"),
        ("hmc", 0.1, "posterior"),
        ("nuts", 1.0, "posterior"),
        ("nuts", 0.1, "posterior"),
        ("hmc", 0.3, "likelihood"),
    ],
)
def test_recovers_the_tempered_linear_posterior(method, temperature, tempering):
    post, samples, (mean, cov) = adapted_run(method, temperature, tempering)
    assert samples.shape == (CHAINS, NUM_STEPS - ADAPT, D)
    assert post.divergences == {}
    assert_gaussian_moments(samples, mean, cov)


@pytest.mark.parametrize("method", ["hmc", "nuts"])
def test_window_adaptation_fixes_a_bad_step_size(method):
    post, _, (_, cov) = adapted_run(method, 1.0)
    state = post.state.inner
    step_size = np.asarray(state.step_size)
    # In whitened coordinates (mass matrix ~ posterior variances) a Gaussian
    # wants a leapfrog step of order 1; the initial 1e-5 is 5 orders off.
    assert np.all((step_size > 0.2) & (step_size < 2.0)), step_size
    # The adapted diagonal inverse mass matrix estimates the posterior variances.
    ratio = np.asarray(state.inverse_mass_matrix) / np.diag(cov)
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio
    # After adaptation the step size is frozen (HMC jitters it by up to 20%)
    # and acceptance is near the 0.8 target.
    jitter = 0.2 if method == "hmc" else 0.0
    used = np.asarray(post.info.step_size)
    for t, nominal in ((0, 1e-5), (ADAPT, step_size), (NUM_STEPS - 1, step_size)):
        assert np.all(np.abs(used[t] / nominal - 1) <= jitter + 1e-12), (t, used[t], nominal)
    assert np.all(np.abs(used[ADAPT:] / step_size - 1) <= jitter + 1e-12)
    if method == "hmc":
        assert np.std(used[ADAPT:, 0] / step_size[0]) > 0.05  # jitter ~ U(-0.2, 0.2): sd 0.115
    acceptance = np.asarray(post.info.acceptance_rate)[ADAPT:].mean(0)
    assert np.all((acceptance > 0.6) & (acceptance < 0.95)), acceptance
    assert not np.any(np.asarray(post.info.is_divergent)[ADAPT:])


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


@pytest.mark.parametrize("method", ["hmc", "nuts"])
def test_same_key_reproduces_and_chains_differ(method):
    first, _, _ = adapted_run(method, 1.0)
    again = run_adapted(method, 1.0, "posterior", seed=0)
    for a, b in zip(jax.tree.leaves((first.state, first.info)), jax.tree.leaves((again.state, again.info))):
        np.testing.assert_array_equal(a, b)
    final = np.asarray(first.state.inner.position["w"])
    assert all(not np.allclose(final[i], final[j]) for i in range(CHAINS) for j in range(i))
    other = run_adapted(method, 1.0, "posterior", seed=1)
    assert not np.allclose(other.state.inner.position["w"], final)


@pytest.mark.parametrize("method", ["hmc", "nuts"])
def test_a_minibatch_is_refused(method):
    x, y = data()
    algo = BUILD[method](log_joint())
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
    with pytest.raises(ValueError):
        build_nuts(log_joint(), max_num_doublings=0)
