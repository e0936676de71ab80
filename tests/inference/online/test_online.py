"""``bj.online``: every method exact on linear-Gaussian streams where its structure allows, options checked."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import bayesjax as bj
from bayesjax.inference.online import online
from tests.helpers.linear_gaussian import LINEAR_LAYER, NOISE, PRIOR, D, N, linear_apply
from tests.helpers.numerics import flat, rel_err
from tests.helpers.online_streams import chain, covariance_of, dense_zeros, log_joint, stream


@pytest.fixture(scope="module")
def centred_batches():
    """Correlated columns, centred within every block of 10 rows: for a single-output dense layer KFAC's G is a
    scalar and the kernel-bias cross term (which KFAC drops) vanishes, so KFAC is exact, diag is not."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(N // 10, 10, D)) @ np.array([[1.0, 0.6, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    x = (x - x.mean(1, keepdims=True)).reshape(N, D)
    return x, x @ np.array([1.0, -2.0, 0.5]) + 0.3 + NOISE * rng.normal(size=N)


def exact_prequential(design, y, batch_size, temperature, tempering, noise_std=NOISE):
    """sum_i log N(y_i | m^T x_i, sigma^2 + x_i^T S x_i) per batch, (m, S) the exact posterior of earlier batches."""
    scores = []
    for start in range(0, len(y), batch_size):
        if start == 0:
            scale = temperature if tempering == "posterior" else 1.0
            mean, cov = np.zeros(design.shape[1]), scale * PRIOR**2 * np.eye(design.shape[1])
        else:
            mean, cov = bj.linear.posterior(design[:start], y[:start], noise_std, PRIOR, temperature, tempering)
        mu, var = bj.linear.predictive(mean, cov, design[start:start + batch_size], NOISE)
        scores.append(scipy.stats.norm.logpdf(y[start:start + batch_size], mu, np.sqrt(var)).sum())
    return np.array(scores)


# (batch size, temperature, tempering, likelihood weight); a weight w is a likelihood to the power w,
# i.e. the noise variance divided by w.
SPLITS = [(10, 1.0, "posterior", 1.0), (15, 0.5, "likelihood", 1.0), (20, 0.3, "posterior", 2.0)]


@pytest.mark.parametrize("method,options,batch_size,temperature,tempering,weight",
                         [("ekf", {"structure": "full"}, *split) for split in SPLITS]
                         + [("laplace_full", {}, *split) for split in SPLITS[::2]])
def test_full_structures_are_exact_on_correlated_designs(correlated, method, options, batch_size, temperature,
                                                          tempering, weight):
    """Kalman's update (EKF) and Gauss-Newton Laplace recover the batch posterior and its prequential predictive."""
    x, y = correlated
    with jax.enable_x64(True):
        lj = log_joint(linear_apply, temperature, tempering)
        algo = online(lj, method, likelihood_weight=weight, **options)
        post = stream(algo, {"w": jnp.zeros(D)}, (x, y), batch_size)
        state = chain(post.state)
        noise_std = NOISE / np.sqrt(weight)
        mean, cov = bj.linear.posterior(x, y, noise_std, PRIOR, temperature=temperature, tempering=tempering)
        assert rel_err(state.mean["w"], mean) < 1e-10
        assert rel_err(covariance_of(lj, state), cov) < 1e-10
        expected = exact_prequential(x, y, batch_size, temperature, tempering, noise_std)
        np.testing.assert_allclose(post.info.log_predictive[:, 0], expected, rtol=1e-10)
        assert post.info.log_predictive.shape == (N // batch_size, 1)


@pytest.mark.parametrize("method,design", [("ekf", "orthogonal_batches"), ("laplace_diag", "orthogonal_batches"),
                                           ("laplace_kfac", "centred_batches")])
@pytest.mark.parametrize("batch_size", [10, 20])
def test_diag_and_kfac_are_exact_where_their_structure_is(request, method, design, batch_size):
    x, y = request.getfixturevalue(design)
    design = np.concatenate([np.ones((N, 1)), x], axis=1)  # ravel order: bias, then kernel
    with jax.enable_x64(True):
        lj = log_joint(LINEAR_LAYER.apply)
        params = dense_zeros()
        post = stream(online(lj, method), params, (x, y), batch_size)
        state = chain(post.state)
        mean, cov = bj.linear.posterior(design, y, NOISE, PRIOR)
        assert rel_err(flat(state.mean), mean) < 1e-10
        assert rel_err(covariance_of(lj, state), cov) < 1e-10
        np.testing.assert_allclose(post.info.log_predictive[:, 0],
                                   exact_prequential(design, y, batch_size, 1.0, "posterior"), rtol=1e-10)


@pytest.fixture(scope="module")
def lj32():
    return bj.log_joint(linear_apply, bj.priors.gaussian(1.0), bj.likelihoods.gaussian(1.0), num_data=10)


@pytest.mark.parametrize("method,options,error,match", [
    ("kalman", {}, ValueError, "method must be one of"),
    ("ekf", {"forgetting": 0.0}, ValueError, r"forgetting \(gamma\) must be a scalar in \(0, 1\]"),
    ("vi", {"forgetting": 1.5}, ValueError, r"in \(0, 1\]"),
    ("ekf", {"process_noise": -1.0}, ValueError, "process_noise must be finite and >= 0"),
    ("laplace_kfac", {"process_noise": 1e-3}, ValueError, "cannot be represented by a Kronecker"),
    ("ekf", {"structure": "lowrank"}, ValueError, "structure must be one of"),
    ("ekf", {"likelihood_weight": -1.0}, ValueError, "likelihood_weight must be finite and > 0"),
    ("ekf", {"predictive": "exact"}, ValueError, "predictive must be one of"),
    ("laplace_diag", {"num_predictive_samples": 0}, ValueError, "num_predictive_samples must be an integer"),
    ("laplace_diag", {"num_inner_steps": 0}, ValueError, "num_inner_steps must be an integer"),
    ("laplace_diag", {"optimizer": "newton"}, ValueError, "optimizer must be 'gauss_newton' or an optax"),
    ("vi", {"optimizer": "adam"}, ValueError, "optimizer must be an optax"),
    ("vi", {"parametrization": "exp"}, ValueError, "parametrization must be one of"),
    ("ekf", {"num_inner_steps": 3}, TypeError, r"online method 'ekf' does not take \['num_inner_steps'\]"),
    ("laplace_kfac", {"hessian": "diag"}, TypeError, "does not take"),
])
def test_bad_options_are_named(lj32, method, options, error, match):
    with pytest.raises(error, match=match):
        online(lj32, method, **options)


def test_the_target_must_be_a_log_joint_with_a_gaussian_prior(lj32):
    with pytest.raises(TypeError, match="needs a LogJoint"):
        online(lambda params, batch: 0.0, "ekf")
    laplace_prior = bj.log_joint(linear_apply, bj.priors.laplace(1.0), bj.likelihoods.gaussian(1.0), num_data=10)
    with pytest.raises(ValueError, match="needs a Gaussian prior"):
        online(laplace_prior, "laplace_diag")
