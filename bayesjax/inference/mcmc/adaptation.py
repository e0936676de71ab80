"""Stan's window adaptation of step size and mass matrix, one update per transition.

During the first ``num_adaptation_steps`` transitions of an HMC or NUTS chain
the step size is tuned by dual averaging (Nesterov 2009, as used by Hoffman
& Gelman 2014) towards ``target_acceptance_rate``, and the (diagonal or
dense) inverse mass matrix is estimated from the positions of Stan's doubling
slow windows, between a fast initial and a fast final window (Stan Reference
Manual, "HMC algorithm parameters"). The schedule and the updates are
blackjax's (``blackjax.adaptation.window_adaptation``); this module runs them
one step at a time, *inside* the chain's ``step``, so a whole run, warm-up
included, is one ``lax.scan``, where blackjax's ``window_adaptation(...).run``
is a loop of its own.

After the last adaptation step both are fixed to their final values. The
final step size is dual averaging's averaged iterate, as in Stan and blackjax,
so acceptance afterwards usually exceeds the target, as it does after
blackjax's own ``window_adaptation(...).run`` (figures in benchmarks/README.md). Positions visited while
adapting are not draws from a fixed Markov kernel: discard them with
``bj.run(..., burnin=num_adaptation_steps)`` (or more). Every chain adapts on
its own.

References:
  Y. Nesterov, "Primal-dual subgradient methods for convex problems",
  Mathematical Programming 120, 2009.
  M. D. Hoffman and A. Gelman, "The No-U-Turn Sampler: adaptively setting
  path lengths in Hamiltonian Monte Carlo", JMLR 15, 2014.
  Stan Development Team, Stan Reference Manual, "HMC algorithm parameters"
  (automatic parameter tuning).
"""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

from bayesjax.trees import cast_like
from bayesjax.types import Array, Params

__all__ = ["init", "update"]

# blackjax is imported on first use: it builds arrays at import, which starts JAX's backend, and that
# must wait until bayesjax.sharding.use_all_cpu_cores has split the host into devices.


def _stan_warmup(diagonal_mass_matrix: bool, target_acceptance_rate: float):
    """blackjax's Stan warm-up ``(init, update, final)`` (``window_adaptation.base``)."""
    from blackjax.adaptation import window_adaptation  # on first use: see above

    with warnings.catch_warnings():
        # blackjax 1.7 marks ``base`` deprecated in favour of its whole-loop
        # ``window_adaptation``, which cannot run inside one step; ``base`` is the
        # released per-step API.
        warnings.simplefilter("ignore", DeprecationWarning)
        return window_adaptation.base(diagonal_mass_matrix, target_acceptance_rate)


def init(position: Params, step_size: Array, diagonal_mass_matrix: bool = True):
    """blackjax's ``WindowAdaptationState`` at the start of warm-up, strongly typed.

    Args:
      position: the chain's initial parameters.
      step_size: the initial step size, which seeds dual averaging.
      diagonal_mass_matrix: estimate a diagonal (else dense) inverse mass matrix.

    Returns:
      The adaptation state; its ``inverse_mass_matrix`` is the identity.
    """
    adaptation_init, _, _ = _stan_warmup(diagonal_mass_matrix, 0.8)  # the target is unused by init
    state = adaptation_init(position, step_size)
    return cast_like(state, state)


def update(
    adaptation_state,
    step_size: Array,
    inverse_mass_matrix: Array,
    step: Array,
    position: Params,
    acceptance_rate: Array,
    *,
    num_adaptation_steps: int,
    target_acceptance_rate: float = 0.8,
    diagonal_mass_matrix: bool = True,
):
    """One window-adaptation update after transition ``step`` (counted from 0).

    While ``step < num_adaptation_steps`` the adaptation state takes blackjax's
    update for stage ``schedule[step]`` with the transition's new ``position``
    and ``acceptance_rate``, and the step size and inverse mass matrix become
    its current ones (at the last step, its final ones). Afterwards all three
    are returned unchanged.

    Args:
      adaptation_state: from :func:`init` or the previous update.
      step_size: the step size the transition used (nominal, before any jitter).
      inverse_mass_matrix: the one the transition used.
      step: the transition's index (int32, may be traced).
      position: the position after the transition.
      acceptance_rate: the transition's acceptance statistic.
      num_adaptation_steps: the length of warm-up (static, > 0).
      target_acceptance_rate: dual averaging's target.
      diagonal_mass_matrix: as given to :func:`init`.

    Returns:
      ``(adaptation_state, step_size, inverse_mass_matrix)`` for the next
      transition, with the dtypes of the arguments.
    """
    from blackjax.adaptation import window_adaptation  # on first use: see above

    _, adaptation_update, final = _stan_warmup(diagonal_mass_matrix, target_acceptance_rate)
    schedule = window_adaptation.build_schedule(num_adaptation_steps)
    stage, is_window_end = schedule[jnp.minimum(step, num_adaptation_steps - 1)]
    current = (adaptation_state, step_size, inverse_mass_matrix)

    def adapt():
        new = cast_like(
            adaptation_update(adaptation_state, (stage, is_window_end.astype(bool)), position, acceptance_rate),
            adaptation_state,
        )
        last = step == num_adaptation_steps - 1
        final_step_size, final_inverse_mass_matrix = final(new)
        return cast_like(
            (new, jnp.where(last, final_step_size, new.step_size),
             jnp.where(last, final_inverse_mass_matrix, new.inverse_mass_matrix)),
            current,
        )

    return jax.lax.cond(step < num_adaptation_steps, adapt, lambda: current)
