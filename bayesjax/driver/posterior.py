"""What a run returns: the :class:`Posterior` (final states, infos, pooled draws) and divergence errors."""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax import compiling, sharding
from bayesjax.base import Algorithm
from bayesjax.buffer import BufferedState
from bayesjax.chains import pooled_sample
from bayesjax.checks import check_key
from bayesjax.model_state import TrainingInputs
from bayesjax.types import Info, Params, PRNGKey, State


class Posterior(NamedTuple):
    """What :func:`bayesjax.run` returns.

    Attributes:
      algorithm: the algorithm that was run (with its sample buffer, for chains).
      state: final states, every leaf with a leading chain axis.
      info: per-step diagnostics, leaves ``[num_steps, num_chains, ...]``.
      steps: the step the chains are at (a continued run's ``start_step``
        plus its ``num_steps``): pass it as ``start_step=`` with
        ``init_state=state`` to continue the run (see :func:`bayesjax.run`).
      statistics: training inputs on which each drawn sample's BatchNorm
        statistics are recomputed (``algorithm.recompute_statistics``: SWA,
        SWAG, VI on a model with state), or None.
      start_step: the step the run started from (0, or a continued run's ``start_step``).
      info_every: the steps between kept infos (``bj.run``'s ``info_every``).
    """

    algorithm: Algorithm
    state: State
    info: Info
    steps: int = 0
    statistics: TrainingInputs | None = None
    start_step: int = 0
    info_every: int = 1

    @property
    def num_chains(self) -> int:
        return jax.tree.leaves(self.state)[0].shape[0]

    @property
    def divergences(self) -> dict[int | tuple[int, int], int]:
        """Chain index (an ensemble's ``(chain, member)``) -> the first step at which it diverged.

        A Markov chain diverged at the first step whose position or log
        density was not finite (its sample buffer watches every step), or,
        dated by the run's last step, when its final position has exploded
        while staying finite: the root mean square of its weights in units of
        the prior's standard deviations exceeds :data:`EXPLODED` (Gaussian
        priors; under the prior it is about 1). Any
        other method (MAP, SWAG, VI) diverged when its final state is not
        finite, at the first step whose kept info was not finite (the last
        step if no info was kept or every info stayed finite); an ensemble
        (a state with a ``members`` field) is watched member by member.
        """
        if isinstance(self.state, BufferedState):
            steps = sharding.to_host(self.state.diverged_at)
            exploded = _exploded(self.algorithm, self.state.inner.position) & (steps < 0)
            return {int(c): int(steps[c]) if steps[c] >= 0 else self.steps
                    for c in np.flatnonzero((steps >= 0) | exploded)}
        axis = 1 if is_ensemble(self.state) else 0
        finite = _finite_per_index(self.state.members if axis else self.state, axis)
        rows = None if not jax.tree.leaves(self.info) else _finite_per_index(self.info, axis + 1)
        first = {}
        for index in zip(*np.nonzero(~finite)):
            bad = [] if rows is None else np.flatnonzero(~rows[(slice(None),) + index])
            step = self.start_step + (int(bad[0]) + 1) * self.info_every if len(bad) else self.steps
            first[tuple(map(int, index)) if axis else int(index[0])] = step
        return first

    def sample(self, key: PRNGKey, num_samples: int) -> Params:
        """``num_samples`` draws from the pooled chains; leaves gain a leading axis.

        Draws are spread evenly over chains (each chain's own draws are
        without replacement while its samples last), so ``num_samples ==
        num_chains`` gives one draw per chain: the members of an ensemble.
        With ``statistics``, each draw's model state is recomputed from its own
        weights (Maddox et al. 2019's ``bn_update``).
        """
        check_key(key)
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        state, divergences = self.state, self.divergences
        if divergences:
            ensemble = is_ensemble(state)
            indices = [tuple(map(int, i)) if ensemble else int(i[0])
                       for i in np.ndindex(jax.tree.leaves(state)[0].shape[: 1 + ensemble])]
            if len(divergences) == len(indices):
                raise DivergenceError(f"every chain diverged: {describe(divergences)}; no samples to draw")
            warnings.warn(f"{describe(divergences)}: excluded from the samples", DivergenceWarning, stacklevel=2)
            state = _healthy(state, np.array([n for n, index in enumerate(indices) if index not in divergences]))
        work = DRAW_WORK * num_samples * sum(math.prod(leaf.shape[1:]) for leaf in jax.tree.leaves(state))
        samples = POOLED_SAMPLE.pick(work, key, state)(self.algorithm, key, state, int(num_samples))
        if self.statistics is None:
            return samples
        return self.statistics.recompute(samples, jax.random.fold_in(key, 1))


