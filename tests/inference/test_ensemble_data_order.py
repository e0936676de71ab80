"""Ensemble members read their own minibatches under bj.run (Lakshminarayanan et al.'s independent shuffles)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj

N, B, MEMBERS, CHAINS = 12, 4, 3, 2
STEPS_PER_EPOCH = N // B


def recorder() -> bj.Algorithm:
    """A member that counts the examples it reads (y is the example's index) and keeps its first batch."""

    def init(key, params):
        return {"counts": jnp.zeros(N, jnp.int32), "first": -jnp.ones(B, jnp.int32), "t": jnp.zeros((), jnp.int32)}

    def step(key, state, batch):
        index = batch[1].astype(jnp.int32)
        first = jnp.where(state["t"] == 0, index, state["first"])
        return {"counts": state["counts"].at[index].add(1), "first": first, "t": state["t"] + 1}, {}

    return bj.Algorithm(init, step, lambda key, state, n: jnp.zeros((n, 1)))


DATA = (jnp.arange(N, dtype=jnp.float32)[:, None], jnp.arange(N, dtype=jnp.float32))


def run(num_steps, own_data_order=True, **kwargs):
    algo = bj.ensemble(recorder(), MEMBERS, init=lambda k: jnp.zeros(1), own_data_order=own_data_order)
    params = None if "init_state" in kwargs else jnp.zeros(1)
    return bj.run(jax.random.key(0), algo, params, DATA, num_steps=num_steps, batch_size=B, num_chains=CHAINS,
                  progress=False, **kwargs)


def test_every_member_reads_every_example_once_per_epoch_in_its_own_order():
    state = run(2 * STEPS_PER_EPOCH).state.members
    np.testing.assert_array_equal(state["counts"], 2)
    firsts = np.asarray(state["first"]).reshape(CHAINS * MEMBERS, B)
    assert len({tuple(f) for f in firsts}) == CHAINS * MEMBERS, firsts


def test_shared_data_order_gives_the_members_one_batch():
    firsts = np.asarray(run(STEPS_PER_EPOCH, own_data_order=False).state.members["first"])
    for chain in firsts:
        assert (chain == chain[0]).all(), chain
    assert not (firsts[0] == firsts[1]).all()  # the chains still have their own orders


def test_a_continued_run_draws_the_orders_of_one_longer_run():
    first = run(STEPS_PER_EPOCH + 1)
    continued = run(STEPS_PER_EPOCH, init_state=first.state, start_step=first.steps)
    whole = run(2 * STEPS_PER_EPOCH + 1)
    jax.tree.map(np.testing.assert_array_equal, continued.state.members, whole.state.members)


def test_members_from_one_start_are_refused():
    lj = bj.log_joint(bj.models.mlp([4], 2).apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=N)
    for build in (lambda: bj.ensemble(bj.map(lj, optax.adam(1e-3)), 4),
                  lambda: bj.multiswag(lj, optax.sgd(1e-2), num_members=2)):
        with pytest.raises(ValueError, match="init="):
            build()
    bj.ensemble(bj.map(lj, optax.adam(1e-3)), 4, anchored=True)  # members start at their own prior draws
