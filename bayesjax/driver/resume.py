"""Continuing a run: a state (``Posterior.state``, a checkpoint's, an orbax-restored one) as the start of more steps.

Chain k's randomness at step t is a function of ``(key, k, t)`` and its
minibatch order of ``(key, k, epoch)`` (:mod:`bayesjax.driver.scan`), so a
run needs only its chains' states and the step they are at to continue:
with the same key and data, the continued run equals one longer run, bitwise.
A Markov chain's state counts its steps (its sample buffer's
``step_count``); other states are told (``Posterior.steps``). A sample
buffer grows to the longer run's capacity, which keeps its order while it has
not wrapped around.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax import sharding
from bayesjax.base import Algorithm
from bayesjax.buffer import BufferedState
from bayesjax.types import Params, PRNGKey, State


def counted_step(state: State) -> int | None:
    """The step a continued state is at, when it counts its steps (a sample buffer), else None."""
    if not isinstance(state, BufferedState):
        return None
    steps = np.unique(sharding.to_host(state.step_count))
    if steps.size != 1:
        raise ValueError(f"init_state's chains are at different steps {steps.tolist()}: continue them separately")
    return int(steps[0])


def capacity(state: State) -> int | None:
    """Sample-buffer slots per chain of a state with a chain axis, or None."""
    if not isinstance(state, BufferedState):
        return None
    return jax.tree.leaves(state.buffer)[0].shape[1]


def params_like(algorithm: Algorithm, key: PRNGKey, state: State) -> Params:
    """Shapes and dtypes of one chain's parameters in a state with a chain axis (what ``sample`` draws)."""
    inner = state.inner if isinstance(state, BufferedState) else state
    one_chain = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a)[1:], a.dtype), inner)
    draws = jax.eval_shape(lambda s: algorithm.sample(key, s, 1), one_chain)
    return jax.tree.map(lambda d: jax.ShapeDtypeStruct(d.shape[1:], d.dtype), draws)


def grow_buffer(states: State, slots: int) -> State:
    """The states with their sample buffers grown to ``slots`` per chain (zeros appended).

    Raises:
      ValueError: ``slots`` is fewer than the buffer has, or more when a
        buffer has wrapped around (its order would no longer be one run's).
    """
    have = capacity(states)
    if have is None or have == slots:
        return states
    if slots < have:
        raise ValueError(f"the state keeps {have} samples per chain; num_samples must be at least {have}")
    if np.any(sharding.to_host(states.num_collected) > have):
        raise ValueError(f"the state's sample buffer ({have} per chain) is full and wrapped around: it cannot grow "
                         f"to {slots}; pass num_samples={have}")

    def grow(buf):
        return jnp.concatenate([buf, jnp.zeros(buf.shape[:1] + (slots - have,) + buf.shape[2:], buf.dtype)], 1)

    return states._replace(buffer=jax.tree.map(grow, states.buffer))


def check_matches(states: State, expected: State, num_chains: int) -> None:
    """ValueError naming the first leaf where ``states`` (chain axis) differs from one chain's ``expected`` state."""
    have, have_def = jax.tree_util.tree_flatten_with_path(states)
    want, want_def = jax.tree_util.tree_flatten_with_path(expected)
    if have_def != want_def:
        raise ValueError(f"init_state is not a state of this algorithm: it has structure {have_def}, "
                         f"the algorithm's state {want_def}")
    for (path, leaf), (_, like) in zip(have, want):
        shape, dtype = tuple(np.shape(leaf)), getattr(leaf, "dtype", None)
        if shape != (num_chains,) + tuple(like.shape) or dtype != like.dtype:
            raise ValueError(
                f"init_state{jax.tree_util.keystr(path)} has shape {shape} {dtype}; with num_chains={num_chains} "
                f"the algorithm's state has {(num_chains,) + tuple(like.shape)} {like.dtype}"
            )
