"""How a sweep cell runs a method: the Laplace step with a traced temperature is exact on linear regression."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from bayesjax.experiments.sweep.methods import laplace_at_map
from bayesjax.inference.laplace import from_state
from bayesjax.inference.laplace.factorization import marginal_variance
from bayesjax.inference.map import MAPState


@pytest.mark.parametrize("tempering", ["posterior", "likelihood"])
def test_laplace_cells_give_the_exact_tempered_posterior_of_linear_regression(tempering):
    """Traced T through the sweep's Laplace step: diag, KFAC and last-layer KFAC are exact for one dense layer on
    orthogonal inputs, under either tempering (P = (K + Delta) / T or K / T + Delta)."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(40, 3))
    q, _ = np.linalg.qr(a - a.mean(0))
    x = q * np.array([3.0, 2.0, 1.0])  # centered, orthogonal columns: [1, X]^T [1, X] is diagonal
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.3 * rng.normal(size=40)
    design = np.concatenate([np.ones((40, 1)), x], axis=1)
    model = bj.models.mlp([], num_outputs=1)
    temperatures = np.array([1e-3, 0.1, 1.0])
    with jax.enable_x64(True):
        exact = [bj.linear.posterior(design, y, 0.3, 1.0, temperature=t, tempering=tempering) for t in temperatures]
        means = jnp.asarray(np.stack([m for m, _ in exact]))

        def variances(hessian, subset, temperature, mean):
            lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.gaussian(0.3), 40,
                              temperature=temperature, tempering=tempering)
            params = {"Dense_0": {"bias": mean[None, :1], "kernel": mean[None, 1:, None]}}  # one fit
            algorithm, states = laplace_at_map(hessian, subset, lj, MAPState(params, None), jnp.asarray(x),
                                               jnp.asarray(y)[:, None])
            post = from_state(algorithm.log_joint, jax.tree.map(lambda s: s[0], states), subset=subset)
            variance = marginal_variance(post)["Dense_0"]
            return jnp.concatenate([variance["bias"], variance["kernel"][:, 0]])

        for hessian, subset in (("diag", "all"), ("kfac", "all"), ("kfac", "last_layer")):
            got = jax.jit(jax.vmap(lambda t, m: variances(hessian, subset, t, m)))(jnp.asarray(temperatures), means)
            np.testing.assert_allclose(got, np.stack([np.diag(c) for _, c in exact]), rtol=1e-6)
