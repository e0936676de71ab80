"""Deep ensemble of M members in one jit vs a Python loop of M jitted single-member runs.

M = 8 MAP members of the digits MLP (64-50-50-10), 1,000 Adam steps each on minibatches of 128. Timed in one
process, each variant twice: the first call includes tracing and compilation, the second is the steady state
(the jit cache hit a repeated run gets). Variants:

* loop: ``bj.run`` of one member, called M times (compiled once, then cached);
* ensemble: ``bj.run`` of ``bj.ensemble(bj.map(...), M, init=...)``, one jit, members vmapped;
* ensemble sharded: the same with the member axis split over all devices (``mesh=``); on the CPU the host is
  split into one XLA device per core before JAX starts (``--devices``, ``bj.sharding.use_all_cpu_cores``).

Run:  python benchmarks/ensembles.py [--devices N] [--members 8] [--steps 1000]
Prints each time, the ratios loop / variant measured here, and the test accuracy of each ensemble. The figures
measured so far are in benchmarks/README.md.
"""
import argparse
import time

START = time.perf_counter()

import jax  # noqa: E402  (importing JAX and bayesjax does not start JAX's backend: the host can still be split)
import numpy as np  # noqa: E402
import optax  # noqa: E402
from _common import timed  # noqa: E402

import bayesjax as bj  # noqa: E402

IMPORTED = time.perf_counter()
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--devices", type=int, default=None,
                    help="CPU only: split the host into this many XLA devices (default: one per usable core)")
parser.add_argument("--members", type=int, default=8)
parser.add_argument("--steps", type=int, default=1000)
args = parser.parse_args()
bj.sharding.use_all_cpu_cores(args.devices)  # unless XLA_FLAGS already sets a device count

ds = bj.data.load("digits")
model = bj.models.mlp([50, 50], num_outputs=ds.num_classes)
lik = bj.likelihoods.categorical()
lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), lik, num_data=len(ds.y_train))
member = bj.map(lj, optax.adam(1e-3))
data = (ds.x_train, ds.y_train)
M, STEPS, BATCH = args.members, args.steps, 128


def init(key):
    return model.init(key, ds.x_train[:1])


def block(post):
    jax.block_until_ready(post.state)
    return post


def loop(seed):
    posts = [block(bj.run(jax.random.fold_in(jax.random.key(seed), m), member, init, data, num_steps=STEPS,
                          batch_size=BATCH, progress=False)) for m in range(M)]
    return jax.tree.map(lambda *leaves: np.concatenate(leaves), *[p.sample(jax.random.key(0), 1) for p in posts])


def one_jit(algo):
    def go(seed):
        post = block(bj.run(jax.random.key(seed), algo, init(jax.random.key(0)), data, num_steps=STEPS,
                            batch_size=BATCH, progress=False))
        return post.sample(jax.random.key(0), M)
    return go


def accuracy(members):
    return bj.metrics.evaluate(bj.predictive(model.apply, members, ds.x_test, lik), ds.y_test)["accuracy"]


variants = {"loop": loop, "ensemble": one_jit(bj.ensemble(member, M, init=init))}
devices = jax.devices()
if len(devices) > 1 and M % len(devices) == 0:
    mesh = jax.sharding.Mesh(np.asarray(devices), ("chains",))
    variants[f"ensemble sharded/{len(devices)}"] = one_jit(bj.ensemble(member, M, init=init, mesh=mesh))

print(f"device: {devices[0].device_kind} x {len(devices)} ({jax.default_backend()}), "
      f"{bj.sharding.usable_cores()} usable cores; M={M}, {STEPS} Adam steps, batch {BATCH}, digits MLP 64-50-50-10")
times = {}
for name, fn in variants.items():
    first = timed(fn, 0).wall_s
    members, steady, _ = timed(fn, 1)
    times[name] = (first, steady)
    print(f"{name:22s} first call {first:6.2f} s   steady {steady:6.2f} s   "
          f"({M * STEPS / steady:8.0f} member-steps/s)   test accuracy {accuracy(members):.3f}", flush=True)

loop_first, loop_steady = times["loop"]
for name, (first, steady) in times.items():
    if name != "loop":
        print(f"speed-up of {name} over the loop: steady {loop_steady / steady:.2f}x, "
              f"first call {loop_first / first:.2f}x")
print(f"whole process {time.perf_counter() - START:.1f} s (imports {IMPORTED - START:.1f} s)")
