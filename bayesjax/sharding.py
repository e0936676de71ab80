"""Placement of chains, ensemble members, sweep cells and data over devices.

bayesjax runs on JAX's own distributed machinery: a :class:`jax.sharding.Mesh`
with a ``"chains"`` axis (any vmapped axis: chains, members, temperatures x
seeds) and a ``"data"`` axis (examples of a full-batch log-likelihood). Arrays
are placed with :class:`~jax.sharding.NamedSharding` and the compiler
partitions the one ``jit`` (no ``pmap``). Chain k's randomness depends on k
only, so results do not depend on the number of devices.
"""
from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec, Sharding

CHAINS = "chains"
DATA = "data"


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity set where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def use_all_cpu_cores(num_devices: int | None = None) -> int:
    """Splits the host CPU into one XLA device per core (call before JAX starts).

    On the CPU, one device runs a vmapped axis on few cores; several host
    devices with the vmapped axis sharded over them use every core (measured
    in benchmarks/README.md, ``scaling.py``). This sets
    ``--xla_force_host_platform_device_count`` unless the user already did,
    and must run before JAX initializes its backend (the first array or
    device query). The ``bayesjax`` command calls it.

    Args:
      num_devices: devices to create (default: the number of usable cores).

    Returns:
      The host device count that will be (or already was) in effect.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "--xla_force_host_platform_device_count" in flags:
        return int(flags.split("--xla_force_host_platform_device_count=")[1].split()[0])
    if _backends_started():
        return jax.local_device_count()  # too late to split: JAX already started
    if num_devices is None:
        num_devices = usable_cores()
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={num_devices}".strip()
    return num_devices


def _backends_started() -> bool:
    try:
        from jax._src import xla_bridge  # backends_are_initialized has no public alias
    except ImportError:
        return False
    return bool(getattr(xla_bridge, "backends_are_initialized", lambda: False)())


def mesh(chains: int | None = None, data: int = 1, devices=None) -> Mesh:
    """A 2-D device mesh with axes ``("chains", "data")``.

    Args:
      chains: devices along the chain axis (default: all devices / ``data``).
      data: devices along the data axis (data parallelism of full-batch methods).
      devices: the devices to use (default: ``jax.devices()``).

    Example:
      >>> m = bj.sharding.mesh(chains=2)   # 2 of the devices
      >>> dict(m.shape)
      {'chains': 2, 'data': 1}
      >>> post = bj.run(key, bj.sgld(lj, 0.1), params, (x, y), num_steps=20, batch_size=50,
      ...               num_chains=4, mesh=m)   # chains 0-1 on one device, 2-3 on the other
    """
    devices = list(jax.devices() if devices is None else devices)
    if chains is None:
        chains = len(devices) // data
    if chains < 1 or data < 1 or chains * data > len(devices):
        raise ValueError(f"a mesh of chains={chains} x data={data} needs that many devices; {len(devices)} available")
    return Mesh(np.asarray(devices[: chains * data]).reshape(chains, data), (CHAINS, DATA))


def chain_sharding(mesh_: Mesh) -> NamedSharding:
    """Leading (chain) axis split over the mesh's chain axis, the rest replicated."""
    return NamedSharding(mesh_, PartitionSpec(CHAINS))


def data_sharding(mesh_: Mesh) -> NamedSharding:
    """Leading (example) axis split over the mesh's data axis."""
    return NamedSharding(mesh_, PartitionSpec(DATA))


def constrain_chains(tree, mesh_: Mesh | None):
    """Inside jit: pins every leaf's leading axis to the chain axis of ``mesh_``."""
    if mesh_ is None:
        return tree
    return jax.lax.with_sharding_constraint(tree, chain_sharding(mesh_))


def to_host(array) -> np.ndarray:
    """A NumPy copy of a global array, gathered from every process when it spans several.

    With several processes (``jax.distributed``) every process must call this
    for the same arrays, in the same order (it is a collective).
    """
    if getattr(array, "is_fully_addressable", True):
        return np.asarray(array)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


def from_host(array, placement: Sharding | None):
    """The inverse of :func:`to_host`: a host array (NumPy or a local JAX array) placed with ``placement``.

    ``None`` places it on the default device. With a placement that spans
    several processes every process passes the same values and keeps only
    the shards of its own devices (no collective).
    """
    if placement is None or placement.is_fully_addressable:
        return jax.device_put(array, placement)
    return jax.make_array_from_callback(np.shape(array), placement, lambda index: array[index])


def check_divisible(num_chains: int, mesh_: Mesh | None) -> None:
    """Raises ValueError unless the mesh has a ``"chains"`` axis and the chains split evenly over it."""
    if mesh_ is not None and CHAINS not in mesh_.axis_names:
        raise ValueError(f"the mesh has axes {tuple(mesh_.axis_names)}; bayesjax splits chains over an axis named "
                         f"{CHAINS!r} (and full-batch data over {DATA!r}): build it with bj.sharding.mesh(chains=..., "
                         f"data=...) or name your mesh's axes so")
    if mesh_ is not None and num_chains % mesh_.shape[CHAINS]:
        raise ValueError(
            f"num_chains={num_chains} must be a multiple of the mesh's {mesh_.shape[CHAINS]} chain devices"
        )
