"""Laplace approximations against exact oracles: Bayesian linear regression, explicit GGNs, last layer."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats
from jax.flatten_util import ravel_pytree

import bayesjax as bj
from bayesjax.inference.laplace import build, from_state, ggn_vector_product, laplace
from bayesjax.inference.laplace import curvature as curv
from bayesjax.inference.laplace import posterior
from bayesjax.inference.laplace.posterior import Target, leaf_offsets

N, D, NOISE, PRIOR = 60, 3, 0.5, 1.3
TEMPERINGS = [(1.0, "posterior"), (0.3, "posterior"), (0.5, "likelihood")]


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def flat(tree):
    """``ravel_pytree`` order, in NumPy (keeps float64 outside ``enable_x64``)."""
    return np.concatenate([np.ravel(np.asarray(leaf)) for leaf in jax.tree.leaves(tree)])


def linear_apply(params, x):
    return x @ params["w"][:, None]


@pytest.fixture(scope="module")
def linear_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D))
    return x, x @ np.array([1.0, -2.0, 0.5]) + NOISE * rng.normal(size=N), rng.normal(size=(7, D))


LINEAR_LAYER = bj.models.mlp([], num_outputs=1)


@pytest.fixture(scope="module")
def orthogonal_data():
    """Centered, orthogonal columns: [1, X]^T [1, X] is diagonal, so diag and KFAC are exact too."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(N, D))
    q, _ = np.linalg.qr(a - a.mean(0))
    x = q * np.array([3.0, 2.0, 1.0])
    return x, x @ np.array([1.0, -2.0, 0.5]) + 0.3 + NOISE * rng.normal(size=N)


# Shared parts: log-joints that differ only in temperature share compiled code.
GAUSSIAN_PRIOR, GAUSSIAN_LIKELIHOOD = bj.priors.gaussian(PRIOR), bj.likelihoods.gaussian(NOISE)


def linear_log_joint(temperature=1.0, tempering="posterior", apply=linear_apply):
    return bj.log_joint(apply, GAUSSIAN_PRIOR, GAUSSIAN_LIKELIHOOD, num_data=N, temperature=temperature,
                        tempering=tempering)


# --------------------------------------------------------------------------- linear-Gaussian: exact
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


def test_samples_have_the_posterior_moments(linear_data):
    x, y, _ = linear_data
    with jax.enable_x64(True):
        mean, cov = bj.linear.posterior(x, y, NOISE, PRIOR, temperature=0.3)
        post = laplace(linear_log_joint(0.3), {"w": mean}, (x, y), hessian="full")
        draws = np.asarray(post.sample(jax.random.key(0), 20_000)["w"])
        again = np.asarray(post.sample(jax.random.key(0), 20_000)["w"])
    mean, cov = np.asarray(mean), np.asarray(cov)
    num = draws.shape[0]
    z_mean = (draws.mean(0) - mean) / np.sqrt(np.diag(cov) / num)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / num)
    assert np.all(np.abs(z_mean) < 4) and np.all(np.abs((np.cov(draws.T) - cov) / se_cov) < 4)
    np.testing.assert_array_equal(draws, again)  # same key, same draws


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


# --------------------------------------------------------------------------- curvature of a tiny MLP
MLP = bj.models.mlp([5, 4], num_outputs=3, activation=jnp.tanh)


def manual_mlp(params, x):
    """The same network without flax: only the generic per-example-Jacobian path applies."""
    h = x
    for name in ("Dense_0", "Dense_1"):
        h = jnp.tanh(h @ params[name]["w"] + params[name]["b"])
    return h @ params["Dense_2"]["w"] + params["Dense_2"]["b"]


def to_manual(params):
    return {k: {"w": v["kernel"], "b": v["bias"]} for k, v in params.items()}


