"""A Markov chain run read back: each healthy chain's draws in the order they were visited.

A :class:`~bayesjax.driver.posterior.Posterior` from :func:`bayesjax.run.run`
over a Markov chain keeps each chain's retained positions in a
:class:`~bayesjax.buffer.BufferedState` ring buffer with a leading chain axis.
The diagnostics read them back as leaves ``[C, K, ...]`` (C chains, K draws
each, oldest first), leaving diverged chains out with a warning.
"""
from __future__ import annotations

import warnings

import jax
import numpy as np

from bayesjax.buffer import BufferedState, ordered_samples
from bayesjax.driver.posterior import DivergenceError, DivergenceWarning, Posterior, describe
from bayesjax.types import Array, Params

__all__ = ["chain_draws", "chain_samples", "info_fields", "kept_steps"]


def _healthy_chains(posterior: Posterior, what: str) -> np.ndarray:
    """Indices of the chains that did not diverge; warns about the others."""
    divergences = posterior.divergences
    num_chains = posterior.num_chains
    if divergences:
        if len(divergences) == num_chains:
            raise DivergenceError(f"every chain diverged ({describe(divergences)}); no samples to {what}")
        warnings.warn(f"{describe(divergences)}: excluded from the {what}", DivergenceWarning, stacklevel=4)
    return np.array([c for c in range(num_chains) if c not in divergences], dtype=np.int64)


def _buffered_state(posterior: Posterior) -> BufferedState:
    state = getattr(posterior, "state", None)
    if not isinstance(state, BufferedState):
        raise ValueError(
            "convergence diagnostics need a Markov chain run with a sample buffer (a Posterior from "
            "bj.run over an algorithm whose state has a `position`, e.g. SGLD or HMC), got a state of "
            f"type {type(state).__name__}; approximate posteriors (MAP, VI, Laplace, SWAG, ensembles) "
            "have no chains to diagnose"
        )
    return state


def chain_draws(posterior: Posterior, what: str) -> tuple[Params, np.ndarray]:
    """The healthy chains' draws ``[C, K, ...]`` and their chain indices ``[C]``.

    Args:
      posterior: a Markov chain run (see :func:`chain_samples`).
      what: what the draws are for, named in the divergence warning
        ("diagnostics", "ArviZ export", ...).

    Returns:
      ``(draws, healthy)``: the draws as in :func:`chain_samples`, and the
      indices of the chains they come from among all the run's chains.

    Raises:
      ValueError: as :func:`chain_samples`.
      DivergenceError: every chain diverged.
    """
    state = _buffered_state(posterior)
    healthy = _healthy_chains(posterior, what)
    samples, filled = jax.vmap(ordered_samples)(state._replace(inner=None))  # only the buffer is read
    filled = np.asarray(filled)[healthy]
    if np.all(filled == 0):
        raise ValueError(
            "the chains collected no samples (is burnin >= num_steps, or did the algorithm mark no step "
            "as a sample?)"
        )
    if np.any(filled != filled[0]):
        counts = ", ".join(f"chain {c}: {n}" for c, n in zip(healthy, filled))
        raise ValueError(f"chains collected different numbers of samples ({counts}); diagnostics need equal lengths")
    count = int(filled[0])
    samples = jax.tree.map(lambda leaf: leaf[healthy, :count], samples)
    return samples, healthy


def chain_samples(posterior: Posterior) -> Params:
    """Each chain's retained positions in the order they were visited.

    Diverged chains (see :attr:`bayesjax.driver.posterior.Posterior.divergences`)
    are left out with a :class:`~bayesjax.driver.posterior.DivergenceWarning`.

    Args:
      posterior: a :class:`~bayesjax.driver.posterior.Posterior` of a Markov
        chain run, whose state is a :class:`~bayesjax.buffer.BufferedState`
        with a leading chain axis.

    Returns:
      Parameters whose leaves are ``[C, K, ...]``: C healthy chains, K draws
      each, oldest first (the last K retained if the ring buffer overflowed).

    Raises:
      ValueError: the posterior is not a buffered Markov chain, or the chains
        collected nothing, or different numbers of draws.
      DivergenceError: every chain diverged.

    Example:
      >>> bj.diagnostics.chain_samples(linear_post)["w"].shape
      (4, 40, 3, 1)
    """
    return chain_draws(posterior, "diagnostics")[0]


def info_fields(info) -> dict[str, Array]:
    """The per-step info of a run as a dict (a NamedTuple's fields, or a dict's items; else empty)."""
    if isinstance(info, dict):
        return dict(info)
    if hasattr(info, "_fields"):
        return {name: getattr(info, name) for name in info._fields}
    return {}


def kept_steps(posterior: Posterior, healthy: np.ndarray, num_draws: int, burnin: int, thin: int,
               what: str) -> np.ndarray | None:
    """The step indices ``[C, K]`` (rows of ``posterior.info``) whose positions are the draws.

    Step t (counted from 1) is kept when ``t > burnin`` and ``(t - burnin) %
    thin == 0`` (and ``info.is_sample``, when the info has it), as in
    :func:`bayesjax.buffer.with_sample_buffer`. The posterior does not record
    the run's ``burnin`` and ``thin``, so the caller passes them; when they do
    not reproduce every healthy chain's count of collected draws, or the
    info does not hold one row per step, a ``UserWarning`` says so, naming
    ``what`` is affected, and the result is None. Also None, silently, when
    the info has no per-step fields.

    Args:
      posterior: a Markov chain run.
      healthy: the chains the draws come from (see :func:`chain_draws`).
      num_draws: the draws per chain K (the last K kept, if the ring buffer
        overflowed).
      burnin: the run's ``burnin`` (checked by the caller: an integer >= 0).
      thin: the run's ``thin`` (checked by the caller: an integer >= 1).
      what: the consequence of a mismatch, for the warning.
    """
    fields = info_fields(posterior.info)
    if not fields:
        return None
    num_steps = np.shape(jax.tree.leaves(posterior.info)[0])[0]
    steps_taken = int(np.max(np.asarray(posterior.state.step_count)[healthy]))
    if num_steps != steps_taken:
        warnings.warn(f"{what}: the info has {num_steps} rows for {steps_taken} steps (bj.run's info_every > 1), "
                      "so the draws cannot be matched to steps", UserWarning, stacklevel=3)
        return None
    t = np.arange(1, num_steps + 1)[:, None]
    keep = (t > burnin) & ((t - burnin) % thin == 0)
    is_sample = fields.get("is_sample")
    if is_sample is not None:
        keep = keep & np.asarray(is_sample, bool)
    keep = np.broadcast_to(keep, (num_steps, posterior.num_chains))[:, healthy]
    collected = np.asarray(posterior.state.num_collected)[healthy]
    if np.any(keep.sum(0) != collected):
        warnings.warn(
            f"{what}: burnin={burnin}, thin={thin} do not reproduce the collected draws; pass the burnin "
            "and thin given to bj.run", UserWarning, stacklevel=3,
        )
        return None
    order = np.argsort(~keep, axis=0, kind="stable")  # kept steps first, in time order
    rows = collected[None, :] - num_draws + np.arange(num_draws)[:, None]
    return np.take_along_axis(order, rows, axis=0).T  # [C, K]
