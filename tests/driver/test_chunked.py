"""Chunked driving (bayesjax/driver/chunked.py): chunks equal one scan; a crashed run resumes from its checkpoint."""
import chex
import jax
import jax.numpy as jnp
import pytest

import bayesjax as bj
from bayesjax.driver import chunked
from tests.helpers.random_walk import random_walk, walk_data


@pytest.fixture(scope="module")
def data():
    return walk_data()


def test_chunked_runs_equal_one_scan(data):
    # A progress bar cuts the run into jitted chunks (here 7 steps -> 7 chunks of 1, and 23 -> 2-step chunks
    # with one padded step); the numbers are those of one scan.
    for num_steps in (7, 23):
        kwargs = dict(num_steps=num_steps, batch_size=8, num_chains=2, burnin=2)
        plain = bj.run(jax.random.key(3), random_walk(), {"w": jnp.zeros(2)}, data, progress=False, **kwargs)
        chunked = bj.run(jax.random.key(3), random_walk(), {"w": jnp.zeros(2)}, data, progress=True, **kwargs)
        chex.assert_trees_all_equal(plain.state, chunked.state)
        chex.assert_trees_all_equal(plain.info, chunked.info)


class Crash(Exception):
    pass


@pytest.mark.parametrize("info_every", [1, 4, 0])
def test_a_crashed_run_resumes_from_its_checkpoint(data, tmp_path, monkeypatch, info_every):
    kwargs = dict(num_steps=40, batch_size=8, num_chains=3, burnin=10, thin=2, progress=False,
                  checkpoint=tmp_path / "run.npz", checkpoint_every=0.0, info_every=info_every)
    advance, calls = chunked.ADVANCE, []

    def crash_after_five_chunks(*args):
        calls.append(args[-1])
        if len(calls) > 5:
            raise Crash
        return advance(*args)

    monkeypatch.setattr(chunked, "ADVANCE", crash_after_five_chunks)
    with pytest.raises(Crash):
        bj.run(jax.random.key(4), random_walk(), {"w": jnp.zeros(2)}, data, **kwargs)
    monkeypatch.setattr(chunked, "ADVANCE", advance)
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