@pytest.fixture(scope="module")
def mlp_problem():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 6))
    y = rng.integers(0, 3, size=40).astype(np.int32)
    with jax.enable_x64(True):
        params = MLP.init(jax.random.key(0), jnp.asarray(x[:1]))
        params = jax.tree.map(lambda p: p + 0.3 * jnp.asarray(rng.normal(size=p.shape)), params)
        lj = bj.log_joint(MLP.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=40)
        full = laplace(lj, params, (x, y), hessian="full", chunk_size=16)
        explicit = explicit_ggn(params, x, y)
    return x, y, params, lj, full, explicit


def explicit_ggn(params, x, y, curvature="ggn"):
    """sum_i J_i^T Lambda_i J_i (or g_i g_i^T) from dense Jacobians and autodiff output Hessians."""
    log_p = lambda out, t: bj.likelihoods.categorical().log_prob(out[None], t[None])[0]  # noqa: E731

    def one(xi, yi):
        jac = jax.jacrev(lambda p: MLP.apply(p, xi[None])[0])(params)
        jac = jnp.concatenate([j.reshape(3, -1) for j in jax.tree.leaves(jac)], axis=1)
        f = MLP.apply(params, xi[None])[0]
        if curvature == "ggn":
            return jac.T @ -jax.hessian(log_p)(f, yi) @ jac
        g = jac.T @ jax.grad(log_p)(f, yi)
        return jnp.outer(g, g)

    with jax.enable_x64(True):
        return np.asarray(jnp.sum(jax.jit(jax.vmap(one))(jnp.asarray(x), jnp.asarray(y)), axis=0))


def test_full_ggn_equals_the_explicit_ggn(mlp_problem):
    x, y, params, lj, full, explicit = mlp_problem
    assert rel_err(full.curvature.matrix, explicit) < 1e-10
    with jax.enable_x64(True):
        generic = laplace(bj.log_joint(manual_mlp, lj.prior, lj.likelihood, num_data=40), to_manual(params), (x, y),
                          hessian="full", chunk_size=16)
    assert rel_err(generic.curvature.matrix, explicit) < 1e-10  # leaf order is the same (b, w vs bias, kernel)


def test_ggn_vector_product_is_matrix_free_ggn(mlp_problem):
    x, y, params, lj, _, explicit = mlp_problem
    with jax.enable_x64(True):
        v = jax.tree.map(lambda p: jnp.cos(jnp.arange(p.size, dtype=p.dtype).reshape(p.shape)), params)
        product = jax.jit(ggn_vector_product(lj, params, (x, y), chunk_size=16))(v)
    assert rel_err(flat(product), explicit @ flat(v)) < 1e-10


def test_diag_equals_the_diagonal_of_full(mlp_problem):
    x, y, params, lj, full, explicit = mlp_problem
    with jax.enable_x64(True):
        tapped = laplace(lj, params, (x, y), hessian="diag", chunk_size=16)
        generic = laplace(bj.log_joint(manual_mlp, lj.prior, lj.likelihood, num_data=40), to_manual(params), (x, y),
                          hessian="diag", chunk_size=16)
        tapped_precision, full_precision = tapped.precision_matrix(), full.precision_matrix()
    assert rel_err(flat(tapped.curvature.diag), np.diag(explicit)) < 1e-10
    assert rel_err(flat(generic.curvature.diag), np.diag(explicit)) < 1e-10
    assert rel_err(np.diag(tapped_precision), np.diag(full_precision)) < 1e-10


