"""Models and log-joints the Laplace tests share."""
import jax.numpy as jnp

import bayesjax as bj
from tests.helpers.linear_gaussian import NOISE, PRIOR, N, linear_apply

TEMPERINGS = [(1.0, "posterior"), (0.3, "posterior"), (0.5, "likelihood")]

# Shared parts: log-joints that differ only in temperature share compiled code.
GAUSSIAN_PRIOR, GAUSSIAN_LIKELIHOOD = bj.priors.gaussian(PRIOR), bj.likelihoods.gaussian(NOISE)

CNN = bj.models.cnn(num_outputs=3, channels=(3, 4), hidden=6, activation=jnp.tanh)


def linear_log_joint(temperature=1.0, tempering="posterior", apply=linear_apply):
    return bj.log_joint(apply, GAUSSIAN_PRIOR, GAUSSIAN_LIKELIHOOD, num_data=N, temperature=temperature,
                        tempering=tempering)
