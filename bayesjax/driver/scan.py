"""The compiled loop: a run's chains as one ``lax.scan`` over steps, vmapped over chains.

Chains are initialized inside the jit (one unsharded chain runs without a
chain axis); minibatches are drawn inside the jit from device-resident arrays
(a fresh permutation each epoch, the last partial batch dropped). Chain k's
randomness is ``fold_in(key, k)``, so it depends on its index, not on how
many chains run beside it. Nothing here checks its inputs: :func:`bayesjax.run`
does, and experiments that vmap whole runs call :func:`run_chains` directly.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from bayesjax import sharding
from bayesjax.base import Algorithm
from bayesjax.buffer import with_sample_buffer
from bayesjax.driver.progress import report
from bayesjax.types import Array, Info, Params, PRNGKey, State


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
    # is measurably slower per step than no vmap (benchmarks/README.md).
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
