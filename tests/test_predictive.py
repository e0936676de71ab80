"""Tests for bayesjax.predictive: the Bayesian model average against direct computation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import bayesjax as bj
from bayesjax.predictive import chunk_plan, entropy


def linear_apply(params, x):
    return x @ params["w"] + params["b"]


def stacked(key, num_samples, num_inputs, num_outputs):
    kw, kb = jax.random.split(key)
    return {"w": jax.random.normal(kw, (num_samples, num_inputs, num_outputs)),
            "b": jax.random.normal(kb, (num_samples, num_outputs))}


@pytest.fixture(scope="module")
def x():
    return jax.random.normal(jax.random.key(0), (7, 4))


def test_identical_samples_give_the_single_model(x):
    one = jax.tree.map(lambda s: s[0], stacked(jax.random.key(1), 1, 4, 3))
    samples = bj.trees.repeat_params(one, 5)
    pred = bj.predictive(linear_apply, samples, x, bj.likelihoods.categorical())
    np.testing.assert_allclose(pred.probs, jax.nn.softmax(linear_apply(one, x)), rtol=1e-5)
    np.testing.assert_allclose(pred.mutual_information, 0.0, atol=1e-5)


def test_classification_moments_against_direct(x):
    samples = stacked(jax.random.key(2), 6, 4, 3)
    pred = bj.predictive(linear_apply, samples, x, bj.likelihoods.categorical())
    probs = np.stack([jax.nn.softmax(linear_apply(jax.tree.map(lambda s: s[i], samples), x)) for i in range(6)])
    mean = probs.mean(0)
    entropy = -np.sum(mean * np.log(mean), -1)
    expected_entropy = np.mean(-np.sum(probs * np.log(probs), -1), 0)
    np.testing.assert_allclose(pred.probs, mean, rtol=1e-5)
    np.testing.assert_allclose(pred.entropy, entropy, rtol=1e-5)
    np.testing.assert_allclose(pred.expected_entropy, expected_entropy, rtol=1e-5)
    np.testing.assert_allclose(pred.mutual_information, entropy - expected_entropy, atol=1e-5)
    assert np.all(pred.mutual_information > 0)


def test_regression_mixture_against_direct(x):
    samples = stacked(jax.random.key(3), 5, 4, 2)
    lik = bj.likelihoods.heteroscedastic_gaussian()
    pred = bj.predictive(linear_apply, samples, x, lik)
    out = np.stack([np.asarray(linear_apply(jax.tree.map(lambda s: s[i], samples), x)) for i in range(5)])
    mu, sigma = out[..., 0], np.exp(out[..., 1])
    np.testing.assert_allclose(pred.mean, mu.mean(0), rtol=1e-5)
    np.testing.assert_allclose(pred.aleatoric, (sigma**2).mean(0), rtol=1e-5)
    np.testing.assert_allclose(pred.epistemic, mu.var(0), rtol=1e-4)
    np.testing.assert_allclose(pred.variance, (sigma**2).mean(0) + mu.var(0), rtol=1e-4)
    y = np.linspace(-1, 1, 7)
    density = np.mean(stats.norm.pdf(y, mu, sigma), axis=0)
    np.testing.assert_allclose(pred.log_prob(jnp.asarray(y)), np.log(density), rtol=1e-4)


def test_function_variance_is_epistemic_and_widens_each_component():
    """Components N(mu_s, sigma_s^2 + v_s): v (a GLM predictive's J Sigma J^T) is epistemic, sigma^2 aleatoric."""
    rng = np.random.default_rng(0)
    mu, noise, v = rng.normal(size=(3, 5)), rng.uniform(0.1, 1.0, (3, 5)), rng.uniform(0.1, 1.0, (3, 5))
    pred = bj.RegressionPredictive(jnp.asarray(mu), jnp.asarray(noise), jnp.asarray(v))
    np.testing.assert_allclose(pred.aleatoric, noise.mean(0), rtol=1e-6)
    np.testing.assert_allclose(pred.epistemic, mu.var(0) + v.mean(0), rtol=1e-6)
    np.testing.assert_allclose(pred.variance, noise.mean(0) + mu.var(0) + v.mean(0), rtol=1e-6)
    y = rng.normal(size=5)
    density = np.mean(stats.norm.pdf(y, mu, np.sqrt(noise + v)), axis=0)
    np.testing.assert_allclose(pred.log_prob(jnp.asarray(y)), np.log(density), rtol=1e-5)
    # Metrics read only mean, variance and log_prob: the same as with v folded into the noise.
    folded = bj.RegressionPredictive(jnp.asarray(mu), jnp.asarray(noise + v))
    np.testing.assert_allclose(folded.epistemic, mu.var(0), rtol=1e-6)
    for name, value in bj.metrics.evaluate(pred, jnp.asarray(y)).items():
        assert value == pytest.approx(bj.metrics.evaluate(folded, jnp.asarray(y))[name], rel=1e-5), name


@pytest.mark.parametrize("lik", [bj.likelihoods.categorical(), bj.likelihoods.heteroscedastic_gaussian()],
                         ids=["classification", "regression"])
@pytest.mark.parametrize("chunk_size", [1, 3, 7])
def test_chunked_equals_unchunked(x, lik, chunk_size):
    samples = stacked(jax.random.key(4), 7, 4, 2)
    full = bj.predictive(linear_apply, samples, x, lik)
    chunked = bj.predictive(linear_apply, samples, x, lik, chunk_size=chunk_size)
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(chunked)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lik", [bj.likelihoods.categorical(), bj.likelihoods.heteroscedastic_gaussian()],
                         ids=["classification", "regression"])
