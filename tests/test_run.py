import importlib
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj


class WalkState(NamedTuple):
    position: dict


def random_walk(scale=1.0):
    """A toy Markov chain: position <- position + scale * noise + 1 (a step counter when scale=0)."""

    def init(key, params):
        return WalkState(params)

    def step(key, state, batch):
        noise = jax.random.normal(key, state.position["w"].shape)
        return WalkState({"w": state.position["w"] + 1.0 + scale * noise}), jnp.mean(batch[1])

    def sample(key, state, n):
        return bj.base.repeat_params(state.position, n)

    return bj.Algorithm(init, step, sample)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2)).astype(np.float32)
    return x, (x @ np.array([2.0, -1.0])).astype(np.float32)


def test_burnin_and_thinning_fill_the_buffer(data):
    post = bj.run(jax.random.key(0), random_walk(0.0), {"w": jnp.zeros(())}, data,
                  num_steps=20, batch_size=10, burnin=5, thin=3, progress=False)
    kept = np.sort(np.asarray(post.state.buffer["w"][0]))
    np.testing.assert_array_equal(kept, [8, 11, 14, 17, 20])  # steps 8, 11, ... after burn-in 5
    draws = post.sample(jax.random.key(1), 5)["w"]
    np.testing.assert_array_equal(np.sort(np.asarray(draws)), kept)  # without replacement


def test_buffer_capacity_keeps_the_latest(data):
    post = bj.run(jax.random.key(0), random_walk(0.0), {"w": jnp.zeros(())}, data,
                  num_steps=20, batch_size=10, num_samples=4, progress=False)
    np.testing.assert_array_equal(np.sort(np.asarray(post.state.buffer["w"][0])), [17, 18, 19, 20])


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


def test_one_compile_per_configuration(data):
    traced = random_walk()
    algo = traced._replace(step=chex.assert_max_traces(traced.step, n=1))
    for seed in range(3):
        bj.run(jax.random.key(seed), algo, {"w": jnp.zeros(2)}, data, num_steps=6, batch_size=8,
               num_chains=2, progress=True)


def test_map_recovers_the_linear_posterior_mean():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.normal(size=100)
    with jax.enable_x64(True):
        apply = lambda p, x: x @ p["w"][:, None]
        lj = bj.log_joint(apply, bj.priors.gaussian(1.5), bj.likelihoods.gaussian(0.3), num_data=100)
        post = bj.run(jax.random.key(0), bj.map(lj, optax.adam(0.05)), {"w": jnp.zeros(3)}, (x, y),
                      num_steps=3000, progress=False)
        mean, _ = bj.linear.posterior(jnp.asarray(x), jnp.asarray(y), 0.3, 1.5)
        np.testing.assert_allclose(post.state.params["w"][0], mean, rtol=1e-6, atol=1e-8)
        # A cold posterior (posterior tempering) keeps the mode.
        cold = bj.log_joint(apply, bj.priors.gaussian(1.5), bj.likelihoods.gaussian(0.3), num_data=100,
                            temperature=0.1)
        post = bj.run(jax.random.key(0), bj.map(cold, optax.adam(0.05)), {"w": jnp.zeros(3)}, (x, y),
                      num_steps=3000, progress=False)
        np.testing.assert_allclose(post.state.params["w"][0], mean, rtol=1e-6, atol=1e-8)


def test_per_chain_initialization_inside_jit(data):
    model = bj.models.mlp([4], num_outputs=1)
    lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.gaussian(1.0), num_data=40)
    post = bj.run(jax.random.key(0), bj.map(lj, optax.sgd(1e-3)), lambda k: model.init(k, data[0][:1]),
                  data, num_steps=3, num_chains=3, progress=False)
    kernels = np.asarray(post.state.params["Dense_0"]["kernel"])
    assert kernels.shape[0] == 3 and not np.allclose(kernels[0], kernels[1])


def test_pooled_samples_spread_over_chains(data):
    post = bj.run(jax.random.key(5), random_walk(), {"w": jnp.zeros(())}, data, num_steps=6, num_chains=4,
                  num_samples=1, progress=False)
    draws = np.sort(np.asarray(post.sample(jax.random.key(6), 4)["w"]))
    np.testing.assert_array_equal(draws, np.sort(np.asarray(post.state.buffer["w"][:, 0])))


def test_a_huge_sample_buffer_is_announced(data, monkeypatch):
    monkeypatch.setattr(importlib.import_module("bayesjax.run"), "BUFFER_WARNING_BYTES", 1000)
    with pytest.warns(UserWarning, match="sample buffer holds 300 positions x 2 chains"):
        bj.run(jax.random.key(0), random_walk(), {"w": jnp.zeros(2)}, data, num_steps=300, num_chains=2,
               progress=False)


def test_unshuffled_run_feeds_the_data_in_order_as_a_stream():
    x = np.arange(12, dtype=np.float32)[:, None]
    y = np.arange(12, dtype=np.float32)
    post = bj.run(jax.random.key(0), random_walk(0.0), {"w": jnp.zeros(())}, (x, y), num_steps=8,
                  batch_size=4, num_chains=2, shuffle=False, progress=False)
    # batch t is examples [4t, 4t + 4), wrapping after the third batch; info is the batch's mean label
    np.testing.assert_array_equal(post.info[:, 0], [1.5, 5.5, 9.5, 1.5, 5.5, 9.5, 1.5, 5.5])
    np.testing.assert_array_equal(post.info[:, 0], post.info[:, 1])
