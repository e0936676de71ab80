"""Streams and beliefs the online-learning tests share (the linear-Gaussian problem of :mod:`.linear_gaussian`)."""
import jax
import jax.numpy as jnp
import numpy as np

import bayesjax as bj
from bayesjax.inference.online import belief
from tests.helpers.linear_gaussian import NOISE, PRIOR, D, N


def log_joint(apply, temperature=1.0, tempering="posterior"):
    return bj.log_joint(apply, bj.priors.gaussian(PRIOR), bj.likelihoods.gaussian(NOISE), num_data=N,
                        temperature=temperature, tempering=tempering)


def dense_zeros():
    """Float64 zeros for LINEAR_LAYER (call under ``enable_x64``; flax would initialize float32)."""
    return {"Dense_0": {"bias": jnp.zeros(1), "kernel": jnp.zeros((D, 1))}}


def stream(algo, params, data, batch_size, key=0, num_chains=1):
    return bj.run(jax.random.key(key), algo, params, data, num_steps=N // batch_size, batch_size=batch_size,
                  shuffle=False, progress=False, num_chains=num_chains)


def chain(tree, index=0):
    return jax.tree.map(lambda leaf: leaf[index], tree)


def covariance_of(lj, state):
    """The dense covariance of an EKF / Laplace belief, through its Laplace-posterior view."""
    num_seen = getattr(state, "num_seen", jnp.ones(()))
    view = belief.laplace_view(lj, state.mean, state.curvature, num_seen, lj.prior_weight)
    return np.linalg.inv(np.asarray(view.precision_matrix()))