def is_ensemble(state: State) -> bool:
    """Whether a run's state is an ensemble's: a ``members`` field whose leaves are ``[chains, members, ...]``."""
    return hasattr(state, "members")


EXPLODED = 1e3
"""Prior standard deviations (root mean square over the weights) beyond which a finite position has exploded."""


def _exploded(algorithm: Algorithm, position: Params) -> np.ndarray:
    """Whether each chain's position (leading chain axis) lies beyond :data:`EXPLODED` prior standard deviations."""
    prior = getattr(algorithm.log_joint, "prior", None)
    weights = getattr(position, "params", position)  # Variables: the weights, not the model state
    if prior is None or prior.stddev is None:
        return np.zeros(jax.tree.leaves(weights)[0].shape[0], bool)

    def rms_in_stddevs(params):
        squares = jax.tree.map(lambda w, sd: jnp.sum(jnp.square(w / sd)), params, prior.stddev(params))
        return jnp.sqrt(sum(jax.tree.leaves(squares)) / sum(w.size for w in jax.tree.leaves(params)))

    return sharding.to_host(jax.vmap(rms_in_stddevs)(weights) > EXPLODED)


def _healthy(state: State, healthy: np.ndarray) -> State:
    """The state of the healthy chains; an ensemble's healthy members of every chain pooled as one chain."""
    if not is_ensemble(state):
        return jax.tree.map(lambda leaf: leaf[healthy], state)
    return jax.tree.map(lambda leaf: leaf.reshape((-1,) + leaf.shape[2:])[healthy][None], state)


def _finite_per_index(tree, axis: int = 0) -> np.ndarray:
    """Whether each index of the axes up to ``axis`` (``[chains]``, an ensemble's ``[chains, members]``;
    infos gain a leading step axis) is finite in every floating leaf of ``tree``, on the host."""
    finite = None
    for leaf in jax.tree.leaves(tree):
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            continue
        per_index = jnp.all(jnp.isfinite(jnp.reshape(leaf, leaf.shape[: axis + 1] + (-1,))), axis=-1)
        finite = per_index if finite is None else finite & per_index
    if finite is None:
        return np.ones(jax.tree.leaves(tree)[0].shape[: axis + 1], bool)
    return sharding.to_host(finite)


class DivergenceError(RuntimeError):
    """Every chain of a run diverged (non-finite position or log density)."""


class DivergenceWarning(RuntimeWarning):
    """Some chains diverged; they are left out of the samples."""


def describe(divergences: dict[int | tuple[int, int], int]) -> str:
    """``"chain c diverged at step t, ..."`` for a ``{chain: step}`` dict (``"chain c member m ..."`` for pairs)."""
    def name(index):
        return f"chain {index[0]} member {index[1]}" if isinstance(index, tuple) else f"chain {index}"

    return ", ".join(f"{name(index)} diverged at step {t}" for index, t in sorted(divergences.items()))


POOLED_SAMPLE = compiling.jit(pooled_sample, static_argnames=("algorithm", "num_samples"))
""":func:`bayesjax.chains.pooled_sample` jitted at both optimization levels (see :mod:`bayesjax.compiling`)."""

DRAW_WORK = 20
"""Operations per sampled weight counted by :func:`bayesjax.compiling.Twins.pick` (a threefry normal)."""
