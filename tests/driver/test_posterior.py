"""Posterior (bayesjax/driver/posterior.py): pooled draws over chains, one compile per configuration."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from bayesjax.driver.posterior import POOLED_SAMPLE
from tests.helpers.random_walk import random_walk, walk_data


@pytest.fixture(scope="module")
def data():
    return walk_data()


def test_drawing_from_runs_of_one_configuration_compiles_once(data):
    twins = POOLED_SAMPLE
    algo = random_walk()
    for seed in range(3):
        post = bj.run(jax.random.key(seed), algo, {"w": jnp.zeros(2)}, data, num_steps=6, batch_size=8,
                      num_chains=2, progress=False)
        post.sample(jax.random.key(seed), 4)
        if seed == 0:
            compiled = [twin._cache_size() for twin in twins]
    assert [twin._cache_size() for twin in twins] == compiled


def test_pooled_samples_spread_over_chains(data):
    post = bj.run(jax.random.key(5), random_walk(), {"w": jnp.zeros(())}, data, num_steps=6, num_chains=4,
                  num_samples=1, progress=False)
    draws = np.sort(np.asarray(post.sample(jax.random.key(6), 4)["w"]))
    np.testing.assert_array_equal(draws, np.sort(np.asarray(post.state.buffer["w"][:, 0])))
