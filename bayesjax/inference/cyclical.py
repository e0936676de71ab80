"""Cyclical SG-MCMC (Zhang et al. 2020): a cosine learning rate restarted every cycle, exploration then sampling.

The kernels are those of :mod:`bayesjax.inference.sgmcmc` (SGLD, or SGHMC
with a friction); this module adds the schedule and the phases: no noise in
a cycle's exploration share (the step skips the draw), and only
sampling-phase positions enter the sample buffer.
"""
from __future__ import annotations

import math
from typing import Callable

import jax.numpy as jnp

from bayesjax.base import Algorithm, cached_builder
from bayesjax.inference.sgmcmc import (
    as_algorithm,
    check_momentum,
    check_step_size,
    sghmc_init,
    sghmc_step,
    sgld_init,
    sgld_step,
)
from bayesjax.logjoint import LogJoint
from bayesjax.types import Array


def cyclical_schedule(step_size: float | Array, cycle_length: int) -> Callable[[Array], Array]:
    """Cosine cycles (Zhang et al. 2020, eq. 1): lr_k = lr_0 / 2 (cos(pi (k mod L) / L) + 1)."""
    return lambda count: step_size / 2 * (jnp.cos(math.pi * (count % cycle_length) / cycle_length) + 1)


@cached_builder
def build_cyclical_sgld(
    log_joint: LogJoint,
    step_size: float | Array,
    num_cycles: int,
    num_steps: int,
    exploration_fraction: float = 0.5,
    friction: float | Array | None = None,
    precondition_every: int | None = None,
) -> Algorithm:
    """Cyclical SG-MCMC (Zhang et al. 2020, "Cyclical stochastic gradient MCMC for Bayesian deep learning").

    The run of ``num_steps`` is cut into ``num_cycles`` cycles of length
    L = ceil(num_steps / num_cycles) with a cosine learning rate
    (:func:`cyclical_schedule`),

        lr_k = lr_0 / 2 (cos(pi (k mod L) / L) + 1).

    In the first ``exploration_fraction`` of each cycle the chain explores
    (the update of :func:`~bayesjax.inference.sgmcmc.build_sgld`, or of :func:`~bayesjax.inference.sgmcmc.build_sghmc` when
    ``friction`` is given, without noise: SGD finds a new mode with large
    steps); in the rest it samples (with the noise), and only sampling-phase
    positions enter the sample buffer.

    Target and temperature: as :func:`~bayesjax.inference.sgmcmc.build_sgld`: p_T ∝ exp(log_joint),
    T scaling the injected noise only.

    Step size: lr_0, a learning rate **per example** at the start of each
    cycle, on the scale of :func:`~bayesjax.inference.sgmcmc.build_sgld` (or :func:`~bayesjax.inference.sgmcmc.build_sghmc` with
    ``friction``). No default: ``bayesjax sweep`` gives cyclical SGLD its
    SGLD rate (0.1); the Fashion-MNIST presets run cyclical SGHMC at 0.05
    with friction 0.1. Each cycle starts at lr_0, the largest rate of the
    run, so it must be stable as a constant rate would.

    State and info: :class:`~bayesjax.inference.sgmcmc.SGLDState` (or :class:`~bayesjax.inference.sgmcmc.SGHMCState` with
    ``friction``) and :class:`~bayesjax.inference.sgmcmc.SGMCMCInfo`, whose ``is_sample`` is False in
    the exploration phases and ``step_size`` the cosine's value.

    Args:
      log_joint: the tempered log-joint (minibatch estimate).
      step_size: lr_0, the learning rate per example at the start of each
        cycle (on the gradient of U / N, as :func:`~bayesjax.inference.sgmcmc.build_sgld`).
      num_cycles: M, the number of cycles.
      num_steps: K, total steps of the run (pass the same to ``bj.run``).
      exploration_fraction: beta in [0, 1), the exploration share of a cycle.
      friction: None for cyclical SGLD; alpha for cyclical SGHMC.
      precondition_every: cyclical SGHMC: steps between refreshes of the
        layerwise preconditioner (see :func:`~bayesjax.inference.sgmcmc.build_sghmc`); None: none.

    Returns:
      An :class:`Algorithm` (a Markov chain).

    Example:
      >>> algo = bj.cyclical_sgld(lj, step_size=0.5, num_cycles=4, num_steps=40)
      >>> post = bj.run(key, algo, params_map, (x, y), num_steps=40, batch_size=50,
      ...               num_chains=2, progress=False)
      >>> post.state.num_collected.tolist()   # the sampling halves of the 4 cycles of 10 steps
      [20, 20]

    References:
      R. Zhang, C. Li, J. Zhang, C. Chen and A. G. Wilson, "Cyclical
      stochastic gradient MCMC for Bayesian deep learning", ICLR 2020.
    """
    if friction is None:
        check_step_size(step_size)
        if precondition_every is not None:
            raise ValueError("precondition_every applies to cyclical SGHMC: give friction too")
    else:
        check_momentum(step_size, friction, precondition_every)
    if num_cycles < 1 or num_steps < num_cycles:
        raise ValueError(f"need 1 <= num_cycles <= num_steps, got num_cycles={num_cycles}, num_steps={num_steps}")
    if not 0 <= exploration_fraction < 1:
        raise ValueError(f"exploration_fraction must be in [0, 1), got {exploration_fraction}")
    cycle_length = -(-num_steps // num_cycles)
    schedule = cyclical_schedule(step_size, cycle_length)

    def is_sample(count):
        return (count % cycle_length) >= exploration_fraction * cycle_length

    if friction is None:
        def step(key, state, batch, *, log_joint):
            return sgld_step(key, state, batch, log_joint=log_joint, step_size=schedule, is_sample=is_sample)

        return as_algorithm(sgld_init, step, log_joint)

    def momentum_step(key, state, batch, *, log_joint):
        return sghmc_step(key, state, batch, log_joint=log_joint, step_size=schedule, friction=friction,
                          is_sample=is_sample, precondition_every=precondition_every)

    return as_algorithm(lambda params: sghmc_init(params, precondition_every is not None), momentum_step, log_joint)
