"""The function-space prior: a GP on the network's outputs at context points."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj

D, NOISE, PRIOR = 3, 0.5, 0.7


def linear_apply(params, x):
    return x @ params["w"]


def linear_kernel(variance):
    return lambda a, b: variance * a @ b.T


def test_a_linear_kernel_on_a_linear_model_is_the_gaussian_weight_prior():
    # f = X_c w with X_c invertible and k(a, b) = s^2 a.b: f ~ N(0, s^2 X_c X_c^T) is w ~ N(0, s^2 I)
    # pushed through X_c, so the two log densities differ by the constant log|det X_c|.
    with jax.enable_x64(True):
        context = jnp.asarray(np.random.default_rng(0).normal(size=(D, D)))
        prior = bj.priors.function_space(linear_apply, context, linear_kernel(PRIOR**2), jitter=0.0)
        gaussian = bj.priors.gaussian(PRIOR)
        ws = np.random.default_rng(1).normal(size=(5, D))
        diffs = [float(prior.log_prob({"w": w}) - gaussian.log_prob({"w": w})) for w in ws]
        np.testing.assert_allclose(diffs, -np.log(abs(np.linalg.det(np.asarray(context)))), rtol=1e-10)


def test_its_posterior_on_linear_regression_is_the_closed_form_one():
    # The same identity through the log-joint: the gradient vanishes at the exact posterior mean.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, D))
    y = x @ np.array([1.0, -2.0, 0.5]) + NOISE * rng.normal(size=40)
    with jax.enable_x64(True):
        context = jnp.asarray(rng.normal(size=(D, D)))
        prior = bj.priors.function_space(linear_apply, context, linear_kernel(PRIOR**2), jitter=0.0)
        lj = bj.log_joint(lambda p, x: x @ p["w"][:, None], prior, bj.likelihoods.gaussian(NOISE), num_data=40)
        mean, _ = bj.linear.posterior(jnp.asarray(x), jnp.asarray(y), NOISE, PRIOR)
        grad = jax.grad(lj)({"w": mean}, (jnp.asarray(x), jnp.asarray(y)))["w"]
        np.testing.assert_allclose(grad, 0.0, atol=1e-9)


def test_log_prob_is_the_gp_density_of_every_output_plus_the_weight_prior():
    model = bj.models.mlp([8], num_outputs=2)
    context = np.random.default_rng(3).normal(size=(6, 4)).astype(np.float32)
    params = model.init(jax.random.key(0), context[:1])
    kernel = bj.priors.rbf_kernel(lengthscale=1.5, variance=2.0)
    weights = bj.priors.gaussian(1.0)
    prior = bj.priors.function_space(model.apply, context, kernel, weight_prior=weights, jitter=1e-4)

    with jax.enable_x64(True):
        outputs = np.asarray(model.apply(params, context), np.float64)
        sq = ((context[:, None, :].astype(np.float64) - context[None, :, :]) ** 2).sum(-1)
        cov = 2.0 * np.exp(-sq / (2 * 1.5**2)) + 1e-4 * np.eye(6)
    _, log_det = np.linalg.slogdet(cov)
    expected = sum(-0.5 * f @ np.linalg.solve(cov, f) - 0.5 * log_det - 3 * np.log(2 * np.pi) for f in outputs.T)
    expected += float(weights.log_prob(params))
    np.testing.assert_allclose(float(prior.log_prob(params)), expected, rtol=1e-5)


def test_it_drives_a_run_and_pulls_the_function_towards_the_gp():
    # No data to speak of (one example, one step of likelihood weight): MAP under a GP prior of
    # small variance shrinks the outputs at the context points far below a weight prior's MAP.
    model = bj.models.mlp([16], num_outputs=1)
    x = np.linspace(-2, 2, 20, dtype=np.float32)[:, None]
    y = np.sin(3 * x[:, 0]).astype(np.float32)
    params = model.init(jax.random.key(0), x[:1])
    lik = bj.likelihoods.gaussian(1.0)

    def map_outputs(prior):
        lj = bj.log_joint(model.apply, prior, lik, num_data=1)
        post = bj.run(jax.random.key(1), bj.map(lj, optax.adam(1e-2)), params, (x[:1], y[:1]), num_steps=300,
                      progress=False)
        fitted = jax.tree.map(lambda leaf: leaf[0], post.state.params)
        return np.asarray(model.apply(fitted, x))

    weak = map_outputs(bj.priors.gaussian(10.0))
    gp = map_outputs(bj.priors.function_space(model.apply, x, bj.priors.rbf_kernel(0.5, 1e-3),
                                              weight_prior=bj.priors.gaussian(10.0)))
    assert np.all(np.isfinite(gp))
    assert np.abs(gp).max() < 0.25 * np.abs(weak).max(), (np.abs(gp).max(), np.abs(weak).max())


def test_bad_input_is_refused_and_sampling_says_why():
    context = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="at least one context point"):
        bj.priors.function_space(linear_apply, np.zeros((0, 2)))
    with pytest.raises(ValueError, match="NaN"):
        bj.priors.function_space(linear_apply, np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="jitter"):
        bj.priors.function_space(linear_apply, context, jitter=-1.0)
    with pytest.raises(ValueError, match="not positive definite"):  # three identical points, no jitter
        bj.priors.function_space(linear_apply, context, jitter=0.0)
    with pytest.raises(ValueError, match="lengthscale"):
        bj.priors.rbf_kernel(lengthscale=0.0)
    prior = bj.priors.function_space(linear_apply, np.eye(2, dtype=np.float32))
    with pytest.raises(NotImplementedError, match="no sampler over weights"):
        prior.sample(jax.random.key(0), {"w": jnp.zeros(2)})
    assert prior.stddev is None
