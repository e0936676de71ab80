"""Convergence estimators of Markov chains: split R-hat and bulk ESS of every element of a pytree of draws.

* **split R-hat** (Gelman et al., *Bayesian Data Analysis*, 3rd ed., 2013,
  §11.4): the potential scale reduction of Gelman & Rubin (1992) computed after
  cutting every chain into its two halves. Splitting turns a drift *within* a
  chain into a disagreement *between* chains, which plain R-hat misses when all
  chains drift alike.
* **bulk ESS** (Vehtari, Gelman, Simpson, Carpenter & Bürkner, 2021, "Rank-
  normalization, folding, and localization: an improved R-hat for assessing
  convergence of MCMC", *Bayesian Analysis* 16(2)): the multi-chain effective
  sample size (Geyer's initial monotone sequence, as in Stan) of the split,
  rank-normalized draws.

Both estimators are blackjax's (:func:`blackjax.diagnostics.potential_scale_reduction`,
:func:`blackjax.diagnostics.effective_sample_size`); this module only prepares
their input (time order, splitting, rank normalization) and maps them over
parameter pytrees.
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax.types import Array, ArrayTree

# blackjax is imported on first use: it builds arrays at import, which starts JAX's backend, and that must
# wait until bayesjax.sharding.use_all_cpu_cores has split the host into devices.

__all__ = ["ess", "split_rhat"]

_MIN_DRAWS = 4  # two draws per half-chain: the least the ESS estimator accepts


def _split_chains(x: Array) -> Array:
    """``[C, K, ...] -> [2C, K // 2, ...]``: first and second halves as separate chains.

    With an odd K the middle draw is dropped (as in ArviZ and Stan).
    """
    half = x.shape[1] // 2
    return jnp.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)


def _rank_normalize(x: Array) -> Array:
    """Rank-normalized draws, z = Phi^-1((r - 3/8) / (S + 1/4)), ranks pooled over chains.

    ``x`` is ``[C, K, E]``; r is the average (tie-aware) 1-based rank of a draw
    among all S = C K draws of its element (Vehtari et al. 2021, eq. 14).
    """
    num_chains, num_draws, num_events = x.shape
    pooled = x.reshape(num_chains * num_draws, num_events).T  # [E, S]
    ranked = jnp.sort(pooled, axis=-1)
    below = jax.vmap(functools.partial(jnp.searchsorted, side="left"))(ranked, pooled)
    at_or_below = jax.vmap(functools.partial(jnp.searchsorted, side="right"))(ranked, pooled)
    rank = (below + at_or_below + 1) / 2  # mean of the ordinal ranks below+1 .. at_or_below
    size = pooled.shape[-1]
    z = jax.scipy.special.ndtri((rank - 0.375) / (size + 0.25)).astype(x.dtype)
    return z.T.reshape(num_chains, num_draws, num_events)


@jax.jit
def _pooled_split_rhat(x: Array) -> Array:
    """``[C, K, E] -> [E]``."""
    from blackjax.diagnostics import potential_scale_reduction  # on first use: see above

    return potential_scale_reduction(_split_chains(x), chain_axis=0, sample_axis=1).reshape(x.shape[2:])


@jax.jit
def _pooled_ess(x: Array) -> Array:
    """``[C, K, E] -> [E]``."""
    from blackjax.diagnostics import effective_sample_size  # on first use: see above

    z = _rank_normalize(_split_chains(x))
    return effective_sample_size(z, chain_axis=0, sample_axis=1).reshape(x.shape[2:])


def _per_element(statistic: Callable[[Array], Array], samples: ArrayTree, name: str) -> ArrayTree:
    """Applies ``statistic`` (``[C, K, E] -> [E]``) to every element of a pytree of ``[C, K, ...]`` leaves.

    The leaves are concatenated along one event axis first, so a whole tree is
    one compiled call (per total size), not one per leaf shape; the event axis
    also stops blackjax's final ``squeeze`` from dropping size-1 axes.
    """
    leaves, treedef = jax.tree.flatten(samples)
    if not leaves:
        raise ValueError(f"{name} got an empty pytree")
    leaves = [jnp.asarray(leaf) for leaf in leaves]
    for leaf in leaves:
        if leaf.ndim < 2:
            raise ValueError(f"{name} needs leaves [chains, draws, ...], got a leaf of shape {leaf.shape}")
    lead = {leaf.shape[:2] for leaf in leaves}
    if len(lead) != 1:
        raise ValueError(f"{name} needs every leaf to have the same [chains, draws], got {sorted(lead)}")
    num_chains, num_draws = lead.pop()
    if num_draws < _MIN_DRAWS:
        raise ValueError(f"{name} needs at least {_MIN_DRAWS} draws per chain, got {num_draws}")
    dtype = jnp.promote_types(jnp.result_type(*leaves), jnp.float32)
    flat = jnp.concatenate([leaf.reshape(num_chains, num_draws, -1).astype(dtype) for leaf in leaves], axis=2)
    values = statistic(flat) if flat.shape[2] else jnp.zeros((0,), dtype)
    sizes = np.cumsum([math.prod(leaf.shape[2:]) for leaf in leaves])[:-1]
    parts = jnp.split(values, sizes)
    return treedef.unflatten([part.reshape(leaf.shape[2:]) for part, leaf in zip(parts, leaves)])


def split_rhat(samples: ArrayTree) -> ArrayTree:
    r"""Split R-hat of every element, from draws ``[C, K, ...]``.

    Each chain is cut into its first and second half (the middle draw dropped
    when K is odd), giving M = 2C chains of N = K // 2 draws, and the potential
    scale reduction of Gelman & Rubin (1992) is computed over them
    (:func:`blackjax.diagnostics.potential_scale_reduction`):

    .. math::

        W = \frac{1}{M} \sum_m s_m^2, \qquad
        B = \frac{N}{M - 1} \sum_m (\bar\theta_m - \bar\theta)^2, \qquad
        \hat R = \sqrt{\frac{\frac{N - 1}{N} W + \frac{1}{N} B}{W}}.

    Splitting is what makes this *split* R-hat (Gelman et al., BDA3 §11.4;
    Vehtari et al. 2021, §3): a chain that drifts, even when every chain drifts
    alike, has halves with different means and so R-hat > 1. Values above
    1.01 (Vehtari et al.) or, more leniently, 1.1 (BDA3) signal
    non-convergence. This is the classic, not the rank-normalized, statistic.
    An element constant over all draws has 0/0 = NaN.

    Args:
      samples: a pytree whose leaves are ``[C, K, ...]`` (C >= 1 chains,
        K >= 4 draws, time-ordered), e.g. from
        :func:`~bayesjax.diagnostics.draws.chain_samples`.

    Returns:
      A pytree of the same structure with leaves ``[...]``.

    Example:
      >>> import jax
      >>> import bayesjax as bj
      >>> draws = jax.random.normal(jax.random.key(0), (4, 500, 3))  # 4 independent chains
      >>> rhat = bj.diagnostics.split_rhat({"w": draws})["w"]
      >>> rhat.shape, bool(rhat.max() < 1.01)
      ((3,), True)
    """
    return _per_element(_pooled_split_rhat, samples, "split_rhat")


def ess(samples: ArrayTree) -> ArrayTree:
    r"""Bulk effective sample size of every element, pooled over chains, from draws ``[C, K, ...]``.

    Following Vehtari et al. (2021, §4.2), the chains are split in halves
    (M = 2C chains of N = K // 2 draws), the pooled draws are rank-normalized,
    :math:`z = \Phi^{-1}((r - 3/8) / (MN + 1/4))` with r the (average) rank,
    and the multi-chain ESS of Stan/Geyer is computed on z by
    :func:`blackjax.diagnostics.effective_sample_size`:

    .. math::

        \hat N_\mathrm{eff} = \frac{MN}{\hat\tau}, \qquad
        \hat\tau = -1 + 2 \sum_{t'=0}^{T} \hat P_{t'}, \qquad
        \hat P_{t'} = \hat\rho_{2t'} + \hat\rho_{2t' + 1},

    with :math:`\hat\rho_t` the autocorrelation combined over chains and T
    the end of Geyer's initial positive, monotone sequence. For independent
    draws :math:`\hat N_\mathrm{eff} \approx CK`; for an AR(1) chain with
    coefficient :math:`\rho`, :math:`\hat N_\mathrm{eff} / CK \approx (1 - \rho) / (1 + \rho)`.
    Ranks make the estimate invariant to monotone transformations and finite
    for heavy tails. An element with no variation within chains gets 0.

    Args:
      samples: a pytree whose leaves are ``[C, K, ...]`` (K >= 4, time-ordered).

    Returns:
      A pytree of the same structure with leaves ``[...]``.

    Example:
      >>> import jax
      >>> import bayesjax as bj
      >>> draws = jax.random.normal(jax.random.key(0), (4, 500, 3))  # 4 x 500 independent draws
      >>> bool(bj.diagnostics.ess({"w": draws})["w"].min() > 1500)
      True
    """
    return _per_element(_pooled_ess, samples, "ess")
