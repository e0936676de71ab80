"""Honest-temperature estimators against exact samples and known noise."""
import jax
import jax.numpy as jnp
import numpy as np

import bayesjax as bj
from bayesjax.experiments import sweep


def test_configurational_temperature_of_exact_samples():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    y = x @ rng.normal(size=4) + 0.3 * rng.normal(size=50)
    with jax.enable_x64(True):
        for temperature in (1.0, 0.05):
            mean, cov = bj.linear.posterior(x, y, 0.3, 1.0, temperature=temperature)
            draws = jnp.asarray(rng.multivariate_normal(np.asarray(mean), np.asarray(cov), size=4000))
            lj = bj.log_joint(lambda p, x: x @ p[:, None], bj.priors.gaussian(1.0), bj.likelihoods.gaussian(0.3),
                              50, temperature=temperature)
            grad_potential = jax.grad(lambda p: -temperature * lj(p, (x, y)))
            estimate = float(sweep.configurational_temperature(grad_potential, draws))
            per_draw = np.asarray(jax.vmap(lambda p: p @ grad_potential(p))(draws)) / 4
            assert abs(estimate - temperature) < 3 * per_draw.std() / np.sqrt(len(per_draw))


def test_gradient_noise_ratio_of_known_noise():
    grads = {"w": jnp.asarray(np.random.default_rng(1).normal(0.0, 3.0, size=(20000, 5)))}
    ratio = float(sweep.gradient_noise_ratio(grads, step_size=1e-3, temperature=0.5))
    np.testing.assert_allclose(ratio, 1e-3 * 9.0 / (2 * 0.5), rtol=0.03)
