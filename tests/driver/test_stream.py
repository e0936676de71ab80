"""Data that streams (bayesjax/driver/stream.py): an iterable of batches equals the in-memory run, and is checked."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from tests.helpers.random_walk import random_walk, walk_data
from tests.helpers.tiny_classifier import MODEL, tiny_classifier

BATCH = 8


@pytest.fixture(scope="module")
def problem():
    return tiny_classifier()


def slices(x, y, num_steps, as_dict=False):
    """The batches of an unshuffled in-memory run: step t reads examples [8 (t mod 5), 8 (t mod 5) + 8)."""
    for t in range(num_steps):
        rows = slice(BATCH * (t % (len(x) // BATCH)), BATCH * (t % (len(x) // BATCH)) + BATCH)
        yield {"x": x[rows], "y": y[rows]} if as_dict else (x[rows], y[rows])


def test_a_stream_of_the_same_batches_equals_the_in_memory_run_bitwise(problem):
    lj, params, (x, y) = problem
    kwargs = dict(num_steps=13, num_chains=2, burnin=3, thin=2)
    algo = bj.sgld(lj, 0.1)
    in_memory = bj.run(jax.random.key(1), algo, params, (x, y), batch_size=BATCH, shuffle=False, progress=False,
                       **kwargs)
    # One scan over all 13 stacked batches, and 13 chunks of one (a progress bar) with dict batches.
    for as_dict, progress in ((False, False), (True, True)):
        streamed = bj.run(jax.random.key(1), algo, params, slices(x, y, 13, as_dict), progress=progress, **kwargs)
        chex.assert_trees_all_equal(streamed.state, in_memory.state)
        chex.assert_trees_all_equal(streamed.info, in_memory.info)


def test_a_bad_first_batch_is_refused_before_compiling(problem):
    lj, params, (x, y) = problem
    compiled = []

    def step(*args, **kwargs):
        compiled.append(1)
        return algo.step(*args, **kwargs)

    algo = bj.sgld(lj, 0.1)
    counting = algo._replace(step=step)
    nan_x = x[:BATCH].copy()
    nan_x[2, 1] = np.nan
    cases = [([(nan_x, y[:BATCH])], {}, r"first batch\[0\] contains 1 non-finite"),
             ([(x[:BATCH], y[:BATCH] + 3)], {}, "labels out of range"),
             ([{"inputs": x[:BATCH], "labels": y[:BATCH]}], {}, "read batches"),
             ([(x[:BATCH], y[:4])], {}, "one common leading batch axis"),
             ([], {}, "stream is empty"),
             (slices(x, y, 3), {"shuffle": True}, "own order"),
             (slices(x, y, 3), {"batch_size": 4}, "batch_size=4 but the stream's first batch has 8"),
             (iter([(np.zeros((50, 3), np.float32), np.zeros(50, np.int32))]), {}, "exceed the log-joint's num_data")]
    for batches, kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            bj.run(jax.random.key(1), counting, params, iter(batches), num_steps=3, progress=False, **kwargs)
    assert not compiled


def test_a_stream_that_ends_early_or_changes_shape_names_the_step():
    x, y = walk_data()
    short = ((x[i:i + 4], y[i:i + 4]) for i in range(0, 12, 4))
    with pytest.raises(ValueError, match="ended after 3 batches: step 4 of num_steps=5"):
        bj.run(jax.random.key(0), random_walk(), {"w": jnp.zeros(2)}, short, num_steps=5, progress=False)
    ragged = iter([(x[:4], y[:4]), (x[4:8], y[4:8]), (x[8:10], y[8:10])])
    with pytest.raises(ValueError, match="batch 3 of the stream has shapes .*drop_last"):
        bj.run(jax.random.key(0), random_walk(), {"w": jnp.zeros(2)}, ragged, num_steps=3, progress=False)


def test_batches_may_hold_several_inputs(problem):
    lj, params, (x, y) = problem

    def two_inputs(params, inputs):  # the model reads {"a": ..., "b": ...}: the MLP on their sum
        return MODEL.apply(params, inputs["a"] + inputs["b"])

    lj2 = bj.log_joint(two_inputs, lj.prior, lj.likelihood, num_data=40)
    batches = ({"x": {"a": bx / 2, "b": bx / 2}, "y": by} for bx, by in slices(x, y, 5))
    post = bj.run(jax.random.key(1), bj.sgld(lj2, 0.1), params, batches, num_steps=5, progress=False)
    assert post.steps == 5 and np.isfinite(post.info.log_density).all()


def test_a_checkpointed_stream_resumes_by_skipping_the_steps_done(tmp_path, monkeypatch):
    from bayesjax.driver import chunked

    x, y = walk_data()
    kwargs = dict(num_steps=10, num_chains=2, progress=False, checkpoint=tmp_path / "run.npz", checkpoint_every=0.0)
    advance, calls = chunked.ADVANCE, []

    def crash_after_four_chunks(*args):
        calls.append(1)
        if len(calls) > 4:
            raise KeyboardInterrupt
        return advance(*args)

    def batches():
        return ((x[i:i + 4], y[i:i + 4]) for i in range(0, 40, 4))

    monkeypatch.setattr(chunked, "ADVANCE", crash_after_four_chunks)
    with pytest.raises(KeyboardInterrupt):
        bj.run(jax.random.key(2), random_walk(), {"w": jnp.zeros(2)}, batches(), **kwargs)
    monkeypatch.setattr(chunked, "ADVANCE", advance)
    resumed = bj.run(jax.random.key(2), random_walk(), {"w": jnp.zeros(2)}, batches(), **kwargs)
    whole = bj.run(jax.random.key(2), random_walk(), {"w": jnp.zeros(2)}, batches(), **(kwargs | {"checkpoint": None,
                                                                                                  "progress": True}))
    chex.assert_trees_all_equal(resumed.state, whole.state)
    chex.assert_trees_all_equal(resumed.info, whole.info)
