"""The sample buffer: a Markov chain's visited positions, kept inside its state.

:func:`with_sample_buffer` wraps a chain so that, after burn-in and thinning,
its positions are written into a fixed-size ring buffer carried in the state:
a whole run stays one ``lax.scan`` and ``sample`` draws from the buffer. It
also records the first step at which a chain diverged.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from bayesjax.base import Algorithm, is_markov_chain
from bayesjax.trees import all_finite
from bayesjax.types import Array, Batch, Info, Params, PRNGKey, State


class BufferedState(NamedTuple):
    """State of :func:`with_sample_buffer`.

    Attributes:
      inner: the wrapped chain's state.
      buffer: ``capacity`` positions stacked on a leading axis (a ring buffer).
      num_collected: how many positions were written (may exceed capacity).
      step_count: how many steps were taken.
      diverged_at: the first step (from 1) whose position or log density was
        not finite, or -1; a diverged chain collects nothing more.
    """

    inner: State
    buffer: Params
    num_collected: Array
    step_count: Array
    diverged_at: Array


@functools.lru_cache(maxsize=256)
def with_sample_buffer(
    algorithm: Algorithm, capacity: int, burnin: int = 0, thin: int = 1, watch_log_density: bool = True
) -> Algorithm:
    """Collects a Markov chain's positions into a fixed-size buffer.

    After each step ``t`` (counted from 1) with ``t > burnin`` and
    ``(t - burnin) % thin == 0`` the new position is written into a ring buffer
    of ``capacity`` slots, so the buffer holds the last ``capacity`` retained
    positions. A step whose info has ``is_sample = False`` (the exploration
    phase of cyclical SG-MCMC) is not kept. ``sample`` draws from the filled
    slots, without replacement while ``num_samples`` does not exceed them.

    The buffer also watches for divergence: the first step at which the
    position (or the info's ``log_density``) is not finite is recorded in
    ``diverged_at`` and nothing is collected after it, so NaNs never reach the
    samples.

    Args:
      algorithm: an algorithm whose state has a ``position`` field.
      capacity: number of buffer slots (> 0).
      burnin: number of initial steps whose positions are discarded.
      thin: keep every ``thin``-th position after burn-in.
      watch_log_density: also flag a non-finite ``log_density``. Without it
        a step whose log density is not used elsewhere need not compute it
        (``bj.run(..., info_every=0)``), and divergence is seen in the
        position alone: a non-finite log density almost always makes the
        gradient, hence the position, non-finite too.

    Returns:
      An :class:`Algorithm` over :class:`BufferedState`; the same object for
      the same arguments, so jitted functions that take it as a static
      argument (``Posterior.sample``) compile once, not once per run.
    """
    if capacity < 1:
        raise ValueError(f"sample buffer capacity must be >= 1, got {capacity}")
    if burnin < 0 or thin < 1:
        raise ValueError(f"need burnin >= 0 and thin >= 1, got burnin={burnin}, thin={thin}")

    def init(key: PRNGKey, params: Params) -> BufferedState:
        inner = algorithm.init(key, params)
        if not (is_markov_chain(algorithm, inner) and hasattr(inner, "position")):
            raise TypeError(
                f"with_sample_buffer needs a Markov chain state with a `position` field, "
                f"got {type(inner).__name__}"
            )
        buffer = jax.tree.map(lambda p: jnp.zeros((capacity,) + p.shape, p.dtype), inner.position)
        zero = jnp.zeros((), jnp.int32)
        return BufferedState(inner, buffer, zero, zero, jnp.full((), -1, jnp.int32))

    def step(key: PRNGKey, state: BufferedState, batch: Batch) -> tuple[BufferedState, Info]:
        inner, info = algorithm.step(key, state.inner, batch)
        step_count = state.step_count + 1
        watched = (inner.position, getattr(info, "log_density", 0.0)) if watch_log_density else inner.position
        finite = all_finite(watched)
        diverged_at = jnp.where((state.diverged_at < 0) & ~finite, step_count, state.diverged_at)
        keep = (
            (step_count > burnin)
            & ((step_count - burnin) % thin == 0)
            & getattr(info, "is_sample", True)
            & (diverged_at < 0)
        )
        # A step that keeps nothing writes out of range, which the scatter drops:
        # no read of the old slot, no select.
        slot = jnp.where(keep, state.num_collected % capacity, capacity)
        buffer = jax.tree.map(lambda buf, p: buf.at[slot].set(p, mode="drop"), state.buffer, inner.position)
        num_collected = state.num_collected + keep.astype(jnp.int32)
        return BufferedState(inner, buffer, num_collected, step_count, diverged_at), info

    def sample(key: PRNGKey, state: BufferedState, num_samples: int) -> Params:
        filled = jnp.minimum(state.num_collected, capacity)
        # Random order of the filled slots first; then cycle through them.
        scores = jnp.where(jnp.arange(capacity) < filled, jax.random.uniform(key, (capacity,)), 2.0)
        order = jnp.argsort(scores)
        index = order[jnp.arange(num_samples) % jnp.maximum(filled, 1)]
        return jax.tree.map(lambda buf: buf[index], state.buffer)

    retarget = None
    if algorithm.retarget is not None:
        def retarget(log_joint):
            return with_sample_buffer.__wrapped__(algorithm.retarget(log_joint), capacity, burnin, thin,
                                                  watch_log_density)

    return Algorithm(init, step, sample, log_joint=algorithm.log_joint, retarget=retarget, markov_chain=False)


def ordered_samples(state: BufferedState) -> tuple[Params, Array]:
    """One chain's buffered positions in the order they were visited.

    Args:
      state: a :class:`BufferedState` (no chain axis; ``jax.vmap`` over chains).

    Returns:
      ``(samples, filled)``: leaves ``[capacity, ...]`` oldest first, and the
      number of valid leading entries.
    """
    capacity = jax.tree.leaves(state.buffer)[0].shape[0]
    start = jnp.where(state.num_collected > capacity, state.num_collected % capacity, 0)
    samples = jax.tree.map(lambda buf: jnp.roll(buf, -start, axis=0), state.buffer)
    return samples, jnp.minimum(state.num_collected, capacity)
