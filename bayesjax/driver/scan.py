"""The compiled loop: a run's chains as one ``lax.scan`` over steps, vmapped over chains.

Chains are initialized inside the jit (one unsharded chain runs without a
chain axis); minibatches are drawn inside the jit from device-resident arrays
(a fresh permutation each epoch, the last partial batch dropped), or, for a
stream, read from a chunk of host batches stacked on a leading step axis and
scanned over. Chain k's randomness is ``fold_in(key, k)`` and step t's is a
``fold_in`` of that by t (t counted over the chain's whole life, so a
continued run draws what one longer run would), so it depends on its index,
not on how many chains run beside it. Nothing here checks its inputs:
:func:`bayesjax.run` does, and experiments that vmap whole runs call
:func:`run_chains` directly.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from bayesjax import sharding
from bayesjax.base import Algorithm, MemberBatches
from bayesjax.buffer import with_sample_buffer
from bayesjax.driver.progress import report
from bayesjax.types import Array, Info, Params, PRNGKey, State


class RunConfig(NamedTuple):
    """The static settings of a run: one compile per distinct value.

    Attributes:
      num_steps: steps per chain (read by :func:`run_chains`; the chunks of
        :mod:`bayesjax.driver.chunked` take the run's end as a traced ``stop``
        and compile with 0 here, so runs of other lengths share them).
      batch_size: minibatch size (the data size for full batch).
      num_chains: chains vmapped.
      buffer: ``(capacity, burnin, thin)`` of the sample buffer, or None.
      init_fn: per-chain ``key -> params``, or None for shared params.
      augment: ``(key, x_batch) -> x_batch`` data augmentation, or None.
      mesh: device mesh, or None.
      progress_every: steps between progress-bar updates; 0 traces no callback.
      shuffle: random minibatches each epoch, or the data in order.
      info_every: keep every ``info_every``-th step's info; 0 keeps none.
      streamed: the batches come from a stream, stacked per chunk (see
        :func:`advance_chains`), not drawn from in-memory arrays.
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
    streamed: bool = False


def buffered(algorithm: Algorithm, config: RunConfig) -> Algorithm:
    """The algorithm a run steps: Markov chains wrapped in their sample buffer.

    The log density is watched for divergence only when every step's info is
    kept; otherwise the steps without info skip computing it (which matters
    where a step is cheap) and divergence is seen in the positions.
    """
    if config.buffer is None:
        return algorithm
    return with_sample_buffer(algorithm, *config.buffer, watch_log_density=config.info_every == 1)


class Chains(NamedTuple):
    """What the driver carries from step to step: states, minibatch orders, per-chain keys."""

    states: State
    perms: Array
    loop_keys: Array


def start_chains(algorithm: Algorithm, config: RunConfig, key: PRNGKey, params: Params | None,
                 num_data: int, states: State | None = None, start: Array | int = 0) -> Chains:
    """The chains of a run at step ``start``; chain k uses ``fold_in(key, k)``.

    Args:
      algorithm, config: the run.
      key: the run's key.
      params: shared initial parameters, or None (``config.init_fn`` or ``states``).
      num_data: in-memory examples (0 for a stream).
      states: states to continue (leading chain axis), or None to initialize.
      start: the step the states are at; the minibatch order of its epoch is drawn.
    """
    c = config
    members = algorithm.member_batches
    algorithm = buffered(algorithm, c)
    chain_keys = jax.vmap(lambda k: jax.random.fold_in(key, k))(jnp.arange(c.num_chains))
    init_keys, params_keys, loop_keys = jnp.moveaxis(
        jax.vmap(lambda k: jax.random.split(k, 3))(sharding.constrain_chains(chain_keys, c.mesh)), 1, 0
    )
    if states is None and c.init_fn is not None:
        states = jax.vmap(algorithm.init)(init_keys, jax.vmap(c.init_fn)(params_keys))
    elif states is None:
        states = jax.vmap(algorithm.init, (0, None))(init_keys, params)
    states = sharding.constrain_chains(states, c.mesh)
    if c.shuffle and not c.streamed and c.batch_size < num_data:
        perm_keys = key_streams(loop_keys)[0]
        epoch = start // (num_data // c.batch_size)
        perms = jax.vmap(lambda k: chain_permutations(k, epoch, num_data, members))(perm_keys)
    else:
        perms = jnp.zeros((c.num_chains,) + ((members,) if members else ()) + (num_data,), jnp.int32)
    return Chains(states, sharding.constrain_chains(perms, c.mesh), loop_keys)


def key_streams(loop_keys: PRNGKey) -> tuple[PRNGKey, PRNGKey, PRNGKey]:
    """The chains' keys of the minibatch order, the steps and the augmentation: ``fold_in`` of 0, 1, 2."""
    return tuple(jax.vmap(lambda k: jax.random.fold_in(k, stream))(loop_keys) for stream in range(3))


def epoch_permutation(perm_key: PRNGKey, epoch: Array | int, num_data: int) -> Array:
    """One chain's minibatch order of an epoch: a permutation of ``num_data`` examples."""
    return jax.random.permutation(jax.random.fold_in(perm_key, epoch), num_data).astype(jnp.int32)


def chain_permutations(perm_key: PRNGKey, epoch: Array | int, num_data: int, members: int | None) -> Array:
    """A chain's minibatch order of an epoch, ``[num_data]``; ``[members, num_data]`` for an ensemble
    whose members read their own minibatches (member m's key: ``fold_in(perm_key, m)``)."""
    if members is None:
        return epoch_permutation(perm_key, epoch, num_data)
    member_keys = jax.vmap(lambda m: jax.random.fold_in(perm_key, m))(jnp.arange(members))
    return jax.vmap(lambda k: epoch_permutation(k, epoch, num_data))(member_keys)


