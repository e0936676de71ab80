"""Driving a run from Python in jitted chunks: a progress bar, resumable snapshots and streamed batches between chunks.

With none of them, a run is one jitted call. Otherwise the scan of
:mod:`bayesjax.driver.scan` is cut into about :data:`PROGRESS_CHUNKS` chunks,
so no host callback is compiled into the loop; the chains and infos are
snapshotted (:mod:`bayesjax.driver.checkpoint`) every so many seconds, and a
stream's batches (:mod:`bayesjax.driver.stream`) are stacked for each chunk.
A snapshot records the steps done, so a rerun resumes it, and a rerun with
more steps extends it (its sample buffer grown, :mod:`bayesjax.driver.resume`).
The processes of a ``jax.distributed`` run save at the same chunks and
restore their own shards of the snapshot.
"""
from __future__ import annotations

import functools
import os
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax import sharding
from bayesjax.base import Algorithm
from bayesjax.driver import checkpoint, processes
from bayesjax.driver.progress import bar as progress_bar
from bayesjax.driver.resume import capacity, grow_buffer
from bayesjax.driver.scan import Chains, RunConfig, advance_chains, start_chains
from bayesjax.driver.stream import Stream
from bayesjax.types import Array, Info, Params, PRNGKey, State

PROGRESS_CHUNKS = 20
"""With a progress bar or checkpoints, a run is cut into about this many jitted chunks."""

START = jax.jit(start_chains, static_argnums=(0, 1, 4))
""":func:`~bayesjax.driver.scan.start_chains`, jitted with the algorithm and config static."""
ADVANCE = jax.jit(advance_chains, static_argnums=(0, 1, 6, 7), donate_argnums=(2,))
""":func:`~bayesjax.driver.scan.advance_chains`, jitted; the chains are donated, so a chunk updates them in place."""


class Start(NamedTuple):
    """Where a run's chains start.

    Attributes:
      params: shared initial parameters; None with ``config.init_fn`` or ``states``.
      states: states to continue, with a leading chain axis, or None.
      step: the step ``states`` are at (0 for a new run).
    """

    params: Params | None = None
    states: State | None = None
    step: int = 0


class Arrays(NamedTuple):
    """In-memory data: every chunk reads the same placed ``(x, y)``."""

    data: tuple[Array, Array]

    def chunk(self, steps: int, length: int, num_steps: int) -> tuple[Array, Array]:
        return self.data

    def skip(self, steps: int, num_steps: int) -> None:
        pass


