"""bj.vmap_chains: many chains of one method as one Algorithm, for loops a user writes."""
import functools
import types

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from tests.helpers import linear_problem
from tests.helpers.linear_problem import NOISE, PRIOR, D
from tests.helpers.stats import assert_gaussian_moments, chain_draws

N, CHAINS, STEPS, BURNIN = 50, 4, 1500, 300
data = functools.partial(linear_problem.data, N)
log_joint = functools.partial(linear_problem.log_joint, N)


def hmc_chains(capacity=STEPS - BURNIN):
    return bj.vmap_chains(bj.with_sample_buffer(bj.hmc(log_joint(), step_size=0.03, num_integration_steps=10),
                                                capacity, burnin=BURNIN), CHAINS)


def loop(algo, key, batch, num_steps):
    """The loop a user writes: init, then a scan of the wrapped step."""
    state = algo.init(jax.random.fold_in(key, 0), {"w": jnp.zeros(D)})

    def body(state, t):
        return algo.step(jax.random.fold_in(key, t + 1), state, batch)

    return jax.lax.scan(body, state, jnp.arange(num_steps))


def test_a_users_loop_over_vmapped_chains_recovers_the_exact_posterior():
    x, y = data()
    with jax.enable_x64(True):
        batch = (jnp.asarray(x), jnp.asarray(y))
        state, info = jax.jit(loop, static_argnums=(0, 3))(hmc_chains(), jax.random.key(0), batch, STEPS)
        assert info.acceptance_rate.shape == (STEPS, CHAINS)
        mean, cov = bj.linear.posterior(batch[0], batch[1], NOISE, PRIOR)
        assert_gaussian_moments(chain_draws(types.SimpleNamespace(state=state)), mean, cov)
        samples = hmc_chains().sample(jax.random.key(1), state, 40)["w"]
        assert samples.shape == (40, D)
        # Pooled: the 40 draws come from every chain's buffer, 10 from each.
        buffers = np.asarray(state.buffer["w"])
        owners = [int(np.argwhere((buffers == np.asarray(s)).all(-1))[0, 0]) for s in samples]
        assert np.bincount(owners, minlength=CHAINS).tolist() == [10] * CHAINS


def test_chain_randomness_depends_on_its_index_alone():
    x, y = data()
    batch = (jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
    sgld = bj.sgld(log_joint(), 5e-3)
    two, _ = loop(bj.vmap_chains(sgld, 2), jax.random.key(3), batch, 20)
    four, _ = loop(bj.vmap_chains(sgld, 4), jax.random.key(3), batch, 20)
    np.testing.assert_array_equal(two.position["w"], four.position["w"][:2])
    assert not np.allclose(four.position["w"][0], four.position["w"][1])


def test_one_trace_one_object_and_bad_counts_refused():
    x, y = data()
    batch = (jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
    sgld = bj.sgld(log_joint(), 5e-3)
    algo = bj.vmap_chains(sgld, 3)
    assert bj.vmap_chains(sgld, 3) is algo  # cached: a static jit argument compiles once
    step = jax.jit(chex.assert_max_traces(algo.step, n=1))
    state = algo.init(jax.random.key(0), {"w": jnp.zeros(D, jnp.float32)})
    for t in range(3):
        new_state, _ = step(jax.random.key(t), state, batch)
        chex.assert_trees_all_equal_shapes_and_dtypes(new_state, state)
        state = new_state
    assert state.position["w"].dtype == jnp.float32
    with pytest.raises(ValueError, match="num_chains"):
        bj.vmap_chains(sgld, 0)


def test_bj_run_refuses_what_it_would_vmap_twice():
    x, y = data()
    with pytest.raises(ValueError, match="num_chains=3"):
        bj.run(jax.random.key(0), bj.vmap_chains(bj.sgld(log_joint(), 5e-3), 3), {"w": jnp.zeros(D)}, (x, y),
               num_steps=5, progress=False)
