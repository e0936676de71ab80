"""The No-U-Turn Sampler on the full-batch tempered log-joint.

NUTS (Hoffman & Gelman 2014) is HMC (:mod:`bayesjax.inference.mcmc.hmc`)
without the choice of the number of leapfrog steps ``L``: it doubles the
trajectory forwards or backwards in time until it makes a U-turn (or reaches
``2^max_num_doublings`` steps) and samples the next state from the trajectory
(multinomially, with weights ``exp(-H)``, as in Stan and blackjax). A
transition whose energy error exceeds 1000 is flagged ``is_divergent``.

The trajectory is blackjax's iterative NUTS (``blackjax.mcmc.nuts``); the
chain, its state, full-batch target, Stan window adaptation and costs are
HMC's (see :mod:`bayesjax.inference.mcmc.hmc`): only the kernel differs, and
the step size is not jittered.

References:
  M. D. Hoffman and A. Gelman, "The No-U-Turn Sampler: adaptively setting
  path lengths in Hamiltonian Monte Carlo", JMLR 15, 2014.
  P. Izmailov, S. Vikram, M. D. Hoffman and A. G. Wilson, "What are Bayesian
  neural network posteriors really like?", ICML 2021.
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from bayesjax.base import Algorithm, cached_builder
from bayesjax.inference.mcmc import hmc
from bayesjax.logjoint import LogJoint
from bayesjax.types import Array, Batch, PRNGKey

__all__ = ["NUTSInfo", "build_nuts", "init", "sample", "step"]

init = hmc.init
"""NUTS starts a chain as HMC does: :func:`bayesjax.inference.mcmc.hmc.init`."""

sample = hmc.sample
"""NUTS draws from a state as HMC does: :func:`bayesjax.inference.mcmc.hmc.sample`."""


class NUTSInfo(NamedTuple):
    """Diagnostics of one NUTS transition.

    Attributes:
      log_density: tempered log-joint at the new position.
      acceptance_rate: mean Metropolis acceptance statistic over the trajectory
        (what step-size adaptation targets).
      is_divergent: whether the trajectory hit an energy error above threshold.
      is_turning: whether the trajectory stopped on a U-turn.
      step_size: the step size this transition used.
      num_integration_steps: leapfrog steps taken.
      num_trajectory_expansions: doublings of the trajectory (tree depth).
    """

    log_density: Array
    acceptance_rate: Array
    is_divergent: Array
    is_turning: Array
    step_size: Array
    num_integration_steps: Array
    num_trajectory_expansions: Array


def step(
    key: PRNGKey,
    state: hmc.HMCState,
    batch: Batch,
    *,
    log_joint: LogJoint,
    max_num_doublings: int = 10,
    num_adaptation_steps: int = 0,
    target_acceptance_rate: float = 0.8,
    diagonal_mass_matrix: bool = True,
) -> tuple[hmc.HMCState, NUTSInfo]:
    """One NUTS transition (blackjax's iterative NUTS) on the full batch, then window adaptation.

    Args:
      key: PRNG key, consumed by this transition only.
      state: current :class:`~bayesjax.inference.mcmc.hmc.HMCState` (from :func:`init`).
      batch: the whole data set ``(x, y)``.
      log_joint: the tempered log-joint; the target is ``log_joint(theta, batch)``.
      max_num_doublings: cap on trajectory doublings (at most ``2^k`` leapfrog steps; static).
      num_adaptation_steps: window-adaptation steps (static; as given to ``init``).
      target_acceptance_rate: dual averaging's target.
      diagonal_mass_matrix: adapt a diagonal (else dense) inverse mass matrix.

    Returns:
      ``(state, info)``.

    Raises:
      ValueError: at trace time, if ``batch`` is not the full data set.
    """
    # blackjax is imported on first use: it builds arrays at import, which starts JAX's backend, and that
    # must wait until bayesjax.sharding.use_all_cpu_cores has split the host into devices.
    import blackjax.mcmc.nuts

    hmc.check_full_batch("NUTS", log_joint, batch)
    kernel = blackjax.mcmc.nuts.build_kernel()

    def nuts_kernel(key, chain, logdensity_fn, step_size, inverse_mass_matrix):
        return kernel(key, chain, logdensity_fn, step_size, inverse_mass_matrix, max_num_doublings)

    new_state, info = hmc.transition(
        key, state, lambda p: log_joint(p, batch), nuts_kernel,
        num_adaptation_steps, target_acceptance_rate, diagonal_mass_matrix,
    )
    dtype = state.step_size.dtype
    return new_state, NUTSInfo(
        log_density=new_state.logdensity,
        acceptance_rate=jnp.asarray(info.acceptance_rate).astype(dtype),
        is_divergent=jnp.asarray(info.is_divergent, bool),
        is_turning=jnp.asarray(info.is_turning, bool),
        step_size=state.step_size,
        num_integration_steps=jnp.asarray(info.num_integration_steps).astype(jnp.int32),
        num_trajectory_expansions=jnp.asarray(info.num_trajectory_expansions).astype(jnp.int32),
    )


@cached_builder
def build_nuts(
    log_joint: LogJoint,
    step_size: float | Array = 1e-3,
    max_num_doublings: int = 10,
    num_adaptation_steps: int = 0,
    target_acceptance_rate: float = 0.8,
    diagonal_mass_matrix: bool = True,
) -> Algorithm:
    """Full-batch No-U-Turn Sampler (Hoffman & Gelman 2014) as an :class:`Algorithm`.

    Update: HMC (:func:`bayesjax.hmc`) whose trajectory length is chosen per
    transition: the leapfrog trajectory on
    ``H(theta, p) = -log_joint(theta, D) + p^T M^{-1} p / 2`` is doubled in a
    random direction until its ends make a U-turn (or after
    ``max_num_doublings`` doublings) and the next state is drawn from it with
    multinomial weights ``exp(-H)``.

    Target: exactly the tempered posterior p_T ∝ exp(log_joint(theta, D)) on
    the whole data set; T enters through the log-joint, as for HMC.

    Step size: the leapfrog step on the N-scaled, tempered log-joint
    (blackjax's meaning, not a per-example rate), default 1e-3. Prefer
    ``num_adaptation_steps`` > 0 (Stan's window adaptation of the step size
    and mass matrix, inside the scan) with ``burnin`` at least as long; a
    step size too large shows as ``info.is_divergent``, one too small as
    ``info.num_trajectory_expansions`` at ``max_num_doublings``.

    State and info: :class:`~bayesjax.inference.mcmc.hmc.HMCState` (as HMC)
    and :class:`NUTSInfo` (``log_density``, ``acceptance_rate``,
    ``is_divergent``, ``is_turning``, ``step_size``,
    ``num_integration_steps``, ``num_trajectory_expansions``).

    Args:
      log_joint: the tempered log-joint (its temperature is the target's).
      step_size: leapfrog step size (> 0; may be traced); with adaptation the
        initial value of dual averaging.
      max_num_doublings: at most ``2^max_num_doublings`` leapfrog steps per transition.
      num_adaptation_steps: Stan window adaptation of step size and mass matrix
        during the first steps (0: none). Pass ``burnin >= num_adaptation_steps``
        to ``bj.run`` so warm-up positions are discarded.
      target_acceptance_rate: acceptance statistic that step-size adaptation targets.
      diagonal_mass_matrix: adapt a diagonal inverse mass matrix (else dense ``D x D``).

    Returns:
      An :class:`Algorithm` over :class:`~bayesjax.inference.mcmc.hmc.HMCState` with
      :class:`NUTSInfo`. Run it on the full batch: ``bj.run(..., batch_size=None)``.

    Example:
      >>> algo = bj.nuts(lj, max_num_doublings=6, num_adaptation_steps=10)
      >>> post = bj.run(key, algo, params_map, (x, y), num_steps=30, num_chains=2, burnin=10,
      ...               progress=False)
      >>> post.info.num_integration_steps.shape   # leapfrog steps per transition and chain
      (30, 2)

    References:
      M. D. Hoffman and A. Gelman, "The No-U-Turn Sampler", JMLR 2014.
      P. Izmailov et al., "What are Bayesian neural network posteriors really like?", ICML 2021.
    """
    hmc.check_hyperparameters(step_size, num_adaptation_steps, target_acceptance_rate,
                              max_num_doublings=max_num_doublings)

    def step_fn(key: PRNGKey, state: hmc.HMCState, batch: Batch, *,
                log_joint: LogJoint) -> tuple[hmc.HMCState, NUTSInfo]:
        return step(
            key, state, batch, log_joint=log_joint, max_num_doublings=max_num_doublings,
            num_adaptation_steps=num_adaptation_steps, target_acceptance_rate=target_acceptance_rate,
            diagonal_mass_matrix=diagonal_mass_matrix,
        )

    return hmc.as_algorithm(log_joint, step_fn, step_size, num_adaptation_steps, diagonal_mass_matrix)
