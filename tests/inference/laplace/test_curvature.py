"""GGN and empirical-Fisher sums of a tiny MLP against explicit dense Jacobians; output-space factors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from bayesjax.inference.laplace import ggn_vector_product, laplace
from bayesjax.inference.laplace import subsets
from bayesjax.inference.laplace.curvature import accumulate, output_factors, zeros
from bayesjax.inference.laplace.factorization import leaf_offsets
from tests.helpers.numerics import flat, rel_err

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
        return output_factors(likelihood, f, t, "ggn"), hessian

    with jax.enable_x64(True):
        f = jnp.asarray(np.random.default_rng(4).normal(size=(3, k)))
        factor, hessian = factor_and_hessian(f, jnp.asarray(y))
        if name == "student":  # not log-concave: the GGN keeps the PSD part of the output Hessian
            assert np.any(hessian < 0)
            hessian = jnp.maximum(hessian, 0.0)
        np.testing.assert_allclose(factor @ jnp.swapaxes(factor, 1, 2), hessian, atol=1e-12)


@pytest.mark.parametrize("model_name,hessian,subset", [
    ("mlp", "kfac", "all"), ("mlp", "diag", "last_layer"), ("mlp", "full", "all"), ("cnn", "kfac", "all"),
    ("cnn", "kfac", "last_layer"), ("cnn", "diag", "all"), ("manual_mlp", "diag", "all"),
    ("manual_mlp", "full", "last_layer"),
])  # every path: tapped dense and conv layers (diag, KFAC), the generic VJP path (full; a flax-free model)
def test_gradient_from_the_curvature_pass_equals_autodiff(mlp_problem, cnn_problem, model_name, hessian, subset):
    """The log-likelihood gradient summed in the curvature's pass (the mode check's) is autodiff's.

    Chunks of 16 leave a padded last chunk (40 examples), whose rows must add nothing.
    Tapped layers (flax MLP and CNN, diag and KFAC) read it from the residual column,
    the generic path (full; the flax-free MLP) from one VJP.
    """
    if model_name == "cnn":
        x, y, params, lj, _, _ = cnn_problem
        apply = lj.apply
    else:
        x, y, params, lj, _, _ = mlp_problem
        apply = MLP.apply if model_name == "mlp" else manual_mlp
        params = params if model_name == "mlp" else to_manual(params)
    names = subsets.resolve(subset, params)
    likelihood = bj.likelihoods.categorical()
    with jax.enable_x64(True):
        xs, ys = jnp.asarray(x), jnp.asarray(y)
        sub = subsets.select(params, names)
        done = accumulate(zeros(hessian, sub), hessian, "ggn", apply, likelihood, params, names, xs, ys,
                          chunk_size=16, with_gradient=True)
        want = jax.grad(lambda s: jnp.sum(likelihood.log_prob(apply(subsets.merge(s, params, names), xs), ys)))(sub)
        without = accumulate(zeros(hessian, sub), hessian, "ggn", apply, likelihood, params, names, xs, ys,
                             chunk_size=16)
    assert jax.tree.structure(done.gradient) == jax.tree.structure(want)
    assert rel_err(flat(done.gradient), flat(want)) < 1e-10
    assert without.gradient is None
    assert rel_err(flat(without.curvature), flat(done.curvature)) < 1e-12  # the residual column adds no curvature
