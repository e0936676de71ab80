"""The protocol (bayesjax/base.py): declared fields, retargeting, and equal builders sharing one compile."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj
from bayesjax.base import Algorithm, cached_builder, is_markov_chain
from bayesjax.targeting import targeting
from tests.helpers.compiles import count_compiles

MODEL = bj.models.mlp([8], num_outputs=3)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=64).astype(np.int32)
    lj = bj.log_joint(MODEL.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=64)
    return lj, MODEL.init(jax.random.key(0), x[:1]), (x, y)


SGD = optax.sgd(0.064)
BUILDS = {  # every public builder with hashable hyperparameters
    "sgld": lambda lj: bj.sgld(lj, 3.2e-3),
    "sghmc": lambda lj: bj.sghmc(lj, 3.2e-3),
    "cyclical_sgld": lambda lj: bj.cyclical_sgld(lj, 3.2e-3, num_cycles=2, num_steps=20),
    "hmc": lambda lj: bj.hmc(lj, step_size=1e-2, num_integration_steps=2, num_adaptation_steps=2),
    "nuts": lambda lj: bj.nuts(lj, step_size=1e-2, max_num_doublings=2),
    "map": lambda lj: bj.map(lj, SGD),
    "swa": lambda lj: bj.swa(lj, SGD, start_step=2),
    "swag": lambda lj: bj.swag(lj, SGD, start_step=2),
    "meanfield_vi": lambda lj: bj.meanfield_vi(lj, SGD),
    "fullrank_vi": lambda lj: bj.fullrank_vi(lj, SGD),
    "lowrank_vi": lambda lj: bj.lowrank_vi(lj, SGD),
    "ensemble": lambda lj: bj.ensemble(bj.map(lj, SGD), 2, anchored=True),
    "multiswag": lambda lj: bj.multiswag(lj, SGD, num_members=2, anchored=True),
    "online": lambda lj: bj.online(lj, "laplace_diag"),
}


@pytest.mark.parametrize("name", BUILDS)
def test_equal_builds_are_one_object(problem, name):
    lj = problem[0]
    assert BUILDS[name](lj) is BUILDS[name](lj)


@pytest.mark.parametrize("build, batch_size", [(BUILDS["sgld"], 16), (BUILDS["hmc"], None)], ids=["sgld", "hmc"])
def test_a_rebuilt_sampler_runs_without_compiling(problem, build, batch_size):
    lj, params, data = problem
    kwargs = dict(num_steps=4, batch_size=batch_size, num_chains=2, progress=False)
    bj.run(jax.random.key(0), build(lj), params, data, **kwargs)
    with count_compiles() as compiles:
        post = bj.run(jax.random.key(1), build(lj), params, data, **kwargs)
        jax.block_until_ready(post.state)
    assert compiles == []


def test_unhashable_hyperparameters_build_anew(problem):
    lj = problem[0]
    step_size = jnp.asarray(6.4e-3)
    first, second = bj.sgld(lj, step_size), bj.sgld(lj, step_size)
    assert first is not second and first.log_joint is lj


def test_cached_builder_keys_on_every_argument():
    calls = []

    @cached_builder
    def build(a, b=1):
        calls.append((a, b))
        return Algorithm(None, None, None)

    assert build(1, b=2) is build(1, b=2)
    assert build(1, b=3) is not build(1, b=2)
    assert build([1]) is not build([1])
    assert calls == [(1, 2), (1, 3), ([1], 1), ([1], 1)]


def test_builders_declare_their_target_and_retarget_to_another(problem):
    lj, params, (x, y) = problem
    algo = bj.sgld(lj, 0.064)
    assert algo.log_joint is lj and algo.markov_chain is True and algo.num_chains is None
    cold = bj.log_joint(lj.apply, lj.prior, lj.likelihood, num_data=64, temperature=0.1)
    moved = algo.retarget(cold)
    assert moved.log_joint is cold and moved.markov_chain is True
    key, state, batch = jax.random.key(2), algo.init(jax.random.key(0), params), (x[:8], y[:8])
    hot_state, _ = jax.jit(algo.step)(key, state, batch)
    cold_state, _ = jax.jit(moved.step)(key, state, batch)
    expected, _ = jax.jit(bj.sgld(cold, 0.064).step)(key, state, batch)
    jax.tree.map(np.testing.assert_array_equal, cold_state, expected)
    assert not np.allclose(hot_state.position["Dense_0"]["kernel"], cold_state.position["Dense_0"]["kernel"])


def test_markov_chain_is_declared_or_inferred_from_the_state():
    class Chain(tuple):
        position = 0

    hand_made = Algorithm(None, None, None)
    assert is_markov_chain(hand_made, Chain()) and not is_markov_chain(hand_made, ())
    assert not is_markov_chain(hand_made._replace(markov_chain=False), Chain())
    assert is_markov_chain(hand_made._replace(markov_chain=True), ())


def test_targeting_binds_the_log_joint_keyword():
    def step(key, state, batch, *, log_joint):
        return log_joint, None

    algo = targeting("target", None, step, None)
    assert algo.step(None, None, None)[0] == "target"
    assert algo.retarget("other").step(None, None, None)[0] == "other"
    assert Algorithm(1, 2, 3)[:3] == (1, 2, 3)  # the three positional fields stay first
