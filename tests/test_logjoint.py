import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj


def linear_apply(params, x):
    return x @ params["w"][:, None]


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -1.0, 0.5]) + 0.3 * rng.normal(size=60)).astype(np.float32)
    params = {"w": jnp.asarray(rng.normal(size=3), jnp.float32)}
    return x, y, params


def hand_terms(params, x, y, noise_std=0.3, prior_std=2.0):
    w = np.asarray(params["w"], np.float64)
    resid = y - x @ w
    log_lik = np.sum(-0.5 * np.log(2 * np.pi * noise_std**2) - 0.5 * resid**2 / noise_std**2)
    log_prior = np.sum(-0.5 * np.log(2 * np.pi * prior_std**2) - 0.5 * w**2 / prior_std**2)
    return log_lik, log_prior


def make(num_data, temperature=1.0, tempering="posterior"):
    return bj.log_joint(linear_apply, bj.priors.gaussian(2.0), bj.likelihoods.gaussian(0.3),
                        num_data=num_data, temperature=temperature, tempering=tempering)


@pytest.mark.parametrize("tempering", ["posterior", "likelihood"])
def test_tempering_matches_hand_computation(problem, tempering):
    x, y, params = problem
    log_lik, log_prior = hand_terms(params, x, y)
    temperature = 0.25
    expected = (log_lik + log_prior) / temperature if tempering == "posterior" else log_lik / temperature + log_prior
    value = make(len(y), temperature, tempering)(params, (x, y))
    np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_minibatch_estimate_is_unbiased(problem):
    x, y, params = problem
    lj = make(len(y), temperature=0.5)
    batches = [(x[i:i + 10], y[i:i + 10]) for i in range(0, 60, 10)]
    mean_estimate = np.mean([lj(params, b) for b in batches])
    np.testing.assert_allclose(mean_estimate, lj(params, (x, y)), rtol=1e-5)
    # A single batch is an estimate, not the full value (the test can fail).
    assert not np.isclose(lj(params, batches[0]), lj(params, (x, y)), rtol=1e-3)


def test_full_in_chunks_equals_direct(problem):
    x, y, params = problem
    lj = make(len(y), temperature=0.3)
    for chunk in (7, 60, 1000):
        np.testing.assert_allclose(lj.full(params, (x, y), chunk_size=chunk), lj(params, (x, y)), rtol=1e-5)


def test_vmap_over_temperatures(problem):
    x, y, params = problem
    temperatures = jnp.array([1.0, 0.1, 1e-4])

    def value(t):
        return make(len(y), t)(params, (x, y))

    values = jax.jit(jax.vmap(value))(temperatures)
    log_lik, log_prior = hand_terms(params, x, y)
    np.testing.assert_allclose(values, (log_lik + log_prior) / np.asarray(temperatures), rtol=1e-5)


def test_keeps_its_parts():
    lj = make(10, 0.5, "likelihood")
    assert lj.apply is linear_apply and lj.num_data == 10 and lj.temperature == 0.5
    assert lj.tempering == "likelihood" and lj.likelihood.name == "gaussian"


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan")])
def test_rejects_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        make(10, temperature)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="tempering"):
        make(10, 1.0, "prior")
    with pytest.raises(ValueError, match="num_data"):
        make(0)


@pytest.mark.parametrize("tempering", ["posterior", "likelihood"])
def test_weights_are_the_factors_of_the_tempering_rule(tempering):
    lj = make(10, 0.25, tempering)
    assert lj.likelihood_weight == 4.0
    assert lj.prior_weight == (4.0 if tempering == "posterior" else 1.0)
    for log_lik, log_prior in [(-3.0, -2.0), (1.5, -0.5), (0.0, 7.0)]:
        np.testing.assert_allclose(lj.combine(log_lik, log_prior),
                                   lj.likelihood_weight * log_lik + lj.prior_weight * log_prior, rtol=1e-12)


def test_weights_trace_with_the_temperature():
    temperatures = jnp.array([1.0, 0.1, 1e-4])
    weights = jax.jit(jax.vmap(lambda t: (make(10, t, "posterior").prior_weight,
                                          make(10, t, "likelihood").likelihood_weight)))(temperatures)
    np.testing.assert_allclose(weights, (1 / temperatures, 1 / temperatures), rtol=1e-6)


@pytest.mark.parametrize("tempering", ["posterior", "likelihood"])
def test_potential_is_minus_temperature_times_the_log_joint(problem, tempering):
    x, y, params = problem
    log_lik, log_prior = hand_terms(params, x, y)
    temperature = 0.25
    expected = -(log_lik + log_prior) if tempering == "posterior" else -(log_lik + temperature * log_prior)
    np.testing.assert_allclose(make(len(y), temperature, tempering).potential(params, (x, y)), expected, rtol=1e-5)