def advance_chains(algorithm: Algorithm, config: RunConfig, chains: Chains, data, start: Array, stop: Array,
                   length: int, guard: bool, bar_id: Array | int = -1) -> tuple[Chains, Info]:
    """Steps ``start, ..., start + length - 1`` of every chain (one ``lax.scan``).

    Args:
      algorithm, config: the run.
      chains: the chains at step ``start``.
      data: in-memory ``(x, y)``; with ``config.streamed``, the chunk's batches
        stacked on a leading axis of ``length`` (every chain reads the same batch).
      start: the first step (counted over the chains' life, from 0).
      stop: with ``guard``, steps at or past ``stop`` (the padding of a last,
        short chunk) leave the chains as they are and report zero infos.
      length: steps in the chunk (static).
      guard: whether any step may be at or past ``stop`` (static; without it the loop has no cond).
      bar_id: progress bar fed every ``config.progress_every`` steps.

    With ``config.info_every = k > 1`` (``start`` and ``length`` multiples of
    k) the info of steps ``k - 1, 2k - 1, ...`` (from 0) is returned; the other
    steps run without it, so XLA leaves its computation out.
    """
    c = config
    members = algorithm.member_batches
    algorithm = buffered(algorithm, c)
    x, y = (None, None) if c.streamed else data
    num_data = 0 if c.streamed else x.shape[0]
    steps_per_epoch = max(num_data // c.batch_size, 1)
    # One unsharded chain runs without its chain axis: a vmap over one chain
    # is measurably slower per step than no vmap (benchmarks/README.md).
    batched = c.num_chains > 1 or c.mesh is not None

    def per_chain(fn, in_axes=0):
        return jax.vmap(fn, in_axes) if batched else fn

    carry = (chains.states, chains.perms, *key_streams(chains.loop_keys))
    if not batched:
        carry = jax.tree.map(lambda a: a[0], carry)
    states, perms, perm_keys, step_keys, augment_keys = carry

    def new_permutations(epoch):
        return per_chain(lambda k: chain_permutations(k, epoch, num_data, members))(perm_keys)

    def step(carry, inputs, keep_info: bool):
        (states, perms), (t, streamed) = carry, inputs
        if c.streamed:
            batches, batch_axes = streamed, None
        elif c.batch_size == num_data:
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
        own_order = members is not None and batch_axes == 0
        if c.augment is not None:
            keys = per_chain(lambda k: jax.random.fold_in(k, t))(augment_keys)
            augment = per_member(c.augment, members) if own_order else c.augment
            inputs = per_chain(augment, (0, batch_axes))(keys, batches[0])
            batches, batch_axes = (inputs, jnp.broadcast_to(batches[1], inputs.shape[: 1 + batched + own_order])), 0
        if own_order:
            batches = MemberBatches(batches)
        keys = per_chain(lambda k: jax.random.fold_in(k, t))(step_keys)
        states, info = per_chain(algorithm.step, (0, 0, batch_axes))(keys, states, batches)
        if c.progress_every:
            report(bar_id, t + 1, c.progress_every)
        return (sharding.constrain_chains(states, c.mesh), perms), info if keep_info else None

    def guarded(keep_info: bool):
        """The step, or (at or past ``stop``) no step and zero infos."""
        one_step = functools.partial(step, keep_info=keep_info)
        if not guard:
            return one_step

        def skip(carry, inputs):
            info_like = jax.eval_shape(one_step, carry, inputs)[1]
            return carry, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), info_like)

        return lambda carry, inputs: jax.lax.cond(inputs[0] < stop, one_step, skip, carry, inputs)

    carry, every = (states, perms), c.info_every
    inputs = (start + jnp.arange(length), data if c.streamed else None)
    if every <= 1:
        carry, info = jax.lax.scan(guarded(every == 1), carry, inputs)
    else:
        def block(carry, inputs):
            carry, _ = jax.lax.scan(guarded(False), carry, jax.tree.map(lambda a: a[:-1], inputs))
            return guarded(True)(carry, jax.tree.map(lambda a: a[-1], inputs))

        blocks = jax.tree.map(lambda a: a.reshape((length // every, every) + a.shape[1:]), inputs)
        carry, info = jax.lax.scan(block, carry, blocks)
    if not batched:
        carry = jax.tree.map(lambda a: a[None], carry)
        info = jax.tree.map(lambda a: a[:, None], info)
    states, perms = carry
    return Chains(states, perms, chains.loop_keys), info


def per_member(augment: Callable, members: int) -> Callable:
    """``augment`` of one minibatch -> of M members' minibatches ``[M, B, ...]``; member m's key ``fold_in(key, m)``."""
    return lambda key, x: jax.vmap(lambda m, x_m: augment(jax.random.fold_in(key, m), x_m))(jnp.arange(members), x)


def run_chains(algorithm: Algorithm, config: RunConfig, key: PRNGKey, params: Params | None, x: Array, y: Array,
               bar_id: Array | int = -1) -> tuple[State, Info]:
    """The jittable core of :func:`bayesjax.run` (no input checks): a scan over steps, vmapped over chains.

    Chain k uses ``fold_in(key, k)``. Sweeps vmap this function over cells.

    Returns:
      Final states and per-step infos, with a leading chain axis (infos
      ``[num_steps, num_chains, ...]``).
    """
    chains = start_chains(algorithm, config, key, params, x.shape[0])
    zero = jnp.zeros((), jnp.int32)
    chains, info = advance_chains(algorithm, config, chains, (x, y), zero, zero + config.num_steps,
                                  config.num_steps, False, bar_id)
    return chains.states, info
