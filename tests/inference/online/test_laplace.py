"""Sequential Laplace with an optax inner optimizer reaches the exact posterior."""
import jax
import numpy as np
import optax

import bayesjax as bj
from bayesjax.inference.online import online
from tests.helpers.linear_gaussian import LINEAR_LAYER, NOISE, PRIOR, N
from tests.helpers.numerics import flat, rel_err
from tests.helpers.online_streams import chain, covariance_of, dense_zeros, log_joint, stream


def test_an_optax_inner_optimizer_converges_to_the_same_map(orthogonal_batches):
    """Plain gradient ascent on each batch's objective (prior = previous belief) reaches the exact posterior."""
    x, y = orthogonal_batches
    design = np.concatenate([np.ones((N, 1)), x], axis=1)
    with jax.enable_x64(True):
        lj = log_joint(LINEAR_LAYER.apply)
        params = dense_zeros()
        # The largest precision reached is 241 (bias, 60 / 0.25 + 1 / 1.69): step 1 / 300 converges.
        algo = online(lj, "laplace_diag", optimizer=optax.sgd(1.0 / 300), num_inner_steps=1500)
        state = chain(stream(algo, params, (x, y), 10).state)
        mean, cov = bj.linear.posterior(design, y, NOISE, PRIOR)
        assert rel_err(flat(state.mean), mean) < 1e-8
        assert rel_err(covariance_of(lj, state), cov) < 1e-8
