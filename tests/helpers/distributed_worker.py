"""One process of the two-process test (tests/test_distributed.py): sharded SGLD under jax.distributed.

Usage: python -m tests.helpers.distributed_worker PORT PROCESS_ID OUT.npz (with 2 host devices per process).
"""
import json
import sys

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")
port, process_id, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=process_id)

import numpy as np  # noqa: E402

import bayesjax as bj  # noqa: E402
from tests.helpers import sharded_sgld  # noqa: E402

post = sharded_sgld.run(bj.sharding.mesh(chains=4))
buffer = post.state.buffer
placement = {"processes": jax.process_count(), "devices": jax.device_count(),
             "local_devices": jax.local_device_count(), "spec": str(buffer["Dense_0"]["kernel"].sharding.spec)}
gathered = jax.tree.map(bj.sharding.to_host, buffer)
if process_id == 0:
    leaves = {"/".join(str(getattr(k, "key", k)) for k in path): leaf
              for path, leaf in jax.tree_util.tree_leaves_with_path(gathered)}
    np.savez(out, placement=np.asarray(json.dumps(placement)), **leaves)
jax.distributed.shutdown()