def test_kfac_against_the_full_ggn(mlp_problem):
    """Exact per layer (kernel and bias blocks) for one example; an approximation for batches."""
    x, y, params, lj, full, _ = mlp_problem
    offsets = leaf_offsets(params)
    with jax.enable_x64(True):
        one = bj.log_joint(MLP.apply, lj.prior, lj.likelihood, num_data=1)
        exact = laplace(one, params, (x[:1], y[:1]), hessian="full").precision_matrix()
        kfac = laplace(one, params, (x[:1], y[:1]), hessian="kfac").precision_matrix()
        batch_kfac = laplace(lj, params, (x, y), hessian="kfac", chunk_size=16).precision_matrix()
        batch_full = full.precision_matrix()
    report = {}
    for path, (start, size) in offsets.items():
        block = slice(start, start + size)
        assert rel_err(kfac[block, block], exact[block, block]) < 1e-10, path
        report["/".join(path)] = float(np.linalg.norm(batch_kfac[block, block] - batch_full[block, block])
                                       / np.linalg.norm(batch_full[block, block]))
    print("KFAC vs GGN relative Frobenius error per block, 40 examples:", report)
    assert all(report[f"{layer}/bias"] < 1e-10 for layer in ("Dense_0", "Dense_1", "Dense_2"))  # bias block exact
    assert all(value < 1.0 for value in report.values())


# --------------------------------------------------------------------------- curvature of a tiny CNN
CNN = bj.models.cnn(num_outputs=3, channels=(3, 4), hidden=6, activation=jnp.tanh)


class OneLocationConv(nn.Module):
    """A 3x3 VALID convolution of a 3x3 image: one output location, so KFAC's factors are exact."""

    @nn.compact
    def __call__(self, x):
        h = jnp.tanh(nn.Conv(4, (3, 3), padding="VALID", param_dtype=x.dtype)(x))
        return nn.Dense(3, param_dtype=x.dtype)(h.reshape(h.shape[0], -1))


