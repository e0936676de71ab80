"""Export of a Markov chain run to ArviZ: the draws as ``posterior``, the per-step info as ``sample_stats``."""
from __future__ import annotations

from typing import Callable

import jax
import numpy as np

from bayesjax.checks import check_int
from bayesjax.diagnostics.draws import chain_draws, info_fields, kept_steps
from bayesjax.diagnostics.spaces import check_function_args, leaf_subset, predictions, select_draws
from bayesjax.driver.posterior import Posterior
from bayesjax.likelihoods import Likelihood
from bayesjax.types import ApplyFn, Array, ArrayTree, Params

__all__ = ["PREDICTIONS", "to_arviz"]

PREDICTIONS = "predictions"
"""The ``posterior`` variable that holds the probe predictions, when :func:`to_arviz` is given a model."""

_ARVIZ_NAMES = {  # bayesjax / blackjax info fields -> ArviZ's sample_stats conventions
    "is_divergent": "diverging",
    "log_density": "lp",
    "num_integration_steps": "n_steps",
    "num_trajectory_expansions": "tree_depth",
}


def _leaf_name(path) -> str:
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    return ".".join(parts) or "x"


def to_arviz(posterior: Posterior, apply: ApplyFn | None = None, x_probe: Array | None = None,
             likelihood: Likelihood | None = None, *, select: Callable[[Params], ArrayTree] | None = None,
             burnin: int = 0, thin: int = 1):
    """The chains as an :class:`arviz.InferenceData` (needs ``pip install 'bayesjax[arviz]'``).

    Takes the same arguments as :func:`~bayesjax.diagnostics.report.summary`.
    The ``posterior`` group holds one variable per leaf of ``select(params)``,
    named by its path (``"Dense_0.kernel"``), with dims ``(chain, draw, ...)``;
    diverged chains are excluded with a warning. Given ``apply``, ``x_probe``
    and ``likelihood``, it also holds the variable ``"predictions"``
    (:data:`PREDICTIONS`), ``(chain, draw, probe[, class])``: each draw's
    log class probabilities, or predictive mean, at the probe inputs (see
    :func:`~bayesjax.diagnostics.spaces.function_space`), so ``arviz.rhat``
    and ``arviz.summary`` check convergence in function space. Per-step info
    fields that are one number per step and chain (``acceptance_rate``,
    ``step_size``, ``is_divergent`` as ``diverging``, ``log_density`` as
    ``lp``, ...) go into ``sample_stats`` at the steps whose positions are
    the draws, located from the run's ``burnin`` and ``thin``; when those do
    not reproduce the number of collected draws, ``sample_stats`` is left out
    with a warning.

    Args:
      posterior: a Markov chain :class:`~bayesjax.driver.posterior.Posterior`.
      apply: the model, for the probe predictions.
      x_probe: probe inputs ``[N, ...]``, for the probe predictions.
      likelihood: the observation model, for the probe predictions.
      select: maps one sample's params to a pytree of what to export. Default:
        the first (up to) 20 entries of every leaf, flattened (use
        ``lambda p: p`` for every weight).
      burnin: the run's ``burnin``.
      thin: the run's ``thin``.

    Returns:
      An ``arviz.InferenceData``.

    Raises:
      ImportError: arviz is not installed.
      ValueError: only some of ``apply``, ``x_probe``, ``likelihood`` given,
        ``burnin`` / ``thin`` out of range, or a selected leaf named like the
        predictions.

    Example:
      >>> idata = bj.diagnostics.to_arviz(linear_post, linear_lj.apply, linear_x[:5], linear_lj.likelihood,
      ...                                 burnin=20)
      >>> idata.posterior["w"].shape, idata.posterior["predictions"].shape
      ((4, 40, 3), (4, 40, 5))
    """
    functions = check_function_args(apply, x_probe, likelihood)
    burnin, thin = check_int("burnin", burnin, minimum=0), check_int("thin", thin, minimum=1)
    try:
        import arviz as az
    except ImportError as error:
        raise ImportError("to_arviz needs arviz: pip install 'bayesjax[arviz]'") from error
    samples, healthy = chain_draws(posterior, "ArviZ export")
    num_draws = jax.tree.leaves(samples)[0].shape[1]
    chosen = select_draws(select or leaf_subset, samples)
    leaves, _ = jax.tree_util.tree_flatten_with_path(chosen)
    draws = {_leaf_name(path): np.asarray(leaf) for path, leaf in leaves}
    if functions:
        if PREDICTIONS in draws:
            raise ValueError(f"a selected leaf is named {PREDICTIONS!r}, the name of the probe predictions; "
                             "rename it in select")
        draws[PREDICTIONS] = np.asarray(predictions(samples, np.asarray(x_probe), apply, likelihood))

    sample_stats = None
    fields = {name: value for name, value in info_fields(posterior.info).items()
              if name != "is_sample" and isinstance(value, (jax.Array, np.ndarray)) and np.ndim(value) == 2}
    if fields:
        steps = kept_steps(posterior, healthy, num_draws, burnin, thin, "sample_stats left out")
        if steps is not None:
            sample_stats = {
                _ARVIZ_NAMES.get(name, name): np.asarray(value)[steps, healthy[:, None]]
                for name, value in fields.items()
            }
    return az.from_dict(posterior=draws, sample_stats=sample_stats)
