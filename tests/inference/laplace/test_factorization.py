"""The KFAC algebra of a CNN posterior: sampling, log-determinant and GLM covariance exact for its precision."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import bayesjax as bj
from bayesjax.inference.laplace import factorization, sampling
from tests.helpers.laplace_problems import CNN
from tests.helpers.numerics import flat_rows, rel_err


def test_kfac_cnn_posterior_samples_and_predictives(cnn_problem):
    """Sampling, log-determinant and GLM covariance are exact for the KFAC precision; both predictives run."""
    x, y, params, lj, _, kfac = cnn_problem
    with jax.enable_x64(True):
        flat_params, unravel = ravel_pytree(params)
        precision = np.asarray(kfac.precision_matrix())
        covariance = np.linalg.inv(precision)
        # theta - m = C z is linear in the noise z: unit vectors give the columns of C, and C C^T = P^{-1}.
        columns = flat_rows(jax.jit(sampling.sample_deviations)(kfac, jnp.eye(kfac.num_params)))
        log_det = jax.jit(factorization.log_det_precision)(kfac, kfac.prior_precision)
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


def _softmax_output_factor(num_examples: int, num_classes: int, seed: int) -> np.ndarray:
    """``sum_i L_i L_i^T``, ``L L^T = diag p - p p^T``: a softmax output layer's ``G``, null along all-ones."""
    logits = 3.0 * np.random.default_rng(seed).normal(size=(num_examples, num_classes)).astype(np.float32)
    p = np.asarray(jax.nn.softmax(logits))
    return np.einsum("ik,kl->kl", p, np.eye(num_classes, dtype=np.float32)) - p.T @ p


def test_softmax_null_direction_of_g_is_exactly_zero():
    """All-ones gets eigenvalue exactly 0 and its own eigenvector; the rest reproduces G; other G's are plain eigh."""
    g = _softmax_output_factor(500, 10, seed=0)
    vals, vecs = factorization.output_factor_eigh(jnp.asarray(g))
    vals, vecs = np.asarray(vals), np.asarray(vecs)
    plain = np.linalg.eigvalsh(g)
    assert plain[0] != 0.0  # float32 leaves a rounding-level eigenvalue there
    assert vals[0] == 0.0 and np.all(vals[1:] > 0)
    np.testing.assert_allclose(vecs[:, 0], np.full(10, 1 / np.sqrt(10)), rtol=1e-6)
    np.testing.assert_allclose(vecs.T @ vecs, np.eye(10), atol=1e-6)
    assert rel_err((vecs * vals) @ vecs.T, g) < 10 * 10 * np.finfo(np.float32).eps
    spd = g + np.diag(np.arange(1.0, 11.0, dtype=np.float32))  # all-ones no longer null: plain eigh
    vals_spd, _ = factorization.output_factor_eigh(jnp.asarray(spd))
    np.testing.assert_allclose(vals_spd, np.linalg.eigvalsh(spd), rtol=1e-5)


@pytest.mark.filterwarnings("ignore:bj.laplace. params_map is not at a mode")  # the curvature at any point will do
def test_untuned_kfac_predictive_does_not_depend_on_rounding():
    """Chunk sizes round G differently; the GLM predictive stays the float64 fit's (the prior's precision along all-ones).

    Inputs of scale 30 give A eigenvalues large enough that G's rounding-level
    eigenvalue along all-ones, times them, is comparable to the prior
    precision: without the exact null direction the NLL moves with the chunk.
    """
    rng = np.random.default_rng(3)
    x = (30.0 * rng.normal(size=(3000, 12))).astype(np.float32)
    y = rng.integers(0, 6, size=3000).astype(np.int32)
    model = bj.models.mlp([16], num_outputs=6)
    params = model.init(jax.random.key(1), x[:1])
    lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=len(y))

    def nll(chunk_size, dtype=np.float32):
        cast = jax.tree.map(lambda leaf: jnp.asarray(leaf, dtype), params)
        post = bj.laplace(lj, cast, (x.astype(dtype), y), hessian="kfac", subset="last_layer", chunk_size=chunk_size)
        return float(-jnp.mean(post.predictive_glm(x[:500].astype(dtype), link="probit").log_prob(y[:500])))

    with jax.enable_x64(True):
        exact = nll(None, np.float64)
    for chunk_size in (None, 127, 128, 1000):
        assert abs(nll(chunk_size) - exact) < 2e-5 * exact
