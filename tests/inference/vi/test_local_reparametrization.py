"""Local reparametrization of dense layers: the same ELBO expectation with lower variance."""
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj
from bayesjax.inference import vi
from bayesjax.inference.vi import meanfield, objective
from tests.helpers.linear_problem import D
from tests.helpers.vi_problem import X, Y, log_joint, meanfield_state


class TwoLayer(nn.Module):
    """Dense(16, no bias) -> relu -> Dense(3): two kernels and one bias (few leaves: few noise draws to compile)."""

    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(jax.nn.relu(nn.Dense(16, use_bias=False)(x)))


@pytest.fixture(scope="module")
def mlp_problem():
    model = bj.models.from_flax(TwoLayer())
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=64).astype(np.int32)
    params = model.init(jax.random.key(0), x[:1])
    lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=64)
    return model, lj, params, (x, y)


def test_local_reparametrization_same_expectation_lower_variance(mlp_problem):
    _, lj, params, batch = mlp_problem
    family = meanfield.family()
    state = meanfield_state(0.3, jax.device_get(params))

    def estimate(local, key):
        terms, grads, _ = objective.elbo_value_and_grad(key, state, batch, log_joint=lj, family=family,
                                                        local_reparametrization=local)
        return terms.expected_log_likelihood, jnp.concatenate([g.ravel() for g in jax.tree.leaves(grads)])

    keys = jax.random.split(jax.random.key(8), 1000)
    both = jax.jit(lambda keys: [jax.vmap(functools.partial(estimate, local))(keys) for local in (False, True)])
    (ell_w, grad_w), (ell_l, grad_l) = jax.tree.map(lambda a: np.asarray(a, np.float64), both(keys))
    se = math.sqrt((ell_w.var() + ell_l.var()) / len(keys))
    assert abs(ell_w.mean() - ell_l.mean()) < 4 * se, (ell_w.mean(), ell_l.mean(), se)
    assert ell_l.var() < 0.5 * ell_w.var(), (ell_l.var(), ell_w.var())
    # The gradients' expectations agree within Monte Carlo error, coordinate by coordinate (of 2 x 131;
    # at 4 SE about 0.02 false alarms are expected, so one is allowed, none beyond 5.5 SE)...
    z = (grad_w.mean(0) - grad_l.mean(0)) / np.sqrt((grad_w.var(0) + grad_l.var(0)) / len(keys))
    assert np.sum(np.abs(z) > 4) <= 1 and np.abs(z).max() < 5.5, np.sort(np.abs(z))[-5:]
    # ...and their total variance is lower.
    assert grad_l.var(0).sum() < 0.5 * grad_w.var(0).sum(), (grad_l.var(0).sum(), grad_w.var(0).sum())


def test_local_reparametrization_needs_dense_layers():
    lj = log_joint()
    algo = vi.build_meanfield(lj, optax.adam(1e-2), local_reparametrization=True)
    state = algo.init(jax.random.key(0), {"w": jnp.zeros(D, jnp.float32)})
    with pytest.raises(ValueError, match="flax.linen.Dense"):
        jax.eval_shape(algo.step, jax.random.key(1), state, (X[:10].astype(np.float32), Y[:10].astype(np.float32)))
    with pytest.raises(ValueError, match="mean-field"):
        vi.build(lj, vi.fullrank.family(), optax.adam(1e-2), local_reparametrization=True)