@pytest.mark.parametrize("chunk_size, input_chunk_size", [(None, 1), (3, 2), (7, 3), (2, 7)])
def test_input_chunks_equal_one_pass(x, lik, chunk_size, input_chunk_size):
    samples = stacked(jax.random.key(4), 7, 4, 2)
    full = bj.predictive(linear_apply, samples, x, lik, chunk_size=7, input_chunk_size=7)
    chunked = jax.jit(lambda s, xs: bj.predictive(linear_apply, s, xs, lik, chunk_size=chunk_size,
                                                  input_chunk_size=input_chunk_size))(samples, x)
    assert type(chunked) is type(full)
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(chunked)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lik", [bj.likelihoods.categorical(), bj.likelihoods.heteroscedastic_gaussian()],
                         ids=["classification", "regression"])
def test_a_small_budget_chunks_inputs_and_samples_with_the_same_result(lik):
    """Above the budget the chunked path is taken (chunks < S and < N), inside a vmapped jit as the sweep calls it."""
    model = bj.models.mlp([16], num_outputs=2)
    xs = jax.random.normal(jax.random.key(7), (300, 5))
    params = model.init(jax.random.key(8), xs[:1])
    cells = jax.vmap(lambda k: bj.priors.sample_params(bj.priors.gaussian(1.0), k, params, 6))(
        jax.random.split(jax.random.key(9), 2))  # 2 cells x 6 samples
    one_cell = jax.tree.map(lambda c: c[0], cells)
    per_example, fixed = bj.memory.example_cost(lambda p, xc: lik.predict(model.apply(p, xc)), params, xs)
    budget = int(2 * (128 * per_example + fixed))
    input_chunk, sample_chunk = chunk_plan(model.apply, one_cell, xs, lik, memory_budget=budget)
    assert sample_chunk == 2 and 128 <= input_chunk < 300  # of 6 samples and 300 inputs
    assert chunk_plan(model.apply, one_cell, xs, lik) == (300, 6)  # the default budget takes all at once
    predict = jax.jit(jax.vmap(lambda s: bj.predictive(model.apply, s, xs, lik, memory_budget=budget)))
    whole = jax.vmap(lambda s: bj.predictive(model.apply, s, xs, lik))(cells)
    for a, b in zip(jax.tree.leaves(predict(cells)), jax.tree.leaves(whole)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_prior_predictive_draws_through_the_reducer(x):
    model = bj.models.mlp([8], num_outputs=3)
    params = model.init(jax.random.key(5), x[:1])
    draws = bj.priors.sample_params(bj.priors.gaussian(1.0), jax.random.key(6), params, 20)
    pred = bj.predictive(model.apply, draws, x, bj.likelihoods.categorical())
    assert pred.probs.shape == (7, 3)
    np.testing.assert_allclose(pred.probs.sum(-1), 1.0, rtol=1e-5)
    assert np.all(pred.mutual_information > 1e-3)  # prior functions disagree


def test_noisy_dirichlet_log_prob_against_direct():
    outputs = jnp.array([[0.3, -1.0, 2.0]])
    lik = bj.likelihoods.noisy_dirichlet(0.01)
    alpha = np.array([0.01, 0.01, 1.01])
    var = np.log(1 / alpha + 1)
    target = np.log(alpha) - var / 2
    expected = np.sum(stats.norm.logpdf(target, np.asarray(outputs[0]), np.sqrt(var)))
    np.testing.assert_allclose(lik.log_prob(outputs, jnp.array([2])), [expected], rtol=1e-5)


def test_rejects_ragged_samples(x):
    with pytest.raises(ValueError, match="leading"):
        bj.predictive(linear_apply, {"w": jnp.zeros((3, 4, 2)), "b": jnp.zeros((2, 2))}, x,
                      bj.likelihoods.categorical())


def test_entropy_of_certain_predictions_is_zero_not_nan():
    pred = bj.ClassificationPredictive(jnp.log(jnp.array([[1.0, 0.0], [0.4, 0.6]])), jnp.zeros(2))
    assert np.all(np.isfinite(pred.entropy)) and float(pred.entropy[0]) == 0.0


def test_entropy_of_log_probabilities():
    log_probs = jnp.log(jnp.array([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0], [0.2, 0.3, 0.5, 0.0]]))
    expected = [np.log(4.0), 0.0, stats.entropy([0.2, 0.3, 0.5])]
    np.testing.assert_allclose(entropy(log_probs), expected, rtol=1e-6, atol=1e-7)
    assert entropy(jnp.zeros((2, 3, 1))).shape == (2, 3)  # over the last axis only
