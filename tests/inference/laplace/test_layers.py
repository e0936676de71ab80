"""Tapped convolutions: KFAC's factors follow Grosse & Martens (2016), exact at one location; the diagonal is exact."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import bayesjax as bj
from bayesjax.inference.laplace import laplace
from bayesjax.inference.laplace.factorization import leaf_offsets
from tests.helpers.laplace_problems import CNN
from tests.helpers.numerics import flat, rel_err


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
