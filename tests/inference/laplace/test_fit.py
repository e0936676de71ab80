"""``bj.laplace``: exact on Bayesian linear regression for every structure, chunked memory, clear errors."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax.flatten_util import ravel_pytree

import bayesjax as bj
from bayesjax.chunking import chunking
from bayesjax.inference.laplace import fit, laplace
from bayesjax.inference.laplace.posterior import LogJointKey
from tests.helpers.laplace_problems import TEMPERINGS, linear_log_joint
from tests.helpers.linear_gaussian import LINEAR_LAYER, NOISE, PRIOR, D, N
from tests.helpers.numerics import flat, rel_err


@pytest.fixture(scope="module")
def orthogonal_data():
    """Centered, orthogonal columns: [1, X]^T [1, X] is diagonal, so diag and KFAC are exact too."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(N, D))
    q, _ = np.linalg.qr(a - a.mean(0))
    x = q * np.array([3.0, 2.0, 1.0])
    return x, x @ np.array([1.0, -2.0, 0.5]) + 0.3 + NOISE * rng.normal(size=N)


@pytest.mark.parametrize("temperature,tempering", TEMPERINGS)
def test_full_laplace_is_exact_for_bayesian_linear_regression(linear_data, temperature, tempering):
    x, y, x_test = linear_data
    with jax.enable_x64(True):
        lj = linear_log_joint(temperature, tempering)
        mean, cov = bj.linear.posterior(x, y, NOISE, PRIOR, temperature=temperature, tempering=tempering)
        post = laplace(lj, {"w": mean}, (x, y), hessian="full", chunk_size=16)  # 4 chunks, last one partial
        assert rel_err(post.covariance(), cov) < 1e-6
        assert rel_err(flat(post.marginal_variance()), np.diag(cov)) < 1e-6
        # The precision is the exact Hessian: one Newton step from 0 (gradient X^T y / (T sigma^2)) lands on the mean.
        assert rel_err(post.covariance() @ (x.T @ y) / (temperature * NOISE**2), mean) < 1e-6
        # GLM predictive = the exact Gaussian predictive.
        pred = post.predictive_glm(x_test)
        mu, var = bj.linear.predictive(mean, cov, x_test, NOISE)
        assert isinstance(pred, bj.RegressionPredictive)
        assert rel_err(pred.mean, mu) < 1e-6 and rel_err(pred.variance, var) < 1e-6
        # The split: epistemic = x^T Sigma x (the function-space variance), aleatoric = the noise variance.
        assert rel_err(pred.epistemic, np.einsum("nd,de,ne->n", x_test, cov, x_test)) < 1e-6
        np.testing.assert_allclose(pred.aleatoric, NOISE**2, rtol=1e-6)
        y_test = x_test @ np.array([1.0, -2.0, 0.5])
        np.testing.assert_allclose(pred.log_prob(y_test), scipy.stats.norm.logpdf(y_test, mu, np.sqrt(var)),
                                   rtol=1e-6)
        if temperature == 1.0:
            assert rel_err(post.log_marginal_likelihood(), bj.linear.log_evidence(x, y, NOISE, PRIOR)) < 1e-6


@pytest.mark.parametrize("temperature,tempering", TEMPERINGS)
def test_every_structure_is_exact_when_the_design_is_orthogonal(orthogonal_data, temperature, tempering):
    """Dense layer y = x W + b: diag (tapped and generic), KFAC and full all equal the oracle."""
    x, y = orthogonal_data
    design = np.concatenate([np.ones((N, 1)), x], axis=1)  # ravel order: bias, then kernel
    model = LINEAR_LAYER
    with jax.enable_x64(True):
        mean, cov = bj.linear.posterior(design, y, NOISE, PRIOR, temperature=temperature, tempering=tempering)
        params = {"Dense_0": {"bias": mean[:1], "kernel": mean[1:, None]}}
        lj = linear_log_joint(temperature, tempering, apply=model.apply)
        evidence = bj.linear.log_evidence(design, y, NOISE, PRIOR)
        x_test = np.random.default_rng(2).normal(size=(5, D))
        mu, var = bj.linear.predictive(mean, cov, np.concatenate([np.ones((5, 1)), x_test], axis=1), NOISE)
        for hessian in ("full", "diag", "kfac"):
            post = laplace(lj, params, (x, y), hessian=hessian, chunk_size=25)
            assert rel_err(np.linalg.inv(post.precision_matrix()), cov) < 1e-6, hessian
            assert rel_err(flat(post.marginal_variance()), np.diag(cov)) < 1e-6, hessian
            pred = post.predictive_glm(x_test)
            assert rel_err(pred.mean, mu) < 1e-6 and rel_err(pred.variance, var) < 1e-6, hessian
            assert rel_err(pred.epistemic, var - NOISE**2) < 1e-6, hessian
            if temperature == 1.0:
                assert rel_err(post.log_marginal_likelihood(), evidence) < 1e-6, hessian
        generic = laplace(linear_log_joint(temperature, tempering), {"w": mean[1:]}, (x, y), hessian="diag")
        assert rel_err(np.diag(generic.precision_matrix()), 1 / np.diag(cov)[1:]) < 1e-6


