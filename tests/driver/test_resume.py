"""Continuing runs (bayesjax/driver/resume.py): from a Posterior's state, and a checkpointed run extended to more steps.

Both equal one longer run bitwise: step t of chain k draws from (key, k, t), its minibatches from (key, k, epoch).
"""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj
from bayesjax.buffer import BufferedState
from bayesjax.driver.checkpoint import CheckpointMismatch
from bayesjax.driver.resume import grow_buffer
from tests.helpers.random_walk import random_walk, walk_data
from tests.helpers.tiny_classifier import MODEL, tiny_classifier



@pytest.fixture(scope="module")
def problem():
    return tiny_classifier()


def joined(a, b):
    return jax.tree.map(lambda u, v: jnp.concatenate([u, v]), a, b)


ALGORITHMS = {"sgld": lambda lj: (bj.sgld(lj, 0.1), dict(burnin=30, thin=4)),
              "map": lambda lj: (bj.map(lj, optax.adam(1e-2)), {})}
KWARGS = dict(batch_size=8, num_chains=2)


@pytest.fixture(scope="module")
def first_runs(problem):
    """52 steps of each method (5 batches an epoch: the continuation starts mid-epoch), in chunks of 2."""
    lj, params, data = problem
    runs = {}
    for method, build in ALGORITHMS.items():
        algo, kwargs = build(lj)
        runs[method] = bj.run(jax.random.key(1), algo, params, data, num_steps=52, progress=True, **KWARGS, **kwargs)
    return runs


@pytest.mark.parametrize("method", ["sgld", "map"])
def test_a_run_continued_from_its_state_equals_one_longer_run(problem, first_runs, method):
    lj, params, data = problem
    algo, kwargs = ALGORITHMS[method](lj)
    longer = bj.run(jax.random.key(1), algo, params, data, num_steps=104, progress=False, **KWARGS, **kwargs)
    first = first_runs[method]
    start_step = None if method == "sgld" else first.steps  # a sample buffer counts its steps
    more = bj.run(jax.random.key(1), algo, None, data, num_steps=52, init_state=first.state, start_step=start_step,
                  progress=True, **KWARGS, **kwargs)  # the chunks of the first run: no new compile
    chex.assert_trees_all_equal(more.state, longer.state)  # the sample buffer grown from 6 to 19 slots included
    chex.assert_trees_all_equal(joined(first.info, more.info), longer.info)
    assert more.steps == longer.steps == 104
    np.testing.assert_array_equal(more.sample(jax.random.key(2), 8)["Dense_0"]["kernel"],
                                  longer.sample(jax.random.key(2), 8)["Dense_0"]["kernel"])


def test_a_continuation_is_checked_before_compiling(problem, first_runs):
    lj, params, data = problem
    more = dict(init_state=first_runs["map"].state, progress=False, **KWARGS)
    algo = bj.map(lj, optax.adam(1e-2))
    with pytest.raises(ValueError, match="start_step"):  # a MAP state does not count its steps
        bj.run(jax.random.key(1), algo, None, data, num_steps=2, **more)
    with pytest.raises(ValueError, match="params=None"):
        bj.run(jax.random.key(1), algo, params, data, num_steps=2, start_step=52, **more)
    with pytest.raises(ValueError, match=r"num_chains=3"):
        bj.run(jax.random.key(1), algo, None, data, num_steps=2, start_step=52, **(more | {"num_chains": 3}))
    with pytest.raises(ValueError, match="not a state of this algorithm"):
        bj.run(jax.random.key(1), bj.map(lj, optax.sgd(0.1)), None, data, num_steps=2, start_step=52, **more)
    chain = first_runs["sgld"].state
    with pytest.raises(ValueError, match="start_step=51 but init_state has taken 52 steps"):
        bj.run(jax.random.key(1), bj.sgld(lj, 0.1), None, data, num_steps=2, burnin=30, thin=4, init_state=chain,
               start_step=51, **KWARGS)
    with pytest.raises(ValueError, match="at least 6"):
        bj.run(jax.random.key(1), bj.sgld(lj, 0.1), None, data, num_steps=2, burnin=30, thin=4, init_state=chain,
               num_samples=5, **KWARGS)


