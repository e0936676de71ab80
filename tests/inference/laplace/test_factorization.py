"""The KFAC algebra of a CNN posterior: sampling, log-determinant and GLM covariance exact for its precision."""
import jax
import jax.numpy as jnp
import numpy as np
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
