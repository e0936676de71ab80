# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chains on many devices and hosts
#
# bayesjax shards with JAX's own machinery: a `jax.sharding.Mesh` with a
# `"chains"` axis (chains, ensemble members, sweep cells) and a `"data"` axis
# (the examples of a full-batch log-likelihood), and one `jit` that the
# compiler partitions. Chain $k$'s randomness depends on $k$ alone, so the
# same key gives the same chains on 1, 2 or 4 devices up to float32 rounding:
# bitwise when each device runs the same shapes, otherwise the compiler may
# round the last bit differently, and a long SGLD trajectory amplifies that
# (a chain is chaotic; its distribution is what does not change).
#
# On a CPU, split the host into XLA devices **before JAX starts** (here 4;
# `bj.sharding.use_all_cpu_cores()` makes one per core, as the `bayesjax`
# command does). On GPUs and TPUs the devices are real and nothing needs
# setting.

# %%
import os

if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()

import jax  # noqa: E402  (after XLA_FLAGS)
import numpy as np  # noqa: E402
from _guide import budget  # noqa: E402

import bayesjax as bj  # noqa: E402

print(jax.device_count(), "devices:", jax.devices())

# %% [markdown]
# Eight SGLD chains, split over the mesh's chain axis: two chains a device.

# %%
ds = bj.data.load("digits")
model = bj.models.mlp([50, 50], num_outputs=ds.num_classes)
lik = bj.likelihoods.categorical()
lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), lik, num_data=len(ds.y_train))
init = lambda key: model.init(key, ds.x_train[:1])  # noqa: E731
run = dict(num_steps=budget(1000, 40), batch_size=128, num_chains=8, burnin=budget(500, 20), thin=budget(50, 10),
           progress=False)

mesh = bj.sharding.mesh(chains=jax.device_count())
sharded = bj.run(jax.random.key(0), bj.sgld(lj, 0.1), init, (ds.x_train, ds.y_train), mesh=mesh, **run)
print("state sharding:", jax.tree.leaves(sharded.state)[0].sharding)

# %% [markdown]
# The same run on one device draws the same noise and the same minibatches
# for every chain, so its chains agree with the sharded ones up to float
# rounding (the partitioned program may sum in another order); over many
# steps of a chaotic dynamics that rounding grows, and the predictive is
# what to compare.

# %%
single = bj.run(jax.random.key(0), bj.sgld(lj, 0.1), init, (ds.x_train, ds.y_train), **run)
difference = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))),
                          sharded.state.inner.position, single.state.inner.position)   # the chains' states
print("largest difference between the final positions:", max(jax.tree.leaves(difference)))
for name, post in (("4 devices", sharded), ("1 device", single)):
    pred = bj.predictive(model.apply, post.sample(jax.random.key(1), 40), ds.x_test, lik)
    print(name, {k: round(float(v), 4) for k, v in bj.metrics.evaluate(pred, ds.y_test).items()})

# %% [markdown]
# Full-batch methods (HMC, NUTS, full-batch `from_blackjax` kernels) can also
# split the data: `bj.sharding.mesh(chains=2, data=2)` puts each chain's
# log-likelihood sum over two devices. Ensembles shard their members with
# `bj.ensemble(..., mesh=mesh)`, and `bayesjax sweep` shards its cells the
# same way.
#
# ## Several processes or hosts
#
# Start one process per host (or per GPU), and in each, before anything else:
#
# ```python
# jax.config.update("jax_cpu_collectives_implementation", "gloo")   # CPUs only
# jax.distributed.initialize(coordinator_address="host0:1234", num_processes=2, process_id=i)
# ```
#
# then build the mesh over the global `jax.devices()` and call `bj.run` the
# same way in every process. Arrays that span processes come back to the
# host with `bj.sharding.to_host` (a collective: every process calls it).
# `checkpoint=path` works too, with a path on a file system that every process
# sees: the chains' states are gathered to each host, process 0 writes the
# snapshot while the others wait, and a rerun resumes or extends it in every
# process.
# `tests/test_distributed.py` runs two processes of two devices each and
# checks they sample what one process with four devices samples, also when
# the two processes checkpoint their run and new ones extend it.