def test_a_wrapped_sample_buffer_cannot_grow():
    slots = {"w": jnp.arange(6.0).reshape(2, 3)}  # 2 chains x 3 slots
    state = BufferedState(None, slots, jnp.asarray([2, 3]), jnp.asarray([9, 9]), jnp.asarray([-1, -1]))
    grown = grow_buffer(state, 5)
    np.testing.assert_array_equal(grown.buffer["w"], [[0, 1, 2, 0, 0], [3, 4, 5, 0, 0]])
    with pytest.raises(ValueError, match="wrapped around.*num_samples=3"):
        grow_buffer(state._replace(num_collected=jnp.asarray([2, 4])), 5)


def test_a_checkpointed_run_extends_to_more_steps(tmp_path):
    data = walk_data()
    kwargs = dict(batch_size=8, num_chains=2, burnin=3, thin=2, progress=False, checkpoint=tmp_path / "run.npz",
                  info_every=2)
    short = bj.run(jax.random.key(4), random_walk(), {"w": jnp.zeros(2)}, data, num_steps=20, **kwargs)
    extended = bj.run(jax.random.key(4), random_walk(), {"w": jnp.zeros(2)}, data, num_steps=30, **kwargs)
    plain = bj.run(jax.random.key(4), random_walk(), {"w": jnp.zeros(2)}, data, num_steps=30,
                   **(kwargs | {"checkpoint": None, "progress": True}))  # the same chunks: no new compile
    chex.assert_trees_all_equal(extended.state, plain.state)
    chex.assert_trees_all_equal(extended.info, plain.info)
    np.testing.assert_array_equal(extended.info[:10], short.info)
    with pytest.raises(CheckpointMismatch, match="at step 30, past num_steps=20"):
        bj.run(jax.random.key(4), random_walk(), {"w": jnp.zeros(2)}, data, num_steps=20, **kwargs)
    with pytest.raises(CheckpointMismatch, match="differs in: thin"):
        bj.run(jax.random.key(4), random_walk(), {"w": jnp.zeros(2)}, data, num_steps=40, **(kwargs | {"thin": 3}))


def test_a_finished_snapshot_is_refused_when_the_target_or_a_hyperparameter_changed(problem, tmp_path):
    lj, params, data = problem
    kwargs = dict(num_steps=6, batch_size=8, progress=False, checkpoint=tmp_path / "run.npz")
    bj.run(jax.random.key(1), bj.sgld(lj, 0.1), params, data, burnin=2, **kwargs)
    colder = bj.log_joint(MODEL.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=40,
                          temperature=0.5)
    for algo, what in [(bj.sgld(colder, 0.1), "log_joint.temperature"), (bj.sgld(lj, 0.05), "algorithm"),
                       (bj.sgld(lj, 0.1, preconditioned=True), "algorithm")]:
        with pytest.raises(CheckpointMismatch, match=f"differs in: .*{what}"):
            bj.run(jax.random.key(1), algo, params, data, burnin=2, **kwargs)
    bj.run(jax.random.key(1), bj.sgld(lj, 0.1), params, data, burnin=2, **kwargs)  # the same run is reused


def test_an_unwritable_checkpoint_is_refused_before_compiling(problem, tmp_path):
    lj, params, data = problem
    blocker = tmp_path / "file"
    blocker.write_text("")
    compiled = []

    def step(*args, **kw):
        compiled.append(1)
        return algo.step(*args, **kw)

    algo = bj.map(lj, optax.adam(1e-2))
    with pytest.raises(ValueError, match="is a file"):
        bj.run(jax.random.key(1), algo._replace(step=step), params, data, num_steps=2, progress=False,
               checkpoint=blocker / "run.npz")
    assert not compiled
