"""The sample buffer (bayesjax/buffer.py): burn-in, thinning, capacity, divergence, as bj.run uses it."""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from tests.helpers.random_walk import random_walk, walk_data


@pytest.fixture(scope="module")
def data():
    return walk_data()


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
