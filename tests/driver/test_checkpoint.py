"""Snapshots (bayesjax/driver/checkpoint.py): a round trip, and every kind of mismatch refused."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesjax.driver import checkpoint

TREE = {"w": jnp.arange(6.0).reshape(2, 3), "key": jax.random.key(3), "step": jnp.asarray(7, jnp.int32)}
IDENTITY = {"num_steps": 10, "seed": 3}


def test_a_snapshot_round_trips_arrays_and_keys(tmp_path):
    path = tmp_path / "run.npz"
    checkpoint.save(path, TREE, IDENTITY)
    restored = checkpoint.load(path, TREE, IDENTITY)
    np.testing.assert_array_equal(restored["w"], TREE["w"])
    np.testing.assert_array_equal(jax.random.key_data(restored["key"]), jax.random.key_data(TREE["key"]))
    assert int(restored["step"]) == 7
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]  # no temporary file left behind


def test_another_runs_snapshot_is_refused(tmp_path):
    path = tmp_path / "run.npz"
    checkpoint.save(path, TREE, IDENTITY)
    with pytest.raises(checkpoint.CheckpointMismatch, match="different run"):
        checkpoint.load(path, TREE, IDENTITY | {"seed": 4})
    with pytest.raises(checkpoint.CheckpointMismatch, match="shape"):
        checkpoint.load(path, TREE | {"w": jnp.zeros((3, 2))}, IDENTITY)
    with pytest.raises(checkpoint.CheckpointMismatch, match="arrays"):
        checkpoint.load(path, {"w": TREE["w"]}, IDENTITY)


def test_a_damaged_snapshot_is_refused(tmp_path):
    path = tmp_path / "run.npz"
    checkpoint.save(path, TREE, IDENTITY)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(checkpoint.CheckpointMismatch):
        checkpoint.load(path, TREE, IDENTITY)
