"""The driver: a whole inference run as one ``lax.scan`` inside one ``jit``.

Chains are vmapped (initialized inside the jit too; one unsharded chain runs
without a chain axis), minibatches are drawn inside the jit from
device-resident arrays (a fresh permutation each epoch, the last partial batch
dropped). With a progress bar or checkpoints the scan is cut into jitted
chunks driven from Python, so no host callback is compiled in. Chain k's
randomness is ``fold_in(key, k)``, so it depends on its index, not on how many
chains run beside it.
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
import time
import warnings
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from bayesjax import compiling, sharding
from bayesjax import checkpoint as snapshots
from bayesjax._checks import check_int, check_key, check_positive
from bayesjax.base import Algorithm, BufferedState, is_markov_chain, log_joint_of, with_sample_buffer
from bayesjax.chains import pooled_sample, vmapped_chains
from bayesjax.likelihoods import check_targets
from bayesjax.progress import bar as progress_bar
from bayesjax.progress import report
from bayesjax.types import Array, Batch, Info, Params, PRNGKey, State


DEFAULT_BUFFER_BYTES = 2**30
"""The default sample buffer (every retained position) is capped at this many bytes, with a warning."""


class Posterior(NamedTuple):
    """What :func:`run` returns.

    Attributes:
      algorithm: the algorithm that was run (with its sample buffer, for chains).
      state: final states, every leaf with a leading chain axis.
      info: per-step diagnostics, leaves ``[num_steps, num_chains, ...]``.
    """

    algorithm: Algorithm
    state: State
    info: Info

    @property
    def num_chains(self) -> int:
        return jax.tree.leaves(self.state)[0].shape[0]

    @property
    def divergences(self) -> dict[int, int]:
        """Chain index -> first step whose position or log density was not finite."""
        if not isinstance(self.state, BufferedState):
            return {}
        steps = sharding.to_host(self.state.diverged_at)
        return {int(c): int(steps[c]) for c in np.flatnonzero(steps >= 0)}

    def sample(self, key: PRNGKey, num_samples: int) -> Params:
        """``num_samples`` draws from the pooled chains; leaves gain a leading axis.

        Draws are spread evenly over chains (each chain's own draws are
        without replacement while its samples last), so ``num_samples ==
        num_chains`` gives one draw per chain: the members of an ensemble.
        """
        check_key(key)
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        state, divergences = self.state, self.divergences
        if divergences:
            if len(divergences) == self.num_chains:
                raise DivergenceError(f"every chain diverged: {_describe(divergences)}; no samples to draw")
            warnings.warn(f"{_describe(divergences)}: excluded from the samples", DivergenceWarning, stacklevel=2)
            healthy = np.array([c for c in range(self.num_chains) if c not in divergences])
            state = jax.tree.map(lambda leaf: leaf[healthy], state)
        work = DRAW_WORK * num_samples * sum(math.prod(leaf.shape[1:]) for leaf in jax.tree.leaves(state))
        return _pooled_sample.pick(work, key, state)(self.algorithm, key, state, int(num_samples))


class DivergenceError(RuntimeError):
    """Every chain of a run diverged (non-finite position or log density)."""


class DivergenceWarning(RuntimeWarning):
    """Some chains diverged; they are left out of the samples."""


def _describe(divergences: dict[int, int]) -> str:
    return ", ".join(f"chain {c} diverged at step {t}" for c, t in sorted(divergences.items()))


_pooled_sample = compiling.jit(pooled_sample, static_argnames=("algorithm", "num_samples"))

DRAW_WORK = 20
"""Operations per sampled weight counted by :func:`bayesjax.compiling.Twins.pick` (a threefry normal)."""


def _check_data(data: Batch) -> tuple[Array, Array]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError("data must be a pair (x, y)")
    x, y = (np.asarray(a) for a in data)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"x and y need a leading data axis, got shapes {x.shape} and {y.shape}")
    if x.shape[0] == 0:
        raise ValueError("data is empty: x has 0 examples")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y disagree on the number of examples: {x.shape[0]} vs {y.shape[0]}")
    for name, a in (("x", x), ("y", y)):
        if np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a)):
            bad = int(np.sum(~np.isfinite(a)))
            raise ValueError(f"data {name} contains {bad} non-finite value(s) (NaN or inf)")
    return x, y


def run(
    key: PRNGKey,
    algorithm: Algorithm,
    params: Params | Callable[[PRNGKey], Params],
    data: Batch,
    num_steps: int,
    batch_size: int | None = None,
    num_chains: int = 1,
    burnin: int = 0,
    thin: int = 1,
    num_samples: int | None = None,
    progress: bool = True,
    mesh: Mesh | None = None,
    augment: Callable[[PRNGKey, Array], Array] | None = None,
    shuffle: bool = True,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: float = 60.0,
    info_every: int = 1,
) -> Posterior:
    """Runs an algorithm over minibatches of ``data``, vmapped over chains.

    Markov chains (states with a ``position``) are wrapped in
    :func:`bayesjax.base.with_sample_buffer`: after ``burnin`` steps every
    ``thin``-th position is kept, up to ``num_samples`` per chain (default: all
    of them). Other algorithms ignore ``burnin``/``thin``.

    Args:
      key: PRNG key of the whole run.
      algorithm: any :class:`Algorithm`.
      params: initial parameters shared by all chains, or a function
        ``key -> params`` that gives each chain its own start (vmapped in jit).
      data: ``(x, y)`` arrays with a common leading axis.
      num_steps: steps per chain.
      batch_size: minibatch size (default: the full batch).
      num_chains: independent chains (or members), vmapped.
      burnin: steps discarded before collecting samples.
      thin: keep every ``thin``-th position after burn-in.
      num_samples: sample buffer capacity per chain (default: every retained
        position, capped at :data:`DEFAULT_BUFFER_BYTES` over all chains; the
        buffer keeps the latest).
      progress: show a progress bar (fed from inside the jit).
      mesh: a :func:`bayesjax.sharding.mesh`; chains are split over its
        ``"chains"`` axis (``num_chains`` must divide evenly) and, for
        full-batch runs, the data over its ``"data"`` axis. Results do not
        depend on the device count.
      augment: data augmentation ``(key, x_batch) -> x_batch`` applied to
        each chain's batch inside the jit (see :mod:`bayesjax.augment`).
      shuffle: draw each epoch's minibatches in a fresh random order (the
        default); ``False`` feeds the data in order, batch t being examples
        ``[t * batch_size, (t + 1) * batch_size)`` (wrapping around): a stream,
        for online learning.
      checkpoint: a file path. The run's state is snapshotted there
        (atomically) every ``checkpoint_every`` seconds and at the end; rerun
        with the same arguments and it resumes from the snapshot, with the
        results of an uninterrupted run. A snapshot of other settings, key or
        data is refused with an error. The algorithm's hyperparameters are
        not recorded: use one path per run.
      checkpoint_every: seconds between snapshots.
      info_every: keep the info of every ``info_every``-th step (steps k, 2k,
        ... counted from 1); 0 keeps none (``Posterior.info`` is None). The
        other steps skip computing it, which saves time where a step is
        cheap (one chain of a small model) and memory on long runs.
        With ``info_every != 1`` divergence is detected in the positions
        alone (see :func:`buffered`).

    Returns:
      A :class:`Posterior` with ``.sample(key, n)``, the final ``state`` and
      per-step ``info`` (``[num_steps // info_every, num_chains, ...]``).

    Example:
      >>> post = bj.run(key, bj.map(lj, optax.adam(1e-3)), params, (x, y),
      ...               num_steps=1000, batch_size=128)
      >>> samples = post.sample(key, 10)
    """
    check_key(key)
    if wrapped_chains := vmapped_chains(algorithm):
        raise ValueError(f"bj.run vmaps chains itself (each with its own minibatches): pass the method that "
                         f"bj.vmap_chains wrapped, with num_chains={wrapped_chains}")
    x, y = _check_data(data)
    num_data = x.shape[0]
    num_steps = check_int("num_steps", num_steps)
    num_chains = check_int("num_chains", num_chains)
    thin = check_int("thin", thin)
    burnin = check_int("burnin", burnin, minimum=0)
    info_every = check_int("info_every", info_every, minimum=0)
    if info_every > num_steps:
        raise ValueError(f"info_every={info_every} exceeds num_steps={num_steps}: no step's info would be kept")
    batch_size = num_data if batch_size is None else check_int("batch_size", batch_size)
    if batch_size > num_data:
        raise ValueError(f"batch_size {batch_size} exceeds the number of examples {num_data}")
    sharding.check_divisible(num_chains, mesh)
    init_fn = params if callable(params) else None
    params_like = jax.eval_shape(init_fn, key) if init_fn else params

    log_joint = log_joint_of(algorithm)
    if log_joint is not None:
        if log_joint.num_data != num_data:
            raise ValueError(
                f"the log-joint was built with num_data={log_joint.num_data} but data has {num_data} examples"
            )
        outputs = jax.eval_shape(log_joint.apply, params_like, jax.ShapeDtypeStruct((1,) + x.shape[1:], x.dtype))
        check_targets(log_joint.likelihood, y, outputs.shape[-1])

    buffer = None
    if is_markov_chain(jax.eval_shape(algorithm.init, key, params_like)):
        if burnin + thin > num_steps:
            raise ValueError(f"no position would be kept: the first is at step burnin + thin = {burnin + thin}, "
                             f"after the last step {num_steps}")
        retained = math.ceil((num_steps - burnin) / thin)
        position_bytes = num_chains * sum(
            np.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(params_like)
        )
        capacity = num_samples or min(retained, max(1, DEFAULT_BUFFER_BYTES // position_bytes))
        if capacity < retained and num_samples is None:
            warnings.warn(
                f"keeping all {retained} positions x {num_chains} chains would take "
                f"{retained * position_bytes / 2**30:.1f} GiB; the sample buffer keeps the last {capacity} "
                f"per chain ({capacity * position_bytes / 2**30:.2f} GiB): pass thin= or num_samples= to choose",
                stacklevel=2,
            )
        buffer = (check_int("num_samples", capacity), burnin, thin)

    config = RunConfig(num_steps, batch_size, num_chains, buffer, init_fn, augment, mesh, 0, bool(shuffle),
                       info_every)
    x, y = _place_data(x, y, mesh, full_batch=batch_size == num_data)
    block = max(info_every, 1)
    num_blocks = -(-num_steps // block)
    chunk = block * (_chunk_length(num_blocks) if progress or checkpoint is not None else num_blocks)
    identity = None
    if checkpoint is not None:
        check_positive("checkpoint_every", checkpoint_every, allow_zero=True)
        if jax.process_count() > 1:
            raise NotImplementedError("checkpoint= works in a single process; with jax.distributed, snapshot "
                                      "Posterior.state yourself (e.g. with orbax-checkpoint)")
        identity = _identity(config, chunk, key, params, x, y)
    state, info = _drive(algorithm, config, chunk, key, None if init_fn else params, x, y, progress,
                         checkpoint, checkpoint_every, identity)
    posterior = Posterior(buffered(algorithm, config), state, info)
    if posterior.divergences:
        warnings.warn(f"{_describe(posterior.divergences)} (see Posterior.divergences)", DivergenceWarning, stacklevel=2)
    return posterior


class RunConfig(NamedTuple):
    """The static settings of a run: one compile per distinct value.

    Attributes:
      num_steps: steps per chain.
      batch_size: minibatch size (the data size for full batch).
      num_chains: chains vmapped.
      buffer: ``(capacity, burnin, thin)`` of the sample buffer, or None.
      init_fn: per-chain ``key -> params``, or None for shared params.
      augment: ``(key, x_batch) -> x_batch`` data augmentation, or None.
      mesh: device mesh, or None.
      progress_every: steps between progress-bar updates; 0 traces no callback.
      shuffle: random minibatches each epoch, or the data in order.
      info_every: keep every ``info_every``-th step's info; 0 keeps none.
    """

    num_steps: int
    batch_size: int
    num_chains: int
    buffer: tuple[int, int, int] | None = None
    init_fn: Callable | None = None
    augment: Callable | None = None
    mesh: Mesh | None = None
    progress_every: int = 0
    shuffle: bool = True
    info_every: int = 1


def buffered(algorithm: Algorithm, config: RunConfig) -> Algorithm:
    """The algorithm a run steps: Markov chains wrapped in their sample buffer.

    The log density is watched for divergence only when every step's info is
    kept; otherwise the steps without info skip computing it (on an H100 this
    took SGLD on the digits MLP from 1.66x to 1.22x a bare hand-written loop
    at one chain) and divergence is seen in the positions.
    """
    if config.buffer is None:
        return algorithm
    return with_sample_buffer(algorithm, *config.buffer, watch_log_density=config.info_every == 1)


def _place_data(x, y, mesh: Mesh | None, full_batch: bool) -> tuple[Array, Array]:
    """Data on the mesh: split over its data axis for full-batch runs, else replicated."""
    if mesh is None:
        return jnp.asarray(x), jnp.asarray(y)
    if full_batch and x.shape[0] % mesh.shape[sharding.DATA] == 0:
        placement = sharding.data_sharding(mesh)
    else:
        placement = NamedSharding(mesh, PartitionSpec())
    return jax.device_put(x, placement), jax.device_put(y, placement)


class Chains(NamedTuple):
    """What the driver carries from step to step: states, minibatch orders, per-chain keys."""

    states: State
    perms: Array
    loop_keys: Array


def start_chains(algorithm: Algorithm, config: RunConfig, key: PRNGKey, params: Params | None,
                 num_data: int) -> Chains:
    """Initial states of ``config.num_chains`` chains; chain k uses ``fold_in(key, k)``."""
    c = config
    algorithm = buffered(algorithm, c)
    chain_keys = jax.vmap(lambda k: jax.random.fold_in(key, k))(jnp.arange(c.num_chains))
    init_keys, params_keys, loop_keys = jnp.moveaxis(
        jax.vmap(lambda k: jax.random.split(k, 3))(sharding.constrain_chains(chain_keys, c.mesh)), 1, 0
    )
    if c.init_fn is not None:
        states = jax.vmap(algorithm.init)(init_keys, jax.vmap(c.init_fn)(params_keys))
    else:
        states = jax.vmap(algorithm.init, (0, None))(init_keys, params)
    states = sharding.constrain_chains(states, c.mesh)
    perms = sharding.constrain_chains(jnp.zeros((c.num_chains, num_data), jnp.int32), c.mesh)
    return Chains(states, perms, loop_keys)


def advance_chains(algorithm: Algorithm, config: RunConfig, chains: Chains, x: Array, y: Array, start: Array,
                   length: int, bar_id: Array | int = -1) -> tuple[Chains, Info]:
    """Steps ``start, ..., start + length - 1`` of every chain (one ``lax.scan``).

    Steps at or past ``config.num_steps`` (the padding of a last, short
    chunk) leave the chains as they are and report zero infos. With
    ``config.info_every = k > 1`` (``start`` and ``length`` multiples of k)
    the info of steps ``k - 1, 2k - 1, ...`` (from 0) is returned; the other
    steps run without it, so XLA leaves its computation out.
    """
    c = config
    algorithm = buffered(algorithm, c)
    num_data = x.shape[0]
    steps_per_epoch = num_data // c.batch_size
    # One unsharded chain runs without its chain axis: a vmap over one chain
    # measured 9% slower per step than no vmap (mean-field VI, digits MLP, CPU).
    batched = c.num_chains > 1 or c.mesh is not None

    def per_chain(fn, in_axes=0):
        return jax.vmap(fn, in_axes) if batched else fn

    perm_keys, step_keys, augment_keys = (jax.vmap(lambda k: jax.random.fold_in(k, stream))(chains.loop_keys)
                                          for stream in range(3))
    carry = (chains.states, chains.perms, perm_keys, step_keys, augment_keys)
    if not batched:
        carry = jax.tree.map(lambda a: a[0], carry)
    states, perms, perm_keys, step_keys, augment_keys = carry

    def new_permutations(epoch):
        return per_chain(lambda k: jax.random.permutation(jax.random.fold_in(k, epoch), num_data))(
            perm_keys).astype(jnp.int32)

    def step(carry, t, keep_info: bool):
        states, perms = carry
        if c.batch_size == num_data:
            batches, batch_axes = (x, y), None
        elif not c.shuffle:
            first = (t % steps_per_epoch) * c.batch_size
            batches = tuple(jax.lax.dynamic_slice_in_dim(a, first, c.batch_size) for a in (x, y))
            batch_axes = None
        else:
            position = t % steps_per_epoch
            perms = jax.lax.cond(position == 0, lambda: new_permutations(t // steps_per_epoch), lambda: perms)
            index = jax.lax.dynamic_slice_in_dim(perms, position * c.batch_size, c.batch_size, axis=-1)
            batches, batch_axes = (x[index], y[index]), 0
        if c.augment is not None:
            keys = per_chain(lambda k: jax.random.fold_in(k, t))(augment_keys)
            inputs = per_chain(c.augment, (0, batch_axes))(keys, batches[0])
            batches, batch_axes = (inputs, jnp.broadcast_to(batches[1], inputs.shape[: 1 + batched])), 0
        keys = per_chain(lambda k: jax.random.fold_in(k, t))(step_keys)
        states, info = per_chain(algorithm.step, (0, 0, batch_axes))(keys, states, batches)
        if c.progress_every:
            report(bar_id, t + 1, c.progress_every)
        return (sharding.constrain_chains(states, c.mesh), perms), info if keep_info else None

    def guarded(keep_info: bool):
        """The step, or (past the last step of a padded chunk) no step and zero infos."""
        one_step = functools.partial(step, keep_info=keep_info)
        if c.num_steps % length == 0:  # no padding: no cond in the loop
            return one_step

        def skip(carry, t):
            info_like = jax.eval_shape(one_step, carry, t)[1]
            return carry, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), info_like)

        return lambda carry, t: jax.lax.cond(t < c.num_steps, one_step, skip, carry, t)

    carry, every = (states, perms), c.info_every
    if every <= 1:
        carry, info = jax.lax.scan(guarded(every == 1), carry, start + jnp.arange(length))
    else:
        def block(carry, last):
            carry, _ = jax.lax.scan(guarded(False), carry, last - (every - 1) + jnp.arange(every - 1))
            return guarded(True)(carry, last)

        carry, info = jax.lax.scan(block, carry, start + every - 1 + every * jnp.arange(length // every))
    if not batched:
        carry = jax.tree.map(lambda a: a[None], carry)
        info = jax.tree.map(lambda a: a[:, None], info)
    states, perms = carry
    return Chains(states, perms, chains.loop_keys), info


def run_chains(algorithm: Algorithm, config: RunConfig, key: PRNGKey, params: Params | None, x: Array, y: Array,
               bar_id: Array | int = -1) -> tuple[State, Info]:
    """The jittable core of :func:`run` (no input checks): a scan over steps, vmapped over chains.

    Chain k uses ``fold_in(key, k)``. Sweeps vmap this function over cells.

    Returns:
      Final states and per-step infos, with a leading chain axis (infos
      ``[num_steps, num_chains, ...]``).
    """
    chains = start_chains(algorithm, config, key, params, x.shape[0])
    chains, info = advance_chains(algorithm, config, chains, x, y, jnp.zeros((), jnp.int32), config.num_steps, bar_id)
    return chains.states, info


_start = jax.jit(start_chains, static_argnums=(0, 1, 4))
_advance = jax.jit(advance_chains, static_argnums=(0, 1, 6), donate_argnums=(2,))

PROGRESS_CHUNKS = 20
"""With a progress bar or checkpoints, a run is cut into about this many jitted chunks."""


def _chunk_length(num_steps: int) -> int:
    """Steps per chunk: a divisor of ``num_steps`` near ``num_steps / PROGRESS_CHUNKS`` when one exists
    (no padded steps), else the ceiling of that ratio."""
    target = max(1, num_steps // PROGRESS_CHUNKS)
    divisors = [d for d in range(max(1, target // 2), 2 * target + 1) if num_steps % d == 0]
    return min(divisors, key=lambda d: abs(d - target)) if divisors else -(-num_steps // PROGRESS_CHUNKS)


def _identity(config: RunConfig, chunk: int, key: PRNGKey, params, x: Array, y: Array) -> dict:
    """What a checkpoint must match to be resumed: settings, key, initial params and data."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves((None if callable(params) else params, x, y)):
        digest.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return {"num_steps": config.num_steps, "batch_size": config.batch_size, "num_chains": config.num_chains,
            "buffer": config.buffer, "shuffle": config.shuffle, "augment": config.augment is not None,
            "info_every": config.info_every,
            "chunk": chunk, "key": np.asarray(jax.random.key_data(key)).tolist(), "inputs": digest.hexdigest()}


def _drive(algorithm: Algorithm, config: RunConfig, chunk: int, key: PRNGKey, params: Params | None, x: Array,
           y: Array, progress: bool, checkpoint, checkpoint_every: float, identity: dict | None) -> tuple[State, Info]:
    """Runs the chains chunk by chunk from Python: progress and snapshots between chunks, no host callbacks."""
    num_chunks = -(-config.num_steps // chunk)
    infos_per_chunk = chunk // config.info_every if config.info_every else 0
    chains = _start(algorithm, config, key, params, x.shape[0])

    num_infos = config.num_steps // config.info_every if config.info_every else 0
    if num_chunks == 1 and checkpoint is None and jax.process_count() == 1:
        # Nothing to show or save between chunks: the infos stay where they are, no trip through the host.
        chains, info = _advance(algorithm, config, chains, x, y, jnp.zeros((), jnp.int32), chunk)
        return chains.states, jax.tree.map(lambda a: a[:num_infos], info)

    def host_infos(info_like):
        return jax.tree.map(lambda s: np.zeros((num_chunks * infos_per_chunk,) + s.shape[1:], s.dtype), info_like)

    infos, done = None, 0
    if checkpoint is not None and os.path.exists(checkpoint):
        one_chunk = functools.partial(advance_chains, algorithm, config, length=chunk)
        infos = host_infos(jax.eval_shape(one_chunk, chains, x, y, jnp.zeros((), jnp.int32))[1])
        saved = snapshots.load(checkpoint, {"chains": chains, "info": infos, "done": np.zeros((), np.int64)}, identity)
        chains = jax.device_put(saved["chains"], jax.tree.map(lambda a: a.sharding, chains))
        infos, done = saved["info"], int(saved["done"])
    last_save = time.monotonic()
    with progress_bar(progress, config.num_steps, "bayesjax.run") as bar:
        bar.advance_to(min(done * chunk, config.num_steps))
        for index in range(done, num_chunks):
            chains, info = _advance(algorithm, config, chains, x, y, jnp.asarray(index * chunk, jnp.int32), chunk)
            infos = host_infos(info) if infos is None else infos
            rows = slice(index * infos_per_chunk, (index + 1) * infos_per_chunk)
            jax.tree.map(lambda host, new: host.__setitem__(rows, sharding.to_host(new)), infos, info)
            bar.advance_to(min((index + 1) * chunk, config.num_steps))
            finished = index + 1 == num_chunks
            if checkpoint is not None and (finished or time.monotonic() - last_save >= checkpoint_every):
                snapshots.save(checkpoint, {"chains": chains, "info": infos, "done": np.asarray(index + 1)}, identity)
                last_save = time.monotonic()
    return chains.states, jax.tree.map(lambda a: jnp.asarray(a[:num_infos]), infos)
