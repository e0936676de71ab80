"""The GLM predictive's links against its own Monte Carlo and the weight-space predictive."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from bayesjax import memory
from bayesjax.inference.laplace import glm, jacobians, laplace
from tests.helpers.laplace_problems import linear_log_joint


def test_glm_links_agree_with_monte_carlo(classifier):
    x, y, model, lj, params = classifier
    post = laplace(lj, params, (x, y), hessian="kfac", chunk_size=40)
    mc, probit, bridge = (post.predictive_glm(x, link=link, num_samples=4000, key=jax.random.key(1))
                          for link in ("mc", "probit", "bridge"))
    for pred in (mc, probit, bridge):
        assert isinstance(pred, bj.ClassificationPredictive) and pred.log_probs.shape == (96, 3)
        np.testing.assert_allclose(np.sum(pred.probs, axis=1), 1.0, rtol=1e-5)
        assert np.all(np.isfinite(pred.expected_entropy))
    # probit is a close approximation of the MC average; the bridge a rougher one.
    assert np.max(np.abs(probit.probs - mc.probs)) < 0.1
    assert np.mean(np.abs(bridge.probs - mc.probs)) < 0.1
    # The weight-space MC predictive through bj.predictive agrees on average with the GLM one.
    weight_mc = bj.predictive(model.apply, post.sample(jax.random.key(2), 200), x, lj.likelihood)
    assert np.mean(np.abs(weight_mc.probs - mc.probs)) < 0.1
    metrics = bj.metrics.evaluate(probit, y)
    assert metrics["accuracy"] > 0.8 and np.isfinite(metrics["nll"])


@pytest.mark.parametrize("hessian", ["kfac", "diag", "full"])
def test_glm_predictive_in_chunks_equals_one_pass(classifier, hessian):
    x, y, model, lj, params = classifier
    post = laplace(lj, params, (x, y), hessian=hessian)
    whole, chunked = (dataclasses.replace(post, chunk_size=size) for size in (96, 7))  # 7: a ragged last chunk
    for link in ("probit", "mc"):
        a, b = (p.predictive_glm(x, link=link, num_samples=50, key=jax.random.key(3)) for p in (whole, chunked))
        np.testing.assert_allclose(a.log_probs, b.log_probs, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.expected_entropy, b.expected_entropy, rtol=1e-5, atol=1e-6)


def test_glm_regression_in_chunks_equals_one_pass(linear_data):
    x, y, x_test = linear_data
    x, y = x.astype(np.float32), y.astype(np.float32)
    post = laplace(linear_log_joint(), {"w": np.zeros(x.shape[1], np.float32)}, (x, y), hessian="full")
    whole, chunked = (dataclasses.replace(post, chunk_size=size).predictive_glm(x_test) for size in (7, 2))  # 1 chunk, and 4
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(chunked)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_glm_streams_over_large_inputs_in_budget_chosen_chunks():
    """On Fashion-MNIST-sized inputs (60,000 x 28 x 28) the GLM pass of a CNN maps over chunks that fit the budget.

    The chunk is sized from the traced peak of one chunk, the convolutions'
    intermediates included (last layer: they are most of it).
    """
    model = bj.models.fortuin_cnn(10, width=8)
    x = np.random.default_rng(0).normal(size=(16, 28, 28, 1)).astype(np.float32)
    y = np.arange(16, dtype=np.int32) % 10
    params = model.init(jax.random.key(0), x[:1])
    lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=16)
    for subset in ("all", "last_layer"):
        post = laplace(lj, params, (x, y), hessian="kfac", subset=subset)
        jaxpr = jax.make_jaxpr(glm.functional_covariance)(post, jax.ShapeDtypeStruct((60_000, 28, 28, 1), jnp.float32))
        (scan,) = [eqn for eqn in jaxpr.jaxpr.eqns if eqn.primitive.name == "scan"]
        chunk = -(-60_000 // scan.params["length"])
        layers = jacobians.tap_layers("kfac", model.apply, post.mean, post.subset, x)
        compiled = jax.jit(lambda xc: glm._chunk_covariance(post, layers, xc)).lower(x[:16]).compile()
        per_example = compiled.memory_analysis().temp_size_in_bytes / 16  # what XLA holds per image
        assert per_example > 28 * 28 * 8 * 4  # the first convolution's output alone
        assert scan.params["length"] > 1 and chunk * per_example <= memory.DEFAULT_BUDGET
