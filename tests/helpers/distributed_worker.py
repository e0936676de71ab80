"""One process of the two-process tests (tests/test_distributed.py): sharded SGLD under jax.distributed.

Usage: python -m tests.helpers.distributed_worker PORT PROCESS_ID OUT.npz [NUM_STEPS CHECKPOINT]
(with 2 host devices per process). With a checkpoint path, the run snapshots
there after every chunk, and resumes or extends a snapshot it finds.
"""
import json
import sys

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")
port, process_id, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
num_steps, path = (int(sys.argv[4]), sys.argv[5]) if len(sys.argv) > 4 else (20, None)
jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=process_id)

import numpy as np  # noqa: E402

import bayesjax as bj  # noqa: E402
from tests.helpers import sharded_sgld  # noqa: E402

post = sharded_sgld.run(bj.sharding.mesh(chains=4), num_steps, checkpoint=path, checkpoint_every=0.0)
placement = {"processes": jax.process_count(), "devices": jax.device_count(),
             "local_devices": jax.local_device_count(),
             "spec": str(post.state.buffer["Dense_0"]["kernel"].sharding.spec)}
leaves = sharded_sgld.named_leaves(post)
if process_id == 0:
    np.savez(out, placement=np.asarray(json.dumps(placement)), **leaves)
jax.distributed.shutdown()
