"""Two processes on localhost (jax.distributed, CPU collectives) run the same sharded SGLD as one process.

Each process has 2 host devices; together they form the 4-device mesh that the
single-process test session (4 forced host devices) builds alone. Two
processes also checkpoint a shorter run, and two new ones extend it.
"""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import bayesjax as bj
from tests.helpers import sharded_sgld

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_four_devices = pytest.mark.skipif(jax.device_count() < 4, reason="needs 4 devices: run with "
                                        "XLA_FLAGS=--xla_force_host_platform_device_count=4 (make test does)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def run_two_processes(out, *args) -> dict:
    """Runs the worker in two processes (``args`` after its output path) and returns process 0's arrays."""
    try:
        port = free_port()
    except OSError as error:
        pytest.skip(f"cannot open a localhost port for the jax.distributed coordinator: {error}")
    # The session's XLA flags (an optimization level changes the initial weights' last bits), 2 devices a process.
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT,
               XLA_FLAGS=" ".join(flags + ["--xla_force_host_platform_device_count=2"]))
    procs = [subprocess.Popen([sys.executable, "-m", "tests.helpers.distributed_worker", str(port), str(i), str(out),
                               *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    logs = []
    for proc in procs:
        try:
            logs.append(proc.communicate(timeout=300)[0])
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            pytest.fail("the two jax.distributed processes did not finish in 300 s")
    if any(p.returncode for p in procs) and "collectives" in "".join(logs).lower():
        pytest.skip("this platform cannot run jax's CPU collectives across processes: " + logs[0][-500:])
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-3000:] for log in logs)
    with np.load(out) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def single_process_run():
    return sharded_sgld.named_leaves(sharded_sgld.run(bj.sharding.mesh(chains=4)))


def assert_close(two_processes: dict, single: dict) -> None:
    assert two_processes.keys() == single.keys()
    for name, leaf in single.items():
        np.testing.assert_allclose(two_processes[name], leaf, rtol=1e-5, atol=1e-6, err_msg=name)


@needs_four_devices
def test_two_processes_sample_what_one_process_with_four_devices_samples(tmp_path, single_process_run):
    two_process_run = run_two_processes(tmp_path / "run.npz")
    placement = json.loads(str(two_process_run.pop("placement")))
    assert placement == {"processes": 2, "devices": 4, "local_devices": 2, "spec": "P('chains',)"}
    assert_close(two_process_run, single_process_run)


@needs_four_devices
def test_two_processes_checkpoint_a_run_that_two_new_ones_extend(tmp_path, single_process_run):
    folder = tmp_path / "checkpoints"
    snapshot = folder / "run.npz"
    run_two_processes(tmp_path / "short.npz", 12, snapshot)  # snapshots after every chunk
    extended = run_two_processes(tmp_path / "extended.npz", 20, snapshot)
    extended.pop("placement")
    assert_close(extended, single_process_run)  # = one uninterrupted 20-step run
    assert sorted(p.name for p in folder.iterdir()) == ["run.npz"]  # one file, no temporaries left
    # The snapshot is complete (checksum, identity) and one process with four devices reads it: the run is finished.
    reread = sharded_sgld.named_leaves(sharded_sgld.run(bj.sharding.mesh(chains=4), checkpoint=snapshot))
    assert reread.keys() == extended.keys()
    for name, leaf in reread.items():
        np.testing.assert_array_equal(leaf, extended[name], err_msg=name)
