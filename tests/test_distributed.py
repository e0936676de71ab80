"""Two processes on localhost (jax.distributed, CPU collectives) run the same sharded SGLD as one process.

Each process has 2 host devices; together they form the 4-device mesh that the
single-process test session (4 forced host devices) builds alone.
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    try:
        port = free_port()
    except OSError as error:
        pytest.skip(f"cannot open a localhost port for the jax.distributed coordinator: {error}")
    out = tmp_path_factory.mktemp("distributed") / "buffer.npz"
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT,
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    procs = [subprocess.Popen([sys.executable, "-m", "tests.helpers.distributed_worker", str(port), str(i), str(out)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
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


@pytest.mark.skipif(jax.device_count() < 4, reason="needs 4 devices: run with "
                    "XLA_FLAGS=--xla_force_host_platform_device_count=4 (make test does)")
def test_two_processes_sample_what_one_process_with_four_devices_samples(two_process_run):
    placement = json.loads(str(two_process_run.pop("placement")))
    assert placement == {"processes": 2, "devices": 4, "local_devices": 2, "spec": "P('chains',)"}
    single = sharded_sgld.run(bj.sharding.mesh(chains=4)).state.buffer
    flat = {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(single)}
    assert flat.keys() == two_process_run.keys()
    for name, leaf in flat.items():
        np.testing.assert_allclose(two_process_run[name], leaf, rtol=1e-5, atol=1e-6, err_msg=name)
