"""A report of a Markov chain run: its worst-case convergence numbers in one dict of floats."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax.checks import check_int
from bayesjax.diagnostics.draws import chain_draws, info_fields, kept_steps
from bayesjax.diagnostics.spaces import check_function_args, function_stats, weight_stats
from bayesjax.driver.posterior import Posterior
from bayesjax.likelihoods import Likelihood
from bayesjax.types import ApplyFn, Array, ArrayTree, Params

__all__ = ["summary"]

_WORST = {"rhat": ("rhat_max", np.nanmax), "rank_rhat": ("rank_rhat_max", np.nanmax),
          "ess": ("ess_min", np.nanmin), "tail_ess": ("tail_ess_min", np.nanmin)}


def _nan_reduce(reduce, tree) -> float:
    leaves = [jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)]
    values = np.asarray(jnp.concatenate(leaves)) if leaves else np.array([np.nan])
    if values.size == 0 or np.all(np.isnan(values)):
        return float("nan")
    return float(reduce(values))


def _worst(stats: dict, prefix: str = "") -> dict[str, float]:
    return {prefix + key: _nan_reduce(reduce, stats[name]) for name, (key, reduce) in _WORST.items()}


def summary(posterior: Posterior, apply: ApplyFn | None = None, x_probe: Array | None = None,
            likelihood: Likelihood | None = None, *, select: Callable[[Params], ArrayTree] | None = None,
            burnin: int = 0, thin: int = 1) -> dict[str, float]:
    """Worst-case convergence numbers of a Markov chain run, as plain floats.

    Takes the same arguments as :func:`~bayesjax.diagnostics.arviz.to_arviz`.

    Keys:

    * ``rhat_max`` (classic split R-hat), ``rank_rhat_max`` (rank-normalized
      split R-hat, the one to hold to 1.01), ``ess_min`` (bulk ESS),
      ``tail_ess_min``: over the weights chosen by ``select`` (see
      :func:`~bayesjax.diagnostics.spaces.weight_space` and
      :mod:`~bayesjax.diagnostics.convergence`); NaN entries (constant
      weights) are ignored.
    * ``function_rhat_max``, ``function_rank_rhat_max``, ``function_ess_min``,
      ``function_tail_ess_min``: the same over the probe predictions (see
      :func:`~bayesjax.diagnostics.spaces.function_space`), when ``apply``,
      ``x_probe`` and ``likelihood`` are all given.
    * ``num_chains`` (healthy chains used), ``num_draws`` (per chain),
      ``num_divergent_chains``.
    * ``acceptance_rate``: mean of ``info.acceptance_rate`` over the steps
      after ``burnin`` and the healthy chains, when the info has that field
      (HMC, NUTS).
    * ``divergent_transitions``: how many transitions after ``burnin`` had
      ``info.is_divergent`` (HMC/NUTS energy errors, which do not stop a
      chain), when the info has that field.
    * ``step_size``: the final step size, averaged over healthy chains: the
      chain state's ``step_size`` (the adapted, un-jittered value of HMC/NUTS)
      when it has one, else the last step's ``info.step_size``.

    Args:
      posterior: a Markov chain :class:`~bayesjax.driver.posterior.Posterior`.
      apply: the model, for the function-space numbers.
      x_probe: probe inputs, for the function-space numbers.
      likelihood: the observation model, for the function-space numbers.
      select: weights to check (default: the first 20 entries of each leaf).
      burnin: the run's ``burnin``; the info statistics average only the
        steps after it.
      thin: the run's ``thin``. The posterior does not record either, so with
        per-step info a ``UserWarning`` says when ``burnin`` and ``thin`` do
        not reproduce the collected draws (with the default 0 the warm-up
        steps would be counted).

    Returns:
      A ``dict[str, float]``.

    Raises:
      ValueError: only some of ``apply``, ``x_probe``, ``likelihood`` given,
        or ``burnin`` / ``thin`` out of range; as
        :func:`~bayesjax.diagnostics.draws.chain_samples`.

    Example:
      >>> numbers = bj.diagnostics.summary(linear_post, linear_lj.apply, linear_x[:5], linear_lj.likelihood,
      ...                                  burnin=20)
      >>> sorted(numbers)  # doctest: +NORMALIZE_WHITESPACE
      ['ess_min', 'function_ess_min', 'function_rank_rhat_max', 'function_rhat_max', 'function_tail_ess_min',
       'num_chains', 'num_divergent_chains', 'num_draws', 'rank_rhat_max', 'rhat_max', 'step_size',
       'tail_ess_min']
      >>> numbers["num_chains"], numbers["num_draws"]
      (4.0, 40.0)
    """
    functions = check_function_args(apply, x_probe, likelihood)
    burnin, thin = check_int("burnin", burnin, minimum=0), check_int("thin", thin, minimum=1)
    samples, healthy = chain_draws(posterior, "diagnostics")
    num_draws = jax.tree.leaves(samples)[0].shape[1]
    kept_steps(posterior, healthy, num_draws, burnin, thin, "summary (info statistics after burnin)")
    result = _worst(weight_stats(samples, select))
    if functions:
        result.update(_worst(function_stats(samples, apply, x_probe, likelihood), "function_"))
    result["num_chains"] = float(len(healthy))
    result["num_draws"] = float(num_draws)
    result["num_divergent_chains"] = float(len(posterior.divergences))

    info = info_fields(posterior.info)
    acceptance = info.get("acceptance_rate")
    if acceptance is not None:
        steps = np.asarray(acceptance)[burnin:, healthy]
        result["acceptance_rate"] = float(np.mean(steps)) if steps.size else float("nan")
    divergent = info.get("is_divergent")
    if divergent is not None:
        result["divergent_transitions"] = float(np.sum(np.asarray(divergent)[burnin:, healthy]))
    nominal = getattr(posterior.state.inner, "step_size", None)  # HMC/NUTS state: the adapted step size
    last_used = info.get("step_size")
    if nominal is not None:
        result["step_size"] = float(np.mean(np.asarray(nominal)[healthy]))
    elif last_used is not None:
        result["step_size"] = float(np.mean(np.asarray(last_used)[-1, healthy]))
    return result
