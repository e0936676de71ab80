"""Driving a run from Python in jitted chunks: a progress bar and resumable snapshots between chunks.

With neither, a run is one jitted call. Otherwise the scan of
:mod:`bayesjax.driver.scan` is cut into about :data:`PROGRESS_CHUNKS` chunks,
so no host callback is compiled into the loop, and the chains and infos are
snapshotted (:mod:`bayesjax.driver.checkpoint`) every so many seconds.
"""
from __future__ import annotations

import functools
import hashlib
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax import sharding
from bayesjax.base import Algorithm
from bayesjax.driver import checkpoint
from bayesjax.driver.progress import bar as progress_bar
from bayesjax.driver.scan import RunConfig, advance_chains, start_chains
from bayesjax.types import Array, Info, Params, PRNGKey, State

PROGRESS_CHUNKS = 20
"""With a progress bar or checkpoints, a run is cut into about this many jitted chunks."""

START = jax.jit(start_chains, static_argnums=(0, 1, 4))
""":func:`~bayesjax.driver.scan.start_chains`, jitted with the algorithm and config static."""
ADVANCE = jax.jit(advance_chains, static_argnums=(0, 1, 6), donate_argnums=(2,))
""":func:`~bayesjax.driver.scan.advance_chains`, jitted; the chains are donated, so a chunk updates them in place."""


def chunk_length(num_steps: int) -> int:
    """Steps per chunk: near ``num_steps / PROGRESS_CHUNKS``.

    A divisor of ``num_steps`` when one is near (no padded steps), else the ceiling of that ratio.
    """
    target = max(1, num_steps // PROGRESS_CHUNKS)
    divisors = [d for d in range(max(1, target // 2), 2 * target + 1) if num_steps % d == 0]
    return min(divisors, key=lambda d: abs(d - target)) if divisors else -(-num_steps // PROGRESS_CHUNKS)


def run_identity(config: RunConfig, chunk: int, key: PRNGKey, params, x: Array, y: Array) -> dict:
    """What a checkpoint must match to be resumed: settings, key, initial params and data."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves((None if callable(params) else params, x, y)):
        digest.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return {"num_steps": config.num_steps, "batch_size": config.batch_size, "num_chains": config.num_chains,
            "buffer": config.buffer, "shuffle": config.shuffle, "augment": config.augment is not None,
            "info_every": config.info_every,
            "chunk": chunk, "key": np.asarray(jax.random.key_data(key)).tolist(), "inputs": digest.hexdigest()}


def drive(algorithm: Algorithm, config: RunConfig, chunk: int, key: PRNGKey, params: Params | None, x: Array,
          y: Array, progress: bool, checkpoint_path: str | os.PathLike | None, checkpoint_every: float,
          identity: dict | None) -> tuple[State, Info]:
    """Runs the chains chunk by chunk from Python: progress and snapshots between chunks, no host callbacks.

    Args:
      algorithm, config: what :func:`bayesjax.driver.scan.advance_chains` steps.
      chunk: steps per jitted chunk (a multiple of ``config.info_every``).
      key, params: the run's key and shared initial parameters (``None`` with ``config.init_fn``).
      x, y: the placed data.
      progress: show a progress bar.
      checkpoint_path: snapshot file, or ``None``; an existing snapshot of the same run is resumed.
      checkpoint_every: seconds between snapshots.
      identity: :func:`run_identity` of the run, stored in and checked against the snapshot.

    Returns:
      Final states and the kept infos, as :func:`bayesjax.driver.scan.run_chains` returns them.
    """
    num_chunks = -(-config.num_steps // chunk)
    infos_per_chunk = chunk // config.info_every if config.info_every else 0
    chains = START(algorithm, config, key, params, x.shape[0])
    num_infos = config.num_steps // config.info_every if config.info_every else 0
    if num_chunks == 1 and checkpoint_path is None and jax.process_count() == 1:
        # Nothing to show or save between chunks: the infos stay where they are, no trip through the host.
        chains, info = ADVANCE(algorithm, config, chains, x, y, jnp.zeros((), jnp.int32), chunk)
        return chains.states, jax.tree.map(lambda a: a[:num_infos], info)

    def host_infos(info_like):
        return jax.tree.map(lambda s: np.zeros((num_chunks * infos_per_chunk,) + s.shape[1:], s.dtype), info_like)

    infos, done = None, 0
    if checkpoint_path is not None and os.path.exists(checkpoint_path):
        one_chunk = functools.partial(advance_chains, algorithm, config, length=chunk)
        infos = host_infos(jax.eval_shape(one_chunk, chains, x, y, jnp.zeros((), jnp.int32))[1])
        like = {"chains": chains, "info": infos, "done": np.zeros((), np.int64)}
        saved = checkpoint.load(checkpoint_path, like, identity)
        chains = jax.device_put(saved["chains"], jax.tree.map(lambda a: a.sharding, chains))
        infos, done = saved["info"], int(saved["done"])
    last_save = time.monotonic()
    with progress_bar(progress, config.num_steps, "bayesjax.run") as bar:
        bar.advance_to(min(done * chunk, config.num_steps))
        for index in range(done, num_chunks):
            chains, info = ADVANCE(algorithm, config, chains, x, y, jnp.asarray(index * chunk, jnp.int32), chunk)
            infos = host_infos(info) if infos is None else infos
            rows = slice(index * infos_per_chunk, (index + 1) * infos_per_chunk)
            jax.tree.map(lambda host, new: host.__setitem__(rows, sharding.to_host(new)), infos, info)
            bar.advance_to(min((index + 1) * chunk, config.num_steps))
            finished = index + 1 == num_chunks
            if checkpoint_path is not None and (finished or time.monotonic() - last_save >= checkpoint_every):
                snapshot = {"chains": chains, "info": infos, "done": np.asarray(index + 1)}
                checkpoint.save(checkpoint_path, snapshot, identity)
                last_save = time.monotonic()
    return chains.states, jax.tree.map(lambda a: jnp.asarray(a[:num_infos]), infos)
