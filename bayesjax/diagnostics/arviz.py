"""Export of a Markov chain run to ArviZ: the draws as ``posterior``, the per-step info as ``sample_stats``."""
from __future__ import annotations

import warnings
from typing import Callable

import jax
import numpy as np

from bayesjax.diagnostics.draws import chain_draws, info_fields
from bayesjax.diagnostics.spaces import leaf_subset, select_draws
from bayesjax.driver.posterior import Posterior
from bayesjax.types import ArrayTree, Params

__all__ = ["to_arviz"]

_ARVIZ_NAMES = {  # bayesjax / blackjax info fields -> ArviZ's sample_stats conventions
    "is_divergent": "diverging",
    "log_density": "lp",
    "num_integration_steps": "n_steps",
    "num_trajectory_expansions": "tree_depth",
}


def _kept_steps(posterior: Posterior, healthy: np.ndarray, num_draws: int, burnin: int, thin: int):
    """Step indices ``[C, K]`` whose positions are the draws, or None if burnin/thin do not fit the run."""
    fields = info_fields(posterior.info)
    if not fields:
        return None
    num_steps = np.shape(jax.tree.leaves(posterior.info)[0])[0]
    t = np.arange(1, num_steps + 1)[:, None]
    keep = (t > burnin) & ((t - burnin) % thin == 0)
    is_sample = fields.get("is_sample")
    if is_sample is not None:
        keep = keep & np.asarray(is_sample, bool)
    keep = np.broadcast_to(keep, (num_steps, posterior.num_chains))[:, healthy]
    collected = np.asarray(posterior.state.num_collected)[healthy]
    if np.any(keep.sum(0) != collected):
        return None
    order = np.argsort(~keep, axis=0, kind="stable")  # kept steps first, in time order
    rows = collected[None, :] - num_draws + np.arange(num_draws)[:, None]
    return np.take_along_axis(order, rows, axis=0).T  # [C, K]


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


def to_arviz(posterior: Posterior, select: Callable[[Params], ArrayTree] | None = None, *,
             burnin: int = 0, thin: int = 1):
    """The chains as an :class:`arviz.InferenceData` (needs ``pip install 'bayesjax[arviz]'``).

    The ``posterior`` group holds one variable per leaf of ``select(params)``,
    named by its path (``"Dense_0.kernel"``), with dims ``(chain, draw, ...)``;
    diverged chains are excluded with a warning. Per-step info fields that are
    one number per step and chain (``acceptance_rate``, ``step_size``,
    ``is_divergent`` as ``diverging``, ``log_density`` as ``lp``, ...) go into
    ``sample_stats`` at the steps whose positions are the draws, located from
    the run's ``burnin`` and ``thin``; when those do not reproduce the number of
    collected draws, ``sample_stats`` is left out with a warning.

    Args:
      posterior: a Markov chain :class:`~bayesjax.driver.posterior.Posterior`.
      select: maps one sample's params to a pytree of what to export. Default:
        the first (up to) 20 entries of every leaf, flattened (use
        ``lambda p: p`` for every weight).
      burnin: the run's ``burnin``.
      thin: the run's ``thin``.

    Returns:
      An ``arviz.InferenceData``.

    Raises:
      ImportError: arviz is not installed.

    Example:
      >>> idata = bj.diagnostics.to_arviz(linear_post, burnin=20)
      >>> idata.posterior["w"].shape
      (4, 40, 3)
    """
    try:
        import arviz as az
    except ImportError as error:
        raise ImportError("to_arviz needs arviz: pip install 'bayesjax[arviz]'") from error
    samples, healthy = chain_draws(posterior, "ArviZ export")
    num_draws = jax.tree.leaves(samples)[0].shape[1]
    chosen = select_draws(select or leaf_subset, samples)
    leaves, _ = jax.tree_util.tree_flatten_with_path(chosen)
    draws = {_leaf_name(path): np.asarray(leaf) for path, leaf in leaves}

    sample_stats = None
    fields = {name: value for name, value in info_fields(posterior.info).items()
              if name != "is_sample" and isinstance(value, (jax.Array, np.ndarray)) and np.ndim(value) == 2}
    if fields:
        steps = _kept_steps(posterior, healthy, num_draws, burnin, thin)
        if steps is None:
            warnings.warn(
                f"sample_stats left out: burnin={burnin}, thin={thin} do not reproduce the collected "
                "draws; pass the burnin and thin given to bj.run", UserWarning, stacklevel=2,
            )
        else:
            sample_stats = {
                _ARVIZ_NAMES.get(name, name): np.asarray(value)[steps, healthy[:, None]]
                for name, value in fields.items()
            }
    return az.from_dict(posterior=draws, sample_stats=sample_stats)

