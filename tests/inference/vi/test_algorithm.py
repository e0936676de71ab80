"""The VI method behind the Algorithm protocol: sampling from q, traced hyperparameters, input checks."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bayesjax.inference import vi
from tests.helpers.linear_problem import D
from tests.helpers.vi_problem import X, Y, log_joint

SAMPLE_FAMILIES = {"meanfield": vi.meanfield.family(0.5), "lowrank": vi.lowrank.family(2, 0.5),
                   "fullrank": vi.fullrank.family(0.5)}


@pytest.mark.parametrize("family", sorted(SAMPLE_FAMILIES))
def test_sample_draws_from_q(family):
    fam = SAMPLE_FAMILIES[family]
    params = {"a": jnp.ones(2), "b": jnp.ones((2, 2))}  # two leaves: draws are assembled leaf by leaf
    algo = vi.build(log_joint(), fam, optax.sgd(0.0))

    @jax.jit
    def draw(key):
        state = algo.init(jax.random.key(0), params)
        draws = algo.sample(key, state, 20_000)
        flat = jax.vmap(lambda d: jax.flatten_util.ravel_pytree(d)[0])(draws)
        return flat, jax.flatten_util.ravel_pytree(fam.variance(state))[0]

    flat, variance = (np.asarray(a, np.float64) for a in draw(jax.random.key(1)))
    assert np.all(np.abs(flat.mean(0) - 1.0) < 4 * np.sqrt(variance / len(flat)))
    assert np.all(np.abs(flat.var(0) - variance) < 4 * variance * math.sqrt(2 / len(flat)))
    again, _ = draw(jax.random.key(1))
    np.testing.assert_array_equal(flat, again)  # the same key reproduces the draws
    assert np.all(flat[1:] != flat[:-1])  # and consecutive draws differ everywhere


def test_hyperparameters_may_be_traced():
    @jax.jit
    @jax.vmap
    def elbo_after_one_step(temperature, init_scale):
        algo = vi.build_meanfield(log_joint(temperature), optax.adam(1e-2), init_scale=init_scale)
        state = algo.init(jax.random.key(0), {"w": jnp.zeros(D)})
        return algo.step(jax.random.key(1), state, (X.astype(np.float32), Y.astype(np.float32)))[1].elbo

    elbos = elbo_after_one_step(jnp.asarray([1.0, 0.1]), jnp.asarray([0.1, 0.2]))
    assert elbos.shape == (2,) and np.all(np.isfinite(elbos))


@pytest.mark.parametrize("kwargs,match", [
    ({"init_scale": 0.0}, "init_scale"),
    ({"num_mc_samples": 0}, "num_mc_samples"),
    ({"parametrization": "exp"}, "parametrization"),
    ({"kl_weight": -1.0}, "kl_weight"),
])
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vi.build_meanfield(log_joint(), optax.adam(1e-2), **kwargs)


def test_bad_rank():
    with pytest.raises(ValueError, match="rank"):
        vi.build_lowrank(log_joint(), optax.adam(1e-2), rank=0)
