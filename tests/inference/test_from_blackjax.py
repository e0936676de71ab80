"""bj.from_blackjax: blackjax's kernels as bayesjax Markov chains, against the exact linear-regression posterior."""
import blackjax
import blackjax.util
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj
from bayesjax.inference.from_blackjax import BlackjaxState
from tests.helpers import linear_problem
from tests.helpers.linear_problem import NOISE, PRIOR, D
from tests.helpers.stats import assert_gaussian_moments, chain_draws

N = 100


@pytest.fixture(scope="module")
def data():
    return linear_problem.data(N)


def kernel(name, lj, temperature=1.0):
    """MALA's step is a Langevin step on the N-scaled tempered log-joint, so it shrinks with T (posterior
    sd ~ sqrt(T) NOISE / sqrt(N)); SGLD's is bj.sgld's learning rate per example, the same at every T."""
    if name == "mala":
        return bj.from_blackjax(lj, blackjax.mala, step_size=1e-3 * temperature)
    return bj.from_blackjax(lj, blackjax.sgld, step_size=0.01)


@pytest.mark.parametrize("temperature", [1.0, 0.1])
@pytest.mark.parametrize("name,num_steps,burnin", [("mala", 4_000, 500), ("sgld", 10_000, 1_000)])
def test_recovers_the_exact_tempered_posterior(data, name, num_steps, burnin, temperature):
    x, y = data
    with jax.enable_x64(True):
        lj = linear_problem.log_joint(N, temperature)
        post = bj.run(jax.random.key(1), kernel(name, lj, temperature), {"w": jnp.zeros(D)}, (x, y),
                      num_steps=num_steps, num_chains=4, burnin=burnin, progress=False)
        mean, cov = bj.linear.posterior(x, y, NOISE, PRIOR, temperature=temperature)
        assert_gaussian_moments(chain_draws(post), mean, cov)


@pytest.mark.parametrize("name", ["mala", "sgld"])
def test_burnin_and_thin_keep_the_positions_of_their_steps(data, name):
    x, y = (a.astype(np.float32) for a in data)
    algo = kernel(name, linear_problem.log_joint(N))
    start = {"w": jnp.zeros(D, jnp.float32)}
    every = bj.run(jax.random.key(4), algo, start, (x, y), num_steps=20, num_chains=2, progress=False)
    kept = bj.run(jax.random.key(4), algo, start, (x, y), num_steps=20, num_chains=2, burnin=5, thin=3,
                  progress=False)
    assert isinstance(every.state.inner, BlackjaxState)
    assert every.state.inner.count.tolist() == [20, 20]
    visited = chain_draws(every)  # [2, 20, D]: the position after each step
    assert len({tuple(w) for w in visited.reshape(-1, D)}) > 2  # the chains move (MALA may reject a few)
    np.testing.assert_array_equal(chain_draws(kept), visited[:, [7, 10, 13, 16, 19]])  # steps 8, 11, ..., 20
    draws = np.asarray(kept.sample(jax.random.key(5), 10)["w"])
    assert {tuple(w) for w in draws} == {tuple(w) for w in chain_draws(kept).reshape(-1, D)}


def test_sgld_step_size_is_the_per_example_learning_rate(data):
    """One step of blackjax.sgld through the adapter is bj.sgld's update with the same lr and blackjax's noise."""
    x, y = data
    lr, temperature = 0.01, 0.1
    with jax.enable_x64(True):
        lj = linear_problem.log_joint(N, temperature)
        algo = bj.from_blackjax(lj, blackjax.sgld, step_size=lr)
        theta = {"w": jnp.array([0.3, -0.2, 0.1])}
        key = jax.random.key(3)
        state, info = jax.jit(algo.step)(key, algo.init(jax.random.key(0), theta), (x, y))
        noise = blackjax.util.generate_gaussian_noise(key, theta)["w"]
        expected = theta["w"] - lr * jax.grad(lj.loss)(theta, (x, y))["w"] + np.sqrt(2 * lr * temperature / N) * noise
        np.testing.assert_allclose(state.position["w"], expected, rtol=1e-12)
        assert info is None and int(state.count) == 1


def test_a_step_size_schedule(data):
    x, y = (a.astype(np.float32) for a in data)
    frozen_after_5 = optax.piecewise_constant_schedule(0.01, {5: 0.0})
    algo = bj.from_blackjax(linear_problem.log_joint(N), blackjax.sgld, step_size=frozen_after_5)
    post = bj.run(jax.random.key(6), algo, {"w": jnp.zeros(D, jnp.float32)}, (x, y), num_steps=10, progress=False)
    visited = chain_draws(post)[0]
    assert len({tuple(w) for w in visited[:5]}) == 5  # steps 1-5 move
    np.testing.assert_array_equal(visited[5:], np.broadcast_to(visited[4], (5, D)))  # a zero step size stops


def test_full_batch_kernel_info_keeps_the_scalars_and_refuses_minibatches(data):
    x, y = (a.astype(np.float32) for a in data)
    algo = bj.from_blackjax(linear_problem.log_joint(N), blackjax.hmc, step_size=0.02,
                            inverse_mass_matrix=jnp.ones(D), num_integration_steps=5)
    post = bj.run(jax.random.key(7), algo, {"w": jnp.zeros(D, jnp.float32)}, (x, y), num_steps=30, num_chains=2,
                  progress=False)
    assert post.info.acceptance_rate.shape == (30, 2) and post.info.is_divergent.dtype == bool
    assert post.info.momentum is None  # one copy of the weights per step, left out
    assert np.isfinite(post.state.inner.kernel.logdensity).all()
    with pytest.raises(ValueError, match="full data set"):
        bj.run(jax.random.key(7), algo, {"w": jnp.zeros(D, jnp.float32)}, (x, y), num_steps=4, batch_size=10,
               progress=False)


def test_equal_builds_are_one_algorithm():
    lj = linear_problem.log_joint(N)
    assert bj.from_blackjax(lj, blackjax.sgld, step_size=0.01) is bj.from_blackjax(lj, blackjax.sgld, step_size=0.01)
    assert bj.from_blackjax(lj, blackjax.mala, step_size=0.01) is not bj.from_blackjax(lj, blackjax.mala,
                                                                                       step_size=0.02)


@pytest.mark.parametrize("kernel_fn,params,match", [
    (blackjax.sgld, {}, "missing a required argument: 'step_size'"),
    (blackjax.sgld, {"step_size": 0.01, "temperature": 0.5}, "temperature belongs to the target"),
    (blackjax.sgld, {"step_size": 0.01, "grad_estimator": None}, "made by from_blackjax from the log-joint"),
    (blackjax.mala, {"step_size": 0.01, "num_integration_steps": 3}, "num_integration_steps"),
    (blackjax.mala, {"step_size": -1.0}, "step_size must be finite and > 0"),
    (blackjax.hmc, {"step_size": 0.01, "num_integration_steps": 3}, "inverse_mass_matrix"),
    (blackjax.meanfield_vi, {"optimizer": optax.adam(1e-2)}, "makes a VIAlgorithm"),
    (lambda position, step_size: None, {"step_size": 0.01}, "`logdensity_fn`"),
])
def test_bad_input_is_refused_before_tracing(kernel_fn, params, match):
    with pytest.raises(ValueError, match=match):
        bj.from_blackjax(linear_problem.log_joint(N), kernel_fn, **params)


def test_needs_a_log_joint():
    with pytest.raises(TypeError, match="bj.log_joint"):
        bj.from_blackjax(lambda params, batch: 0.0, blackjax.sgld, step_size=0.01)