def chunk_length(num_steps: int) -> int:
    """Steps per chunk: near ``num_steps / PROGRESS_CHUNKS``.

    A divisor of ``num_steps`` when one is near (no padded steps), else the ceiling of that ratio.
    """
    target = max(1, num_steps // PROGRESS_CHUNKS)
    divisors = [d for d in range(max(1, target // 2), 2 * target + 1) if num_steps % d == 0]
    return min(divisors, key=lambda d: abs(d - target)) if divisors else -(-num_steps // PROGRESS_CHUNKS)


def _restore(path, identity: dict, config: RunConfig, chains_like: Chains, info_like) -> tuple[Chains, Info, int]:
    """The snapshot at ``path``: chains (sample buffers grown to the run's), the kept infos and the steps done.

    Nothing is compiled before the snapshot is accepted, so a refused one costs no compile.
    """
    every = config.info_every

    def like(extra: dict):
        steps, slots = extra.get("steps"), extra.get("slots")
        if not isinstance(steps, int) or steps < 0 or not isinstance(slots, (int, type(None))):
            raise checkpoint.CheckpointMismatch(f"checkpoint {path} has a malformed record {extra}")
        if steps > config.num_steps:
            raise checkpoint.CheckpointMismatch(f"checkpoint {path} is at step {steps}, past num_steps="
                                                f"{config.num_steps}: pass num_steps >= {steps} or another path")
        if every > 1 and steps < config.num_steps and steps % every:
            raise checkpoint.CheckpointMismatch(f"checkpoint {path} stopped at step {steps}, not a multiple of "
                                                f"info_every={every}: it cannot be extended")
        shapes = chains_like
        if slots is not None and capacity(shapes.states) is not None:
            resized = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape[:1] + (slots,) + s.shape[2:], s.dtype),
                                   shapes.states.buffer)
            shapes = shapes._replace(states=shapes.states._replace(buffer=resized))
        infos = jax.tree.map(lambda s: jax.ShapeDtypeStruct((steps // every,) + s.shape[1:], s.dtype), info_like)
        return {"chains": shapes, "info": infos}

    saved, extra = checkpoint.load(path, like, identity)
    placement = sharding.chain_sharding(config.mesh) if config.mesh is not None else None
    restored = jax.tree.map(lambda leaf: sharding.from_host(leaf, placement), saved["chains"])
    try:
        restored = restored._replace(states=grow_buffer(restored.states, capacity(chains_like.states)))
    except ValueError as error:
        raise checkpoint.CheckpointMismatch(f"checkpoint {path} cannot be extended: {error}") from error
    return restored, saved["info"], extra["steps"]


def drive(algorithm: Algorithm, config: RunConfig, chunk: int, key: PRNGKey, start: Start, feed: Arrays | Stream,
          progress: bool, checkpoint_path: str | os.PathLike | None, checkpoint_every: float,
          identity: dict | None) -> tuple[State, Info]:
    """Runs the chains chunk by chunk from Python: progress, snapshots and streamed batches between chunks.

    Args:
      algorithm, config: what :func:`bayesjax.driver.scan.advance_chains` steps.
      chunk: steps per jitted chunk (a multiple of ``config.info_every``).
      key: the run's key.
      start: initial parameters, or states to continue and their step.
      feed: the placed in-memory data, or a :class:`~bayesjax.driver.stream.Stream`.
      progress: show a progress bar.
      checkpoint_path: snapshot file, or ``None``; an existing snapshot of the same run is resumed (or extended).
      checkpoint_every: seconds between snapshots.
      identity: :func:`~bayesjax.driver.identity.run_identity` of the run, stored in and checked against the snapshot.

    Returns:
      Final states and the kept infos, as :func:`bayesjax.driver.scan.run_chains` returns them.
    """
    every, num_steps = config.info_every, config.num_steps
    # Inside the chunks the run's length is the traced `stop`: runs of other lengths with the same chunk share a compile.
    compiled = config._replace(num_steps=0)
    num_infos = num_steps // every if every else 0
    infos_per_chunk = chunk // every if every else 0
    num_data = 0 if config.streamed else feed.data[0].shape[0]
    first = jnp.asarray(start.step, jnp.int32)
    stop = first + num_steps
    start_args = (compiled, key, start.params, num_data, start.states, first)
    if num_steps <= chunk and checkpoint_path is None and jax.process_count() == 1:
        # Nothing to show or save between chunks: the infos stay where they are, no trip through the host.
        chains = START(algorithm, *start_args)
        data = feed.chunk(num_steps, chunk, num_steps)
        chains, info = ADVANCE(algorithm, compiled, chains, data, first, stop, chunk, num_steps < chunk)
        return chains.states, jax.tree.map(lambda a: a[:num_infos], info)

    kept, done = None, 0
    if checkpoint_path is not None and os.path.exists(checkpoint_path):
        chains_like = jax.eval_shape(functools.partial(start_chains, algorithm, compiled, num_data=num_data),
                                     *start_args[1:3], states=start.states, start=first)
        data_like = (jax.tree.map(lambda a: jax.ShapeDtypeStruct((chunk,) + a.shape, a.dtype), feed.first)
                     if config.streamed else feed.data)
        one_chunk = functools.partial(advance_chains, algorithm, compiled, length=chunk, guard=False)
        info_like = jax.eval_shape(one_chunk, chains_like, data_like, first, stop)[1]
        chains, kept, done = _restore(checkpoint_path, identity, config, chains_like, info_like)
    else:
        chains = START(algorithm, *start_args)
    feed.skip(done, num_steps)
    remaining = num_steps - done
    num_chunks, guard = -(-remaining // chunk), remaining % chunk != 0
    infos = None

    def record(index: int, info) -> None:
        nonlocal infos
        if infos is None:
            infos = jax.tree.map(lambda a: np.zeros((num_infos + infos_per_chunk,) + a.shape[1:], a.dtype), info)
            if kept is not None:
                jax.tree.map(lambda host, old: host.__setitem__(slice(len(old)), old), infos, kept)
        rows = slice((done + index * chunk) // every, (done + index * chunk) // every + infos_per_chunk)
        jax.tree.map(lambda host, new: host.__setitem__(rows, sharding.to_host(new)), infos, info)

    last_save = time.monotonic()
    with progress_bar(progress, num_steps, "bayesjax.run") as bar:
        bar.advance_to(done)
        data = feed.chunk(min(chunk, remaining), chunk, num_steps) if num_chunks else None
        for index in range(num_chunks):
            chains, info = ADVANCE(algorithm, compiled, chains, data, first + done + index * chunk, stop, chunk, guard)
            reached = min(done + (index + 1) * chunk, num_steps)
            if reached < num_steps:  # pulled while the device runs this chunk
                data = feed.chunk(min(chunk, num_steps - reached), chunk, num_steps)
            if every:
                record(index, info)
            bar.advance_to(reached)
            # Process 0's clock decides, so that every process of a jax.distributed run saves at the same chunk.
            if checkpoint_path is not None and (reached == num_steps or processes.process_zero_says(
                    time.monotonic() - last_save >= checkpoint_every)):
                rows = reached // every if every else 0
                snapshot = {"chains": chains, "info": jax.tree.map(lambda a: a[:rows], infos)}
                checkpoint.save(checkpoint_path, snapshot, identity, {"steps": reached, "slots": capacity(chains.states)})
                last_save = time.monotonic()
    infos = kept if infos is None else infos
    return chains.states, jax.tree.map(lambda a: jnp.asarray(a[:num_infos]), infos)
