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


class DensityInfo(NamedTuple):
    log_density: jax.Array


def test_the_log_density_is_watched_where_every_info_is_kept(data):
    walk = random_walk(0.0)  # finite positions, but a log density of -inf
    algo = walk._replace(step=lambda key, state, batch: (walk.step(key, state, batch)[0], DensityInfo(-jnp.inf)))

    def run(**options):
        return bj.run(jax.random.key(0), algo, {"w": jnp.zeros(())}, data, num_steps=4, batch_size=10,
                      progress=False, **options)

    with pytest.warns(bj.DivergenceWarning, match="chain 0 diverged at step 1"):
        assert run().divergences == {0: 1}
    # Without per-step infos the log density is not computed, and the positions are finite.
    assert run(info_every=0).divergences == {} and run(info_every=2).divergences == {}


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


def test_one_compile_per_configuration(data):
    traced = random_walk()
    algo = traced._replace(step=chex.assert_max_traces(traced.step, n=1))
    for seed in range(3):
        bj.run(jax.random.key(seed), algo, {"w": jnp.zeros(2)}, data, num_steps=6, batch_size=8,
               num_chains=2, progress=True)


def test_drawing_from_runs_of_one_configuration_compiles_once(data):
    twins = importlib.import_module("bayesjax.run")._pooled_sample
    algo = random_walk()
    for seed in range(3):
        post = bj.run(jax.random.key(seed), algo, {"w": jnp.zeros(2)}, data, num_steps=6, batch_size=8,
                      num_chains=2, progress=False)
        post.sample(jax.random.key(seed), 4)
        if seed == 0:
            compiled = [twin._cache_size() for twin in twins]
    assert [twin._cache_size() for twin in twins] == compiled


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


def test_the_default_sample_buffer_is_capped_with_a_warning(data, monkeypatch):
    monkeypatch.setattr(importlib.import_module("bayesjax.run"), "DEFAULT_BUFFER_BYTES", 1000)
    with pytest.warns(UserWarning, match="keeps the last 62 per chain"):  # 1000 bytes / (2 chains x 8 bytes)
        post = bj.run(jax.random.key(0), random_walk(0.0), {"w": jnp.zeros(2)}, data, num_steps=300,
                      num_chains=2, progress=False)
    np.testing.assert_array_equal(np.sort(np.asarray(post.state.buffer["w"][0, :, 0])), np.arange(239, 301))


def test_unshuffled_run_feeds_the_data_in_order_as_a_stream():
    x = np.arange(12, dtype=np.float32)[:, None]
    y = np.arange(12, dtype=np.float32)
    post = bj.run(jax.random.key(0), random_walk(0.0), {"w": jnp.zeros(())}, (x, y), num_steps=8,
                  batch_size=4, num_chains=2, shuffle=False, progress=False)
    # batch t is examples [4t, 4t + 4), wrapping after the third batch; info is the batch's mean label
    np.testing.assert_array_equal(post.info[:, 0], [1.5, 5.5, 9.5, 1.5, 5.5, 9.5, 1.5, 5.5])
    np.testing.assert_array_equal(post.info[:, 0], post.info[:, 1])


def test_chunked_runs_equal_one_scan(data):
    # A progress bar cuts the run into jitted chunks (here 7 steps -> 7 chunks of 1, and 23 -> 2-step chunks
    # with one padded step); the numbers are those of one scan.
    for num_steps in (7, 23):
        kwargs = dict(num_steps=num_steps, batch_size=8, num_chains=2, burnin=2)
        plain = bj.run(jax.random.key(3), random_walk(), {"w": jnp.zeros(2)}, data, progress=False, **kwargs)
        chunked = bj.run(jax.random.key(3), random_walk(), {"w": jnp.zeros(2)}, data, progress=True, **kwargs)
        chex.assert_trees_all_equal(plain.state, chunked.state)
        chex.assert_trees_all_equal(plain.info, chunked.info)


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


@pytest.mark.parametrize("info_every", [-1, 24])
def test_info_every_out_of_range_is_refused(data, info_every):
    with pytest.raises(ValueError, match="info_every"):
        bj.run(jax.random.key(0), random_walk(), {"w": jnp.zeros(2)}, data, num_steps=23, progress=False,
               info_every=info_every)


class Crash(Exception):
    pass


@pytest.mark.parametrize("info_every", [1, 4, 0])
def test_a_crashed_run_resumes_from_its_checkpoint(data, tmp_path, monkeypatch, info_every):
    run_module = importlib.import_module("bayesjax.run")
    kwargs = dict(num_steps=40, batch_size=8, num_chains=3, burnin=10, thin=2, progress=False,
                  checkpoint=tmp_path / "run.npz", checkpoint_every=0.0, info_every=info_every)
    advance, calls = run_module._advance, []

    def crash_after_five_chunks(*args):
        calls.append(args[-1])
        if len(calls) > 5:
            raise Crash
        return advance(*args)

    monkeypatch.setattr(run_module, "_advance", crash_after_five_chunks)
    with pytest.raises(Crash):
        bj.run(jax.random.key(4), random_walk(), {"w": jnp.zeros(2)}, data, **kwargs)
    monkeypatch.setattr(run_module, "_advance", advance)
    resumed = bj.run(jax.random.key(4), random_walk(), {"w": jnp.zeros(2)}, data, **kwargs)
    uninterrupted = bj.run(jax.random.key(4), random_walk(), {"w": jnp.zeros(2)}, data,
                           **(kwargs | {"checkpoint": None}))
    chex.assert_trees_all_equal(resumed.state, uninterrupted.state)
    chex.assert_trees_all_equal(resumed.info, uninterrupted.info)
    # A finished run's snapshot is reused as is; other settings or a damaged file are refused.
    again = bj.run(jax.random.key(4), random_walk(), {"w": jnp.zeros(2)}, data, **kwargs)
    chex.assert_trees_all_equal(again.state, uninterrupted.state)
    with pytest.raises(ValueError, match="different run"):
        bj.run(jax.random.key(5), random_walk(), {"w": jnp.zeros(2)}, data, **kwargs)
    (tmp_path / "run.npz").write_bytes(b"torn")
    with pytest.raises(ValueError, match="cannot be read"):
        bj.run(jax.random.key(4), random_walk(), {"w": jnp.zeros(2)}, data, **kwargs)
