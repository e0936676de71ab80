"""The one inference protocol.

Every inference method is an :class:`Algorithm`: three pure functions, in the
spirit of optax's ``GradientTransformation`` and blackjax's
``SamplingAlgorithm``::

    state = algorithm.init(key, params)
    state, info = algorithm.step(key, state, batch)
    samples = algorithm.sample(key, state, num_samples)  # leaves gain axis S

Two kinds of state exist, told apart by one field:

* A Markov chain's state has a ``position`` field (blackjax's convention).
  Its samples are the positions it visits; :func:`with_sample_buffer` collects
  them, after burn-in and thinning, into a fixed-size buffer kept in the state
  so a whole run stays one ``lax.scan``. Unbuffered, ``sample`` returns copies
  of the current position.
* Any other state is an approximate posterior (MAP point mass, variational
  Gaussian, Laplace, SWAG) whose ``sample`` draws from its own distribution.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from bayesjax.types import Array, Batch, Info, Params, PRNGKey, State


class Algorithm(NamedTuple):
    """An inference method as three pure functions.

    Attributes:
      init: ``(key, params) -> state``.
      step: ``(key, state, batch) -> (state, info)``; one update on a batch.
      sample: ``(key, state, num_samples) -> params`` whose leaves gain a
        leading axis of size ``num_samples``.
    """

    init: Callable[[PRNGKey, Params], State]
    step: Callable[[PRNGKey, State, Batch], tuple[State, Info]]
    sample: Callable[[PRNGKey, State, int], Params]


def is_markov_chain(state: State) -> bool:
    """Whether ``state`` is a Markov chain's (it has a ``position`` field)."""
    return hasattr(state, "position")


def num_params(tree) -> int:
    """Scalar entries over every leaf of ``tree`` (arrays or ``jax.ShapeDtypeStruct``s)."""
    return sum(math.prod(jnp.shape(leaf)) for leaf in jax.tree.leaves(tree))


def repeat_params(params: Params, num_samples: int) -> Params:
    """``num_samples`` copies of ``params`` stacked on a new leading axis."""
    return jax.tree.map(
        lambda leaf: jnp.broadcast_to(leaf, (num_samples,) + jnp.shape(leaf)), params
    )


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


def all_finite(tree) -> Array:
    """Whether every entry of every leaf of ``tree`` is finite (a scalar bool).

    One reduction over the concatenated leaves, which XLA fuses into one
    kernel instead of one per leaf.
    """
    return jnp.all(jnp.isfinite(jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)])))


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
        if not is_markov_chain(inner):
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

    return Algorithm(init, step, sample)


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


def bind_log_joint(step: Callable, log_joint) -> Callable:
    """Binds a builder's log-joint to its step as the ``log_joint`` keyword.

    Builders use this instead of a bare closure so that :func:`log_joint_of`
    can find the target, which lets ``bj.run`` check data against the model and
    likelihood before anything compiles.
    """
    return functools.partial(step, log_joint=log_joint)


def log_joint_of(algorithm: Algorithm):
    """The log-joint bound by :func:`bind_log_joint`, or ``None``."""
    return getattr(algorithm.step, "keywords", {}).get("log_joint")
