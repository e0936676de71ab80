"""Posterior (bayesjax/driver/posterior.py): pooled draws over chains, one compile per configuration."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj
from bayesjax.driver.posterior import POOLED_SAMPLE
from tests.helpers import linear_problem
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


def test_a_diverged_map_is_reported_with_its_step_and_left_out():
    """Not only Markov chains: a MAP run whose state turns NaN is flagged, warned about and not sampled."""
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    model = bj.models.mlp([8], num_outputs=2)
    lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=32)
    params = model.init(jax.random.key(0), x[:1])
    with pytest.warns(bj.DivergenceWarning, match="chain 0 diverged at step"):
        post = bj.run(jax.random.key(1), bj.map(lj, optax.sgd(1e6)), params, (x, y), num_steps=20, progress=False)
    (step,) = post.divergences.values()
    log_joint = np.asarray(post.info.log_joint[:, 0])
    assert 1 <= step <= 20 and np.all(np.isfinite(log_joint[: step - 1])) and not np.isfinite(log_joint[step - 1])
    with pytest.raises(bj.DivergenceError, match="every chain diverged"):
        post.sample(jax.random.key(2), 2)
    healthy = bj.run(jax.random.key(1), bj.map(lj, optax.sgd(0.1)), params, (x, y), num_steps=20, progress=False)
    assert healthy.divergences == {}


def test_a_chain_that_explodes_without_reaching_nan_is_flagged():
    """SGLD far beyond its stable step size grows geometrically: finite after 40 steps, but flagged and not sampled."""
    x, y = (a.astype(np.float32) for a in linear_problem.data(64))
    lj = linear_problem.log_joint(64)
    with pytest.warns(bj.DivergenceWarning, match="chain 1 diverged at step 40"):
        post = bj.run(jax.random.key(0), bj.sgld(lj, 0.6), {"w": jnp.zeros(3)}, (x, y), num_steps=40, num_chains=2,
                      progress=False)
    position = np.asarray(post.state.inner.position["w"])
    assert np.all(np.isfinite(position)) and np.abs(position).max() > 1e3 * linear_problem.PRIOR
    assert post.divergences == {0: 40, 1: 40}
    with pytest.raises(bj.DivergenceError, match="every chain diverged"):
        post.sample(jax.random.key(1), 2)
    stable = bj.run(jax.random.key(0), bj.sgld(lj, 0.05), {"w": jnp.zeros(3)}, (x, y), num_steps=40, num_chains=2,
                    progress=False)
    assert stable.divergences == {}


def test_a_diverged_ensemble_member_is_reported_alone_and_left_out():
    """Members are watched one by one: a member started at NaN is flagged as (chain, member); the others are drawn."""
    x, y = (a.astype(np.float32) for a in linear_problem.data(32))

    def init(key):  # about half the members start at NaN
        return {"w": jnp.full(3, jnp.where(jax.random.bernoulli(key), jnp.nan, 0.0))}

    algo = bj.ensemble(bj.map(linear_problem.log_joint(32), optax.sgd(1e-2)), 4, init=init)
    with pytest.warns(bj.DivergenceWarning, match="chain 0 member"):
        post = bj.run(jax.random.key(0), algo, {"w": jnp.zeros(3)}, (x, y), num_steps=5, progress=False)
    members = np.asarray(post.state.members.params["w"][0])
    diverged = {m for m in range(4) if not np.isfinite(members[m]).all()}
    assert 0 < len(diverged) < 4, diverged  # the key gives both kinds
    assert post.divergences == {(0, m): 1 for m in diverged}  # NaN from the first step's info
    with pytest.warns(bj.DivergenceWarning, match="excluded from the samples"):
        draws = np.asarray(post.sample(jax.random.key(4), 8)["w"])
    healthy = [members[m] for m in range(4) if m not in diverged]
    assert all(any(np.array_equal(d, h) for h in healthy) for d in draws)
