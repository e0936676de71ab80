"""Laplace evidence and its tuning: MacKay's estimates, stationarity, the exact linear evidence, grid search."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from bayesjax.inference.laplace import laplace
from tests.helpers.laplace_problems import linear_log_joint
from tests.helpers.linear_gaussian import NOISE, PRIOR
from tests.helpers.numerics import rel_err


def test_marglik_recovers_the_true_prior_precisions_and_noise():
    """Two groups of weights drawn from N(0, 1/alpha_g): MacKay's estimate has relative sd ~ sqrt(2 / gamma_g)."""
    rng = np.random.default_rng(7)
    num, dim_a, dim_b, noise = 400, 60, 40, 0.3
    alpha_a, alpha_b = 4.0, 25.0
    w_a, w_b = rng.normal(size=dim_a) / np.sqrt(alpha_a), rng.normal(size=dim_b) / np.sqrt(alpha_b)
    x = np.linalg.qr(rng.normal(size=(num, dim_a + dim_b)))[0] * np.sqrt(num)  # orthogonal: diag is exact
    y = x @ np.concatenate([w_a, w_b]) + noise * rng.normal(size=num)

    def apply(params, inputs):
        return inputs[:, :dim_a] @ params["a"]["w"][:, None] + inputs[:, dim_a:] @ params["b"]["w"][:, None]

    with jax.enable_x64(True):
        mean, _ = bj.linear.posterior(x, y, 1.0, 1.0)  # the MAP under a wrong noise and prior
        params = {"a": {"w": mean[:dim_a]}, "b": {"w": mean[dim_a:]}}
        lj = bj.log_joint(apply, bj.priors.gaussian(1.0), bj.likelihoods.gaussian(1.0), num_data=num)
        post = laplace(lj, params, (x, y), hessian="diag")
        tuned = post.optimize_prior_precision(per_layer=True, tune_noise=True, num_steps=300)
        assert float(tuned.log_marginal_likelihood()) > float(post.log_marginal_likelihood())
        sigma_hat = float(np.sqrt(tuned.log_joint.likelihood.predict(np.zeros((1, 1)))[1][0]))
    alpha_hat = float(tuned.prior_precision["a"]["w"]), float(tuned.prior_precision["b"]["w"])
    assert abs(np.log(alpha_hat[0] / alpha_a)) < 3 * np.sqrt(2 / dim_a), alpha_hat
    assert abs(np.log(alpha_hat[1] / alpha_b)) < 3 * np.sqrt(2 / dim_b), alpha_hat
    assert abs(np.log(sigma_hat / noise)) < 3 / np.sqrt(2 * (num - dim_a - dim_b)), sigma_hat


@pytest.mark.parametrize("hessian", ["diag", "kfac"])
def test_scalar_tuning_finds_the_evidence_maximum(classifier, hessian):
    x, y, _, lj, params = classifier
    post = laplace(lj, params, (x, y), hessian=hessian)
    tuned = post.optimize_prior_precision(num_steps=300)
    precisions = [float(leaf) for leaf in jax.tree.leaves(tuned.prior_precision)]
    assert np.allclose(precisions, precisions[0])  # one precision for every weight
    slope = jax.grad(lambda s: tuned.log_marginal_likelihood(prior_precision=jnp.exp(s)))(jnp.log(precisions[0]))
    assert abs(float(slope)) < 1e-2 * post.num_params  # stationary in log precision
    assert float(tuned.log_marginal_likelihood()) > float(post.log_marginal_likelihood())


def test_noise_tuning_matches_the_exact_evidence(linear_data):
    """At T = 1 the Laplace evidence of a linear-Gaussian model is exact for any noise and prior."""
    x, y, _ = linear_data
    with jax.enable_x64(True):
        mean, _ = bj.linear.posterior(x, y, NOISE, PRIOR)
        post = laplace(linear_log_joint(), {"w": mean}, (x, y), hessian="full")
        # The mean is kept at the MAP, so compare where the MAP does not move: same ratio noise^2 / prior^2.
        for scale in (0.5, 2.0):
            value = post.log_marginal_likelihood(prior_precision=1 / (scale * PRIOR) ** 2, noise_std=scale * NOISE)
            assert rel_err(value, bj.linear.log_evidence(x, y, scale * NOISE, scale * PRIOR)) < 1e-6


def test_grid_search_picks_the_lowest_validation_nll(classifier):
    x, y, _, lj, params = classifier
    post = laplace(lj, params, (x[:64], y[:64]), hessian="kfac")
    grid = np.array([1e-3, 1e-1, 1e1, 1e3])
    tuned = post.optimize_prior_precision("gridsearch", x_val=x[64:], y_val=y[64:], grid=grid)
    nll = [float(-jnp.mean(post.with_prior_precision(d).predictive_glm(x[64:]).log_prob(y[64:]))) for d in grid]
    chosen = float(tuned.prior_precision["Dense_0"]["kernel"])
    assert chosen == pytest.approx(grid[int(np.argmin(nll))], rel=1e-6)
