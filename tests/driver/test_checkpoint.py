"""Snapshots (bayesjax/driver/checkpoint.py): a round trip, every kind of mismatch or damage refused, paths checked."""
import os
import pathlib
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesjax.driver import checkpoint

TREE = {"w": jnp.arange(6.0).reshape(2, 3), "key": jax.random.key(3), "step": jnp.asarray(7, jnp.int32)}
IDENTITY = {"num_steps": 10, "seed": 3, "log_joint": {"temperature": 1.0, "tempering": "posterior"}}


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "run.npz"
    checkpoint.save(path, TREE, IDENTITY, {"steps": 4})
    return path


def test_a_snapshot_round_trips_arrays_keys_and_its_record(saved):
    restored, extra = checkpoint.load(saved, TREE, IDENTITY)
    np.testing.assert_array_equal(restored["w"], TREE["w"])
    np.testing.assert_array_equal(jax.random.key_data(restored["key"]), jax.random.key_data(TREE["key"]))
    assert int(restored["step"]) == 7 and extra == {"steps": 4}
    assert [p.name for p in saved.parent.iterdir()] == ["run.npz"]  # no temporary file left behind
    # The template may depend on the record (a run extended from it).
    restored, _ = checkpoint.load(saved, lambda extra: TREE | {"w": jnp.zeros((2, extra["steps"] - 1))}, IDENTITY)
    assert restored["w"].shape == (2, 3)


def test_another_runs_snapshot_is_refused_naming_what_differs(saved):
    with pytest.raises(checkpoint.CheckpointMismatch, match="different run.*differs in: seed"):
        checkpoint.load(saved, TREE, IDENTITY | {"seed": 4})
    colder = IDENTITY | {"log_joint": {"temperature": 0.1, "tempering": "posterior"}}
    with pytest.raises(checkpoint.CheckpointMismatch, match="differs in: log_joint.temperature"):
        checkpoint.load(saved, TREE, colder)
    with pytest.raises(checkpoint.CheckpointMismatch, match="shape"):
        checkpoint.load(saved, TREE | {"w": jnp.zeros((3, 2))}, IDENTITY)
    with pytest.raises(checkpoint.CheckpointMismatch, match="arrays"):
        checkpoint.load(saved, {"w": TREE["w"]}, IDENTITY)


def test_every_truncation_bit_flip_and_empty_file_is_refused_naming_the_path(saved):
    # Never zipfile.BadZipFile, EOFError, a JSON or a NumPy error: CheckpointMismatch with the path. A flip in a
    # field nobody reads (a zip entry's date, its version) may load, and then it loads the saved arrays exactly.
    # (Every third byte, a different bit each time.)
    good = saved.read_bytes()
    truncated = [b"", b"torn"] + [good[:n] for n in range(0, len(good), 7)]
    flipped = [bytes(good[:i]) + bytes([good[i] ^ (1 << i % 8)]) + good[i + 1:] for i in range(0, len(good), 3)]
    refused = 0
    for data in truncated + flipped:
        saved.write_bytes(data)
        try:
            restored, extra = checkpoint.load(saved, TREE, IDENTITY)
        except checkpoint.CheckpointMismatch as error:
            assert str(saved) in str(error)
            refused += 1
            continue
        assert data in flipped and extra == {"steps": 4}
        np.testing.assert_array_equal(restored["w"], TREE["w"])
        np.testing.assert_array_equal(jax.random.key_data(restored["key"]), jax.random.key_data(TREE["key"]))
        assert int(restored["step"]) == 7
    assert refused >= len(truncated) + len(flipped) // 2


class Executed(Exception):
    pass


class Payload:
    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(os.environ["PAYLOAD_PROBE"]),))


def test_a_crafted_snapshot_cannot_execute_code(saved, tmp_path, monkeypatch):
    probe = tmp_path / "executed"
    monkeypatch.setenv("PAYLOAD_PROBE", str(probe))
    header = np.load(saved)["header"]
    with zipfile.ZipFile(saved, "w") as f:  # the header and a pickled object array where a leaf should be
        with f.open("header.npy", "w") as member:
            np.lib.format.write_array(member, header)
        with f.open("leaf0.npy", "w") as member:
            np.lib.format.write_array(member, np.array([Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(checkpoint.CheckpointMismatch, match="cannot be read"):
        checkpoint.load(saved, TREE, IDENTITY)
    assert not probe.exists()


def test_an_unwritable_path_is_refused_and_stray_temporaries_are_removed(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="is a file"):
        checkpoint.prepare(blocker / "run.npz")
    with pytest.raises(ValueError, match="is a folder"):
        checkpoint.prepare(tmp_path)
    with pytest.raises(ValueError, match="cannot be written"):
        checkpoint.prepare("/proc/bayesjax-test/run.npz")  # not writable, even by root
    stray = [tmp_path / "run.npzab12cd_9.tmp", tmp_path / "run.npz0000abcd.tmp"]
    kept = [tmp_path / "other.npzab12cd_9.tmp", tmp_path / "run.npz.tmp", tmp_path / "run.npz"]
    for path in stray + kept:
        path.write_bytes(b"")
    checkpoint.prepare(tmp_path / "run.npz")
    assert not any(p.exists() for p in stray) and all(p.exists() for p in kept)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path):
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="cannot be written"):
            checkpoint.prepare(tmp_path / "run.npz")
    finally:
        tmp_path.chmod(0o755)
