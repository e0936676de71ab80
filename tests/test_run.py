"""bj.run (bayesjax/run.py): one compile per configuration, argument checks, the buffer cap, an exact MAP."""
import importlib

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


def test_the_default_sample_buffer_is_capped_with_a_warning(data, monkeypatch):
    monkeypatch.setattr(importlib.import_module("bayesjax.run"), "DEFAULT_BUFFER_BYTES", 1000)
    with pytest.warns(UserWarning, match="keeps the last 62 per chain"):  # 1000 bytes / (2 chains x 8 bytes)
        post = bj.run(jax.random.key(0), random_walk(0.0), {"w": jnp.zeros(2)}, data, num_steps=300,
                      num_chains=2, progress=False)
    np.testing.assert_array_equal(np.sort(np.asarray(post.state.buffer["w"][0, :, 0])), np.arange(239, 301))


@pytest.mark.parametrize("info_every", [-1, 24])
def test_info_every_out_of_range_is_refused(data, info_every):
    with pytest.raises(ValueError, match="info_every"):
        bj.run(jax.random.key(0), random_walk(), {"w": jnp.zeros(2)}, data, num_steps=23, progress=False,
               info_every=info_every)


def test_burnin_thin_or_num_samples_for_a_state_that_is_not_a_chain_is_an_error(data):
    # A MAP state (no position, not declared a chain) has no visited positions to burn in or thin.
    x, y = data
    lj = bj.log_joint(lambda p, x: x @ p["w"][:, None], bj.priors.gaussian(1.0), bj.likelihoods.gaussian(1.0),
                      num_data=len(y))
    for kwargs in ({"burnin": 2}, {"thin": 2}, {"num_samples": 3}):  # num_samples was once silently ignored
        with pytest.raises(ValueError, match="apply to Markov chains"):
            bj.run(jax.random.key(0), bj.map(lj, optax.sgd(0.1)), {"w": jnp.zeros(2)}, data, num_steps=6,
                   progress=False, **kwargs)
