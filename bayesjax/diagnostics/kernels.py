"""The convergence estimators on one array of draws, ``[C, K, E] -> [E]``, and their map over pytrees.

C chains of K time-ordered draws of E scalar quantities. The estimators are
those of Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021, "Rank-
normalization, folding, and localization: an improved R-hat for assessing
convergence of MCMC", *Bayesian Analysis* 16(2)), computed as ArviZ computes
them (``arviz.rhat``, ``arviz.ess``, ``arviz.mcse``), from four ways of
preparing the draws:

* **split**: each chain's first and second halves become two chains, M = 2C
  chains of N = K // 2 draws (the middle draw dropped when K is odd);
* **rank normalization** (§4.1, Blom's plotting position): every draw replaced by
  :math:`z = \\Phi^{-1}((r - 3/8) / (S + 1/4))`, r its average rank among all
  S = MN split draws, which makes a statistic invariant to monotone
  transformations and finite for heavy tails;
* **folding** (§4.1): :math:`|\\theta - \\mathrm{median}(\\theta)|`, which turns a
  difference in scale between chains into a difference in location;
* **quantile indicators** (§4.3): :math:`I(\\theta \\le q_p)`, q_p the
  p-quantile of all C K draws (linear interpolation, type 7).

Two cores do the arithmetic, blackjax's
:func:`blackjax.diagnostics.potential_scale_reduction` (Gelman & Rubin 1992)
and :func:`blackjax.diagnostics.effective_sample_size` (Geyer's initial
monotone sequence, as in Stan). Every kernel is jitted and elementwise over E;
:func:`per_element` applies one to every element of a pytree of draws, as one
compiled call.
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

__all__ = [
    "MIN_DRAWS",
    "TAIL_PROBS",
    "bulk_ess",
    "mcse_mean",
    "mcse_quantile",
    "per_element",
    "rank_normalize",
    "rank_rhat",
    "report",
    "split_chains",
    "split_rhat",
    "tail_ess",
]

MIN_DRAWS = 4
"""The fewest draws per chain the estimators accept: two per half-chain."""

TAIL_PROBS = (0.05, 0.95)
"""The quantiles whose indicator ESS makes the tail ESS (Vehtari et al. 2021, §4.3)."""

_ONE_SIGMA = (0.15865525393145707, 0.8413447460685429)  # Phi(-1), Phi(1): a +-1 sd interval
_BISECTIONS = 60  # halvings of [0, 1] in _beta_ppf: past float resolution


def split_chains(x: Array) -> Array:
    """``[C, K, ...] -> [2C, K // 2, ...]``: first and second halves as separate chains (middle draw dropped)."""
    half = x.shape[1] // 2
    return jnp.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)


def rank_normalize(x: Array) -> Array:
    """``[M, N, E]``: z = Phi^-1((r - 3/8) / (S + 1/4)), r the average (tie-aware) rank among all S = MN draws."""
    num_chains, num_draws, num_events = x.shape
    pooled = x.reshape(num_chains * num_draws, num_events).T  # [E, S]
    ranked = jnp.sort(pooled, axis=-1)
    below = jax.vmap(functools.partial(jnp.searchsorted, side="left"))(ranked, pooled)
    at_or_below = jax.vmap(functools.partial(jnp.searchsorted, side="right"))(ranked, pooled)
    rank = (below + at_or_below + 1) / 2  # mean of the ordinal ranks below+1 .. at_or_below
    size = pooled.shape[-1]
    z = jax.scipy.special.ndtri((rank - 0.375) / (size + 0.25)).astype(x.dtype)
    return z.T.reshape(num_chains, num_draws, num_events)


def _scale_reduction(chains: Array) -> Array:
    """Gelman & Rubin's R-hat of ``[M, N, E]`` (already split) -> ``[E]``."""
    from blackjax.diagnostics import potential_scale_reduction  # on first use: see above

    return potential_scale_reduction(chains, chain_axis=0, sample_axis=1).reshape(chains.shape[2:])


def _ess(chains: Array) -> Array:
    """Geyer/Stan multi-chain ESS of ``[M, N, E]`` (already split) -> ``[E]``; 0 without within-chain variation."""
    from blackjax.diagnostics import effective_sample_size  # on first use: see above

    return effective_sample_size(chains, chain_axis=0, sample_axis=1).reshape(chains.shape[2:])


def _pooled(x: Array) -> Array:
    """``[C, K, E] -> [CK, E]``."""
    return x.reshape(-1, x.shape[2])


def _stacked(statistic: Callable[[Array], Array], *parts: Array) -> list[Array]:
    """``statistic`` of several ``[M, N, E]`` arrays as one call on their concatenation: one trace, not one per part."""
    return jnp.split(statistic(jnp.concatenate(parts, axis=2)), len(parts))


def _ranks(split: Array) -> list[Array]:
    """The rank-normalized split draws and the rank-normalized folded split draws."""
    folded = jnp.abs(split - jnp.median(_pooled(split), axis=0))
    return jnp.split(rank_normalize(jnp.concatenate([split, folded], axis=2)), 2, axis=2)


def _indicators(x: Array, prob: Array) -> Array:
    """The split indicators I(x <= q_prob), q_prob the type-7 quantile of all C K draws."""
    return split_chains((x <= jnp.quantile(_pooled(x), prob, axis=0)).astype(x.dtype))


def _mcse_mean(x: Array, mean_ess: Array) -> Array:
    """sd of all C K draws / sqrt(ESS of the mean); 0 where the sd is 0."""
    sd = jnp.std(_pooled(x), axis=0, ddof=1)
    return jnp.where(sd == 0, 0.0, sd / jnp.sqrt(mean_ess)).astype(x.dtype)