@pytest.mark.parametrize("hessian", ["diag", "kfac"])
def test_curvature_memory_does_not_grow_with_the_data(hessian):
    """An MNIST-shaped MLP (784 inputs): the compiled fit's scratch memory is the same for 1k and 4k examples."""
    model = bj.models.mlp([32], num_outputs=10)
    params = model.init(jax.random.key(0), jnp.zeros((1, 784)))
    temp = {}
    for n in (1024, 4096):
        lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=n)
        data = (jax.ShapeDtypeStruct((n, 784), jnp.float32), jax.ShapeDtypeStruct((n,), jnp.int32))
        compiled = fit.FIT.optimized.lower(params, data, None, 1.0, 1.0, n, log_joint_key=LogJointKey(lj),
                                           hessian=hessian, curvature="ggn", subset="all", chunk_size=256, mode_check=True).compile()
        assert chunking(n, 256)[1] == n // 256 > 1
        temp[n] = compiled.memory_analysis().temp_size_in_bytes
    jacobian_bytes = 1024 * 10 * ravel_pytree(params)[0].size * 4  # what an unchunked Jacobian would take
    assert temp[1024] == temp[4096] < jacobian_bytes / 20, temp


class GroupedConv(nn.Module):
    """A depthwise convolution: KFAC does not factor grouped kernels."""

    @nn.compact
    def __call__(self, x):
        h = nn.Conv(2, (3, 3), feature_group_count=2)(x)
        return nn.Dense(3)(h.reshape(h.shape[0], -1))


def test_clear_errors(linear_data, classifier):
    x, y, _ = linear_data
    xc, yc, model, lj, params = classifier
    with pytest.raises(ValueError, match="hessian must be one of"):
        laplace(lj, params, (xc, yc), hessian="kron")
    with pytest.raises(ValueError, match="curvature must be one of"):
        laplace(lj, params, (xc, yc), curvature="fisher")
    with pytest.raises(ValueError, match="subset must be one of"):
        laplace(lj, params, (xc, yc), subset="first_layer")
    with pytest.raises(ValueError, match="last_layer"):
        laplace(linear_log_joint(), {"w": np.zeros(D)}, (x, y), subset="last_layer")
    with pytest.raises(ValueError, match="kfac"):
        laplace(linear_log_joint(), {"w": np.zeros(D, np.float32)}, (x.astype(np.float32), y), hessian="kfac")
    grouped = bj.models.from_flax(GroupedConv())
    grouped_lj = bj.log_joint(grouped.apply, bj.priors.gaussian(), bj.likelihoods.categorical(), num_data=2)
    grouped_x = np.zeros((2, 4, 4, 2), np.float32)
    with pytest.raises(ValueError, match="kfac.*grouped"):
        laplace(grouped_lj, grouped.init(jax.random.key(0), grouped_x), (grouped_x, np.array([0, 1])), hessian="kfac")
    big = bj.models.mlp([300], num_outputs=10)
    big_params = jax.eval_shape(big.init, jax.random.key(0), jnp.zeros((1, 80)))
    big_lj = bj.log_joint(big.apply, bj.priors.gaussian(), bj.likelihoods.categorical(), num_data=2)
    with pytest.raises(ValueError, match="limit is 20000"):
        laplace(big_lj, big_params, (np.zeros((2, 80), np.float32), np.array([0, 1])), hessian="full")
    heavy = bj.log_joint(model.apply, bj.priors.student_t(3.0), bj.likelihoods.categorical(), num_data=96)
    with pytest.raises(ValueError, match="Gaussian prior"):
        laplace(heavy, params, (xc, yc))
    with pytest.raises(ValueError, match="labels out of range"):
        laplace(lj, params, (xc, yc + 5))
    post = laplace(lj, params, (xc, yc), hessian="diag", prior_precision=2.0)  # an explicit precision overrides
    assert all(float(leaf) == 2.0 for leaf in jax.tree.leaves(post.prior_precision))
    with pytest.raises(ValueError, match="link must be one of"):
        post.predictive_glm(xc, link="logit")
    with pytest.raises(ValueError, match="one prior precision per kernel"):
        laplace(lj, params, (xc, yc), hessian="kfac",
                prior_precision=jax.tree.map(lambda p: np.arange(1.0, p.size + 1).reshape(p.shape), params))
    with pytest.raises(ValueError, match="x_val"):
        post.optimize_prior_precision("gridsearch")
    with pytest.raises(ValueError, match="gaussian likelihood"):
        post.optimize_prior_precision(tune_noise=True)