def manual_cnn(params, x, perturbations):
    """``CNN`` without flax, with ``perturbations[name]`` added to each convolution's pre-activation."""
    h = x
    for name in ("Conv_0", "Conv_1"):
        z = jax.lax.conv_general_dilated(h, params[name]["kernel"], (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        h = jnp.tanh(z + params[name]["bias"] + perturbations[name])
        b, height, width, c = h.shape
        h = h.reshape(b, height // 2, 2, width // 2, 2, c).mean(axis=(2, 4))  # avg_pool 2x2
    h = jnp.tanh(h.reshape(h.shape[0], -1) @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"])
    return h @ params["Dense_1"]["kernel"] + params["Dense_1"]["bias"]


def kfc_factors(params, x):
    """Grosse & Martens (2016) factors of each conv, built independently of the tapped path.

    ``A = sum_{i,t} [a_it; 1][a_it; 1]^T`` from ``lax.conv_general_dilated_patches``,
    ``G = 1/T sum_{i,t} J_it^T (diag p_i - p_i p_i^T) J_it`` with ``J_it = df_i / dz_it`` by ``jax.jacrev``.
    """
    zero = {"Conv_0": jnp.zeros((1, 8, 8, 3)), "Conv_1": jnp.zeros((1, 4, 4, 4))}
    h = jnp.tanh(jax.lax.conv_general_dilated(x, params["Conv_0"]["kernel"], (1, 1), "SAME",
                                              dimension_numbers=("NHWC", "HWIO", "NHWC")) + params["Conv_0"]["bias"])
    inputs = {"Conv_0": x, "Conv_1": h.reshape(h.shape[0], 4, 2, 4, 2, 3).mean(axis=(2, 4))}
    factors = {}
    for name, a in inputs.items():
        patches = jax.lax.conv_general_dilated_patches(a, (3, 3), (1, 1), "SAME",
                                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
        c = a.shape[-1]  # features come as (c, kh, kw): reorder to the kernel's (kh, kw, c)
        patches = patches.reshape(-1, c, 9).transpose(0, 2, 1).reshape(-1, 9 * c)
        patches = jnp.concatenate([patches, jnp.ones((patches.shape[0], 1))], axis=1)
        jac = jax.vmap(lambda xi: jax.jacrev(lambda e: manual_cnn(params, xi[None], {**zero, name: e})[0])(
            zero[name]))(x)  # [B, K, 1, H, W, C]
        jac = jac.reshape(jac.shape[0], 3, -1, jac.shape[-1])  # [B, K, T, C]
        p = jax.nn.softmax(manual_cnn(params, x, zero))
        lam = jax.vmap(jnp.diag)(p) - p[:, :, None] * p[:, None, :]
        g = jnp.einsum("bktc,bkl,bltd->cd", jac, lam, jac) / jac.shape[2]
        factors[name] = (patches.T @ patches, g)
    return factors


@pytest.fixture(scope="module")
def cnn_problem():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(40, 8, 8, 2))
    y = rng.integers(0, 3, size=40).astype(np.int32)
    with jax.enable_x64(True):
        init = jax.jit(lambda key, xs: jax.tree.map(lambda p: p.astype(jnp.float64), CNN.init(key, xs)))
        params = init(jax.random.key(0), jnp.asarray(x[:1]))
        lj = bj.log_joint(CNN.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=40)
        full = laplace(lj, params, (x, y), hessian="full", chunk_size=16)
        kfac = laplace(lj, params, (x, y), hessian="kfac", chunk_size=16)
    return x, y, params, lj, full, kfac


def test_conv_kfac_is_exact_at_one_location():
    """One example, one output location: every KFAC block (conv and dense, kernel and bias) is the GGN block."""
    rng = np.random.default_rng(9)
    model = bj.models.from_flax(OneLocationConv())
    x, y = rng.normal(size=(1, 3, 3, 2)), np.array([2], np.int32)
    with jax.enable_x64(True):
        params = jax.jit(model.init)(jax.random.key(0), jnp.asarray(x))
        lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=1)
        exact = laplace(lj, params, (x, y), hessian="full").precision_matrix()
        kfac = laplace(lj, params, (x, y), hessian="kfac").precision_matrix()
    assert params["Conv_0"]["kernel"].shape == (3, 3, 2, 4)
    for path, (start, size) in leaf_offsets(params).items():
        block = slice(start, start + size)
        assert rel_err(kfac[block, block], exact[block, block]) < 1e-10, path


def test_conv_kfac_factors_follow_grosse_and_martens(cnn_problem):
    """Many examples and locations: the factors equal an independent implementation of the KFC definition."""
    x, _, params, _, _, kfac = cnn_problem
    with jax.enable_x64(True):
        np.testing.assert_allclose(manual_cnn(params, jnp.asarray(x), {"Conv_0": 0.0, "Conv_1": 0.0}),
                                   CNN.apply(params, jnp.asarray(x)), rtol=1e-12)
        reference = jax.jit(kfc_factors)(params, jnp.asarray(x))
    for name, (a, g) in reference.items():
        assert rel_err(kfac.curvature.factors[name].A, a) < 1e-10, name
        assert rel_err(kfac.curvature.factors[name].G, g) < 1e-10, name


def test_conv_kfac_against_the_full_ggn(cnn_problem):
    """Reported: per block, the correlation of KFAC's diagonal with the GGN's, and the trace ratio.

    KFC (Grosse & Martens 2016) assumes output gradients uncorrelated across
    locations and independent of the patches; average pooling shares one
    gradient between 4 locations, so conv blocks are approximate here
    (diagonal correlation 0.69-0.78 for Conv_0, 0.74-0.77 for Conv_1 over data
    seeds 1, 2, 8). A wrong location normalization would put the trace ratio
    off by T (64 or 16); dense blocks stay close.
    """
    x, y, params, _, full, kfac = cnn_problem
    with jax.enable_x64(True):
        ggn, approx = full.curvature.matrix, kfac.precision_matrix() - jnp.eye(full.num_params)  # prior precision 1
    report = {}
    for path, (start, size) in leaf_offsets(params).items():
        block = slice(start, start + size)
        exact_diag, kfac_diag = np.diag(ggn[block, block]), np.diag(approx[block, block])
        report["/".join(path)] = (round(float(np.corrcoef(kfac_diag, exact_diag)[0, 1]), 3),
                                  round(float(kfac_diag.sum() / exact_diag.sum()), 3))
    print("KFAC vs GGN per block, 40 examples (diagonal correlation, trace ratio):", report)
    for layer in ("Conv_0", "Conv_1"):
        correlation, trace_ratio = report[f"{layer}/kernel"]
        assert correlation > 0.6 and 0.5 < trace_ratio < 2.0, (layer, report)
    assert all(report[f"Dense_{k}/{leaf}"][0] > 0.98 for k in (0, 1) for leaf in ("kernel", "bias"))


def test_conv_diag_equals_the_diagonal_of_full(cnn_problem):
    x, y, params, lj, full, _ = cnn_problem
    with jax.enable_x64(True):
        diag = laplace(lj, params, (x, y), hessian="diag", chunk_size=16)
    assert rel_err(flat(diag.curvature.diag), np.diag(full.curvature.matrix)) < 1e-10


def test_kfac_cnn_posterior_samples_and_predictives(cnn_problem):
    """Sampling, log-determinant and GLM covariance are exact for the KFAC precision; both predictives run."""
    x, y, params, lj, _, kfac = cnn_problem
    with jax.enable_x64(True):
        flat_params, unravel = ravel_pytree(params)
        precision = np.asarray(kfac.precision_matrix())
        covariance = np.linalg.inv(precision)
        # theta - m = C z is linear in the noise z: unit vectors give the columns of C, and C C^T = P^{-1}.
        columns = flat_rows(jax.jit(posterior.sample_deviations)(kfac, jnp.eye(kfac.num_params)))
        log_det = jax.jit(posterior.log_det_precision)(kfac, kfac.prior_precision)
        jac = jax.jit(jax.jacrev(lambda v: CNN.apply(unravel(v), jnp.asarray(x[:5]))))(flat_params)  # [5, 3, D]
        _, f_cov = kfac.functional_covariance(x[:5])
        glm = np.exp(kfac.predictive_glm(x, link="probit").log_probs)
        mc = np.exp(bj.predictive(CNN.apply, kfac.sample(jax.random.key(0), 30), x, lj.likelihood).log_probs)
    assert rel_err(columns.T @ columns, covariance) < 1e-8
    assert rel_err(log_det, np.linalg.slogdet(precision)[1]) < 1e-10
    assert rel_err(f_cov, np.einsum("bkd,de,ble->bkl", jac, covariance, jac)) < 1e-8
    for probs in (glm, mc):
        assert probs.shape == (40, 3) and np.all(np.isfinite(probs))
        np.testing.assert_allclose(np.sum(probs, axis=1), 1.0, rtol=1e-6)
    assert np.mean(np.abs(glm - mc)) < 0.1


def flat_rows(tree):
    """Leaves with a leading axis S -> ``[S, D]`` in ``ravel_pytree`` order."""
    leaves = jax.tree.leaves(tree)
    return np.concatenate([np.asarray(leaf).reshape(leaves[0].shape[0], -1) for leaf in leaves], axis=1)


def test_empirical_fisher(mlp_problem):
    x, y, params, lj, _, _ = mlp_problem
    explicit = explicit_ggn(params, x[:8], y[:8], curvature="ef")
    with jax.enable_x64(True):
        small = bj.log_joint(MLP.apply, lj.prior, lj.likelihood, num_data=8)
        full = laplace(small, params, (x[:8], y[:8]), hessian="full", curvature="ef")
        diag = laplace(small, params, (x[:8], y[:8]), hessian="diag", curvature="ef")
        one = bj.log_joint(MLP.apply, lj.prior, lj.likelihood, num_data=1)
        kfac_one = laplace(one, params, (x[:1], y[:1]), hessian="kfac", curvature="ef").precision_matrix()
        full_one = laplace(one, params, (x[:1], y[:1]), hessian="full", curvature="ef").precision_matrix()
    assert rel_err(full.curvature.matrix, explicit) < 1e-10
    assert rel_err(flat(diag.curvature.diag), np.diag(explicit)) < 1e-10
    for start, size in leaf_offsets(params).values():
        block = slice(start, start + size)
        assert rel_err(kfac_one[block, block], full_one[block, block]) < 1e-10


@pytest.mark.parametrize("name", ["categorical", "gaussian", "noisy_dirichlet", "student"])
def test_output_factors_square_to_the_output_hessian(name):
    likelihoods = {
        "categorical": (bj.likelihoods.categorical(), 4, np.array([0, 3, 1])),
        "gaussian": (bj.likelihoods.gaussian(0.7), 1, np.array([0.2, -1.0, 3.0])),
        "noisy_dirichlet": (bj.likelihoods.noisy_dirichlet(0.05), 4, np.array([0, 3, 1])),
        # not a built-in: goes through the generic autodiff Hessian
        "student": (bj.likelihoods.Likelihood("student", "regression",
                                              lambda f, t: jax.scipy.stats.t.logpdf(t, 5.0, f[:, 0], 0.5),
                                              lambda f: (f[:, 0], jnp.ones_like(f[:, 0])), 1), 1,
                    np.array([0.1, 0.2, -0.1])),
    }
    likelihood, k, y = likelihoods[name]

    @jax.jit
    def factor_and_hessian(f, t):
        hessian = jax.vmap(jax.hessian(lambda fi, yi: -likelihood.log_prob(fi[None], yi[None])[0]))(f, t)
        return curv.output_factors(likelihood, f, t, "ggn"), hessian

    with jax.enable_x64(True):
        f = jnp.asarray(np.random.default_rng(4).normal(size=(3, k)))
        factor, hessian = factor_and_hessian(f, jnp.asarray(y))
        if name == "student":  # not log-concave: the GGN keeps the PSD part of the output Hessian
            assert np.any(hessian < 0)
            hessian = jnp.maximum(hessian, 0.0)
        np.testing.assert_allclose(factor @ jnp.swapaxes(factor, 1, 2), hessian, atol=1e-12)


# --------------------------------------------------------------------------- last layer
@pytest.mark.parametrize("hessian", ["full", "diag", "kfac"])
def test_last_layer_equals_full_laplace_of_the_head_alone(hessian):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 4))
    y = rng.integers(0, 3, size=30).astype(np.int32)
    net, head = bj.models.mlp([6], num_outputs=3), bj.models.mlp([], num_outputs=3)
    with jax.enable_x64(True):
        params = jax.tree.map(lambda p: p.astype(jnp.float64), net.init(jax.random.key(1), jnp.asarray(x[:1])))
        features = jax.nn.relu(x @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"])
        head_params = {"Dense_0": params["Dense_1"]}
        prior, lik = bj.priors.gaussian(0.8), bj.likelihoods.categorical()
        last = laplace(bj.log_joint(net.apply, prior, lik, num_data=30, temperature=0.7), params, (x, y),
                       hessian=hessian, subset="last_layer", chunk_size=8)
        alone = laplace(bj.log_joint(head.apply, prior, lik, num_data=30, temperature=0.7), head_params,
                        (features, y), hessian=hessian, chunk_size=8)
        assert last.subset == ("Dense_1",)
        assert rel_err(last.precision_matrix(), alone.precision_matrix()) < 1e-10
        assert rel_err(last.log_marginal_likelihood(), alone.log_marginal_likelihood()) < 1e-10
        f_last, cov_last = last.functional_covariance(x)
        f_alone, cov_alone = alone.functional_covariance(features)
        assert rel_err(f_last, f_alone) < 1e-10 and rel_err(cov_last, cov_alone) < 1e-10
        samples = last.sample(jax.random.key(0), 3)
        np.testing.assert_array_equal(samples["Dense_0"]["kernel"][2], params["Dense_0"]["kernel"])
        assert not np.allclose(samples["Dense_1"]["kernel"][0], params["Dense_1"]["kernel"])


# --------------------------------------------------------------------------- predictives
@pytest.fixture(scope="module")
def classifier():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(96, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int32) + (x[:, 2] > 1).astype(np.int32)
    model = bj.models.mlp([8], num_outputs=3)
    lj = bj.log_joint(model.apply, bj.priors.layerwise("he"), bj.likelihoods.categorical(), num_data=96)
    params = bj.run(jax.random.key(0), bj.map(lj, optax.adam(1e-2)), model.init(jax.random.key(0), x[:1]),
                    (x, y), num_steps=300, progress=False).state.params
    params = jax.tree.map(lambda p: p[0], params)
    return x, y, model, lj, params


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


# --------------------------------------------------------------------------- evidence and tuning
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


# --------------------------------------------------------------------------- memory: chunked
@pytest.mark.parametrize("hessian", ["diag", "kfac"])
def test_curvature_memory_does_not_grow_with_the_data(hessian):
    """An MNIST-shaped MLP (784 inputs): the compiled fit's scratch memory is the same for 1k and 4k examples."""
    from bayesjax.inference.laplace import fit

    model = bj.models.mlp([32], num_outputs=10)
    params = model.init(jax.random.key(0), jnp.zeros((1, 784)))
    temp = {}
    for n in (1024, 4096):
        lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=n)
        data = (jax.ShapeDtypeStruct((n, 784), jnp.float32), jax.ShapeDtypeStruct((n,), jnp.int32))
        compiled = fit.FIT.optimized.lower(params, data, None, 1.0, 1.0, n, target=Target(lj), hessian=hessian,
                                           curvature="ggn", subset="all", chunk_size=256).compile()
        assert curv.chunking(n, 256)[1] == n // 256 > 1
        temp[n] = compiled.memory_analysis().temp_size_in_bytes
    jacobian_bytes = 1024 * 10 * ravel_pytree(params)[0].size * 4  # what an unchunked Jacobian would take
    assert temp[1024] == temp[4096] < jacobian_bytes / 20, temp


# --------------------------------------------------------------------------- streaming Algorithm
@pytest.mark.parametrize("hessian", ["full", "diag", "kfac"])
def test_streaming_over_one_epoch_equals_the_batch_fit(classifier, hessian):
    x, y, _, lj, params = classifier
    batch = laplace(lj, params, (x, y), hessian=hessian)
    run = bj.run(jax.random.key(3), build(lj, hessian=hessian), params, (x, y), num_steps=3, batch_size=32,
                 progress=False)
    state = jax.tree.map(lambda s: s[0], run.state)
    assert int(state.num_seen) == 96 and not hasattr(state, "position")
    streamed = from_state(lj, state)
    assert rel_err(streamed.precision_matrix(), batch.precision_matrix()) < 1e-5
    assert rel_err(streamed.log_marginal_likelihood(), batch.log_marginal_likelihood()) < 1e-5


def test_partial_pass_is_rescaled_to_the_full_data(classifier):
    x, y, _, lj, params = classifier
    algo = build(lj, hessian="diag")
    state, _ = jax.jit(algo.step)(jax.random.key(0), algo.init(jax.random.key(0), params), (x[:48], y[:48]))
    half = from_state(lj, state)
    direct = laplace(bj.log_joint(lj.apply, lj.prior, lj.likelihood, num_data=96), params, (x[:48], y[:48]),
                     hessian="diag")
    assert rel_err(half.precision_matrix(), direct.precision_matrix()) < 1e-6
    assert rel_err(half.log_likelihood, 2 * state.log_likelihood) < 1e-6


# --------------------------------------------------------------------------- errors
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