@jax.jit
def split_rhat(x: Array) -> Array:
    """Split R-hat, Gelman & Rubin's statistic on the split chains (BDA3 §11.4)."""
    return _scale_reduction(split_chains(x))


@jax.jit
def rank_rhat(x: Array) -> Array:
    """max(bulk R-hat, tail R-hat): split R-hat of the rank-normalized and of the folded, rank-normalized draws."""
    bulk, tail = _stacked(_scale_reduction, *_ranks(split_chains(x)))
    return jnp.maximum(bulk, tail)


@jax.jit
def bulk_ess(x: Array) -> Array:
    """ESS of the split, rank-normalized draws."""
    return _ess(rank_normalize(split_chains(x)))


@jax.jit
def tail_ess(x: Array, low: Array, high: Array) -> Array:
    """min of the quantile ESS (ESS of the split indicators) at ``low`` and at ``high``."""
    return jnp.minimum(*_stacked(_ess, _indicators(x, low), _indicators(x, high)))


@jax.jit
def mcse_mean(x: Array) -> Array:
    """sd / sqrt(ESS of the split draws themselves); 0 for an element constant over all draws."""
    return _mcse_mean(x, _ess(split_chains(x)))


def _beta_ppf(p: float, a: Array, b: Array) -> Array:
    """The p-quantile of Beta(a, b), elementwise, by bisection on the regularized incomplete beta function."""

    def halve(_, bounds):
        low, high = bounds
        middle = (low + high) / 2
        below = jax.scipy.special.betainc(a, b, middle) < p
        return jnp.where(below, middle, low), jnp.where(below, high, middle)

    low, high = jax.lax.fori_loop(0, _BISECTIONS, halve, (jnp.zeros_like(a), jnp.ones_like(a)))
    return (low + high) / 2


@jax.jit
def mcse_quantile(x: Array, prob: Array) -> Array:
    """Half the distance between the order statistics at the ends of a +-1 sd Beta interval for F(q_prob)."""
    ess = _ess(_indicators(x, prob))
    a, b = ess * prob + 1, ess * (1 - prob) + 1
    ordered = jnp.sort(_pooled(x), axis=0)
    size = ordered.shape[0]
    first = jnp.floor(jnp.maximum(_beta_ppf(_ONE_SIGMA[0], a, b) * size - 1, 0)).astype(jnp.int32)
    last = jnp.ceil(jnp.minimum(_beta_ppf(_ONE_SIGMA[1], a, b) * size - 1, size - 1)).astype(jnp.int32)
    at = lambda index: jnp.take_along_axis(ordered, index[None], axis=0)[0]  # noqa: E731
    return (at(last) - at(first)) / 2


@jax.jit
def report(x: Array) -> dict[str, Array]:
    """Every statistic a diagnostics report shows: ``{name: [E]}``, with one R-hat and one ESS call in all."""
    split = split_chains(x)
    z, z_folded = _ranks(split)
    rhat, bulk_rhat, tail_rhat = _stacked(_scale_reduction, split, z, z_folded)
    ess, low, high, mean_ess = _stacked(_ess, z, _indicators(x, TAIL_PROBS[0]), _indicators(x, TAIL_PROBS[1]), split)
    return {"rhat": rhat, "rank_rhat": jnp.maximum(bulk_rhat, tail_rhat), "ess": ess,
            "tail_ess": jnp.minimum(low, high), "mcse": _mcse_mean(x, mean_ess)}


def per_element(statistic: Callable[[Array], ArrayTree], samples: ArrayTree, name: str) -> ArrayTree:
    """Applies ``statistic`` (``[C, K, E] -> [E]``, or a dict of them) to every element of a pytree of draws.

    The leaves (``[C, K, ...]``, equal C and K) are concatenated along one
    event axis first, so a whole tree is one compiled call per total size, not
    one per leaf shape. An element with a NaN draw gets NaN. Works under
    ``jax.jit``: only shapes are inspected.

    Args:
      statistic: the kernel.
      samples: the draws.
      name: the public function, for error messages.

    Returns:
      A pytree like ``samples`` with leaves ``[...]`` (trailing shapes), or a
      dict of such pytrees when ``statistic`` returns a dict.

    Raises:
      ValueError: an empty tree, a leaf without ``[chains, draws]`` axes,
        leaves that disagree on them, or fewer than :data:`MIN_DRAWS` draws.
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
    if num_draws < MIN_DRAWS:
        raise ValueError(f"{name} needs at least {MIN_DRAWS} draws per chain, got {num_draws}")
    dtype = jnp.promote_types(jnp.result_type(*leaves), jnp.float32)
    flat = jnp.concatenate([leaf.reshape(num_chains, num_draws, -1).astype(dtype) for leaf in leaves], axis=2)
    if flat.shape[2]:
        missing = jnp.any(jnp.isnan(flat), axis=(0, 1))
        values = jax.tree.map(lambda v: jnp.where(missing, jnp.nan, v), statistic(flat))
    else:  # no elements at all: the kernel's output structure, with nothing in it
        values = jax.tree.map(lambda v: v[:0], statistic(jnp.ones((num_chains, num_draws, 1), dtype)))
    sizes = np.cumsum([math.prod(leaf.shape[2:]) for leaf in leaves])[:-1]

    def unflatten(value: Array) -> ArrayTree:
        parts = jnp.split(value, sizes)
        return treedef.unflatten([part.reshape(leaf.shape[2:]) for part, leaf in zip(parts, leaves)])

    return jax.tree.map(unflatten, values)
