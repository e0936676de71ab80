"""The compiled loop (bayesjax/driver/scan.py): minibatches, chain keys, per-chain init, streams, info_every."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj
from tests.helpers.random_walk import random_walk, walk_data


@pytest.fixture(scope="module")
def data():
    return walk_data()


def test_minibatches_cover_each_epoch(data):
    # Info is the batch's mean target; over an epoch the batch means average to the data mean.
    post = bj.run(jax.random.key(0), random_walk(), {"w": jnp.zeros(())}, data,
                  num_steps=8, batch_size=10, num_chains=2, progress=False)
    epoch_means = np.asarray(post.info).reshape(2, 4, 2).mean(1)
    np.testing.assert_allclose(epoch_means, np.mean(data[1]), rtol=1e-5)
    assert not np.allclose(post.info[:, 0], post.info[:, 1])  # chains see different batches


def test_same_key_same_result_and_chains_differ(data):
    algo = random_walk()
    runs = [bj.run(jax.random.key(3), algo, {"w": jnp.zeros(2)}, data, num_steps=10,
                   batch_size=8, num_chains=3, progress=False) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].state.buffer["w"], runs[1].state.buffer["w"])
    final = np.asarray(runs[0].state.inner.position["w"])
    assert not np.allclose(final[0], final[1]) and not np.allclose(final[1], final[2])


def test_chain_randomness_depends_on_its_index_only(data):
    algo = random_walk()
    two = bj.run(jax.random.key(4), algo, {"w": jnp.zeros(2)}, data, num_steps=5, num_chains=2, progress=False)
    four = bj.run(jax.random.key(4), algo, {"w": jnp.zeros(2)}, data, num_steps=5, num_chains=4, progress=False)
    np.testing.assert_array_equal(two.state.inner.position["w"], four.state.inner.position["w"][:2])
    # One chain runs without a chain axis inside the loop, with chain 0's numbers all the same.
    one = bj.run(jax.random.key(4), algo, {"w": jnp.zeros(2)}, data, num_steps=5, batch_size=8, progress=False)
    two = bj.run(jax.random.key(4), algo, {"w": jnp.zeros(2)}, data, num_steps=5, batch_size=8, num_chains=2,
                 progress=False)
    chex.assert_trees_all_equal(one.state, jax.tree.map(lambda a: a[:1], two.state))
    chex.assert_trees_all_equal(one.info, two.info[:, :1])


def test_per_chain_initialization_inside_jit(data):
    model = bj.models.mlp([4], num_outputs=1)
    lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.gaussian(1.0), num_data=40)
    post = bj.run(jax.random.key(0), bj.map(lj, optax.sgd(0.04)), lambda k: model.init(k, data[0][:1]),
                  data, num_steps=3, num_chains=3, progress=False)
    kernels = np.asarray(post.state.params["Dense_0"]["kernel"])
    assert kernels.shape[0] == 3 and not np.allclose(kernels[0], kernels[1])


def test_unshuffled_run_feeds_the_data_in_order_as_a_stream():
    x = np.arange(12, dtype=np.float32)[:, None]
    y = np.arange(12, dtype=np.float32)
    post = bj.run(jax.random.key(0), random_walk(0.0), {"w": jnp.zeros(())}, (x, y), num_steps=8,
                  batch_size=4, num_chains=2, shuffle=False, progress=False)
    # batch t is examples [4t, 4t + 4), wrapping after the third batch; info is the batch's mean label
    np.testing.assert_array_equal(post.info[:, 0], [1.5, 5.5, 9.5, 1.5, 5.5, 9.5, 1.5, 5.5])
    np.testing.assert_array_equal(post.info[:, 0], post.info[:, 1])


def test_info_every_keeps_every_kth_step_and_the_same_chains(data):
    kwargs = dict(num_steps=23, batch_size=8, num_chains=2, burnin=2)
    full = bj.run(jax.random.key(6), random_walk(), {"w": jnp.zeros(2)}, data, progress=False, **kwargs)
    for progress in (False, True):  # one padded scan of 8 blocks; chunks of whole blocks
        thinned = bj.run(jax.random.key(6), random_walk(), {"w": jnp.zeros(2)}, data, progress=progress,
                         info_every=3, **kwargs)
        chex.assert_trees_all_equal(thinned.state, full.state)
        np.testing.assert_array_equal(thinned.info, full.info[2::3])  # steps 3, 6, ..., 21
        none = bj.run(jax.random.key(6), random_walk(), {"w": jnp.zeros(2)}, data, progress=progress,
                      info_every=0, **kwargs)
        chex.assert_trees_all_equal(none.state, full.state)
        assert none.info is None
