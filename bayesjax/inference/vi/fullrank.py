"""The full-rank Gaussian family with a Cholesky factor, for small models.

    q(theta) = N(mu, L L^T),   L lower triangular, L_ii = softplus(l_ii) (or exp), L_ij = l_ij (i > j)
    theta    = mu + L eps,     eps ~ N(0, I_D)
    H[q]     = sum_i log L_ii + D/2 log(2 pi e)

It holds a dense D x D factor over the raveled parameters, so it is meant for
models with at most a few thousand weights, and as the oracle check: for a
Gaussian target (Bayesian linear regression) its optimum is the exact
posterior (Titsias & Lazaro-Gredilla 2014, "Doubly stochastic variational
Bayes for non-conjugate inference"; Kucukelbir et al. 2017, ADVI).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from bayesjax.inference.vi import scales
from bayesjax.inference.vi.family import Family
from bayesjax.inference.vi.meanfield import gaussian_entropy_constant
from bayesjax.types import Array, Params, PRNGKey


class FullRankVIState(NamedTuple):
    """Full-rank Gaussian q and its optimizer.

    Attributes:
      mean: mu, a tree like the parameters.
      chol: ``[D, D]`` unconstrained factor over the raveled parameters (see
        :func:`cholesky`); its upper triangle is unused and stays zero.
      opt_state: the optax state over ``(mean, chol)``.
      count: number of steps taken.
    """

    mean: Params
    chol: Array
    opt_state: optax.OptState
    count: Array


def cholesky(chol: Array, parametrization: str = "softplus") -> Array:
    """The lower-triangular factor L (positive diagonal) of an unconstrained ``chol``."""
    diag = scales.positive(jnp.diagonal(chol), parametrization)
    return jnp.tril(chol, -1) + jnp.diag(diag)


def covariance(state: FullRankVIState, parametrization: str = "softplus") -> Array:
    """Sigma = L L^T over the raveled parameters (``jax.flatten_util.ravel_pytree`` order)."""
    factor = cholesky(state.chol, parametrization)
    return factor @ factor.T


def family(init_scale: float | Array = 1e-2, parametrization: str = "softplus") -> Family:
    """The full-rank Gaussian family.

    Args:
      init_scale: L = init_scale I at initialization (may be traced).
      parametrization: ``"softplus"`` or ``"log"`` for the diagonal of L.

    Returns:
      A :class:`~bayesjax.inference.vi.family.Family` over :class:`FullRankVIState`.
    """
    parametrization = scales.check(parametrization)

    def init(key: PRNGKey, params: Params) -> dict:
        del key
        flat, _ = ravel_pytree(params)
        raw = scales.unconstrained(jnp.asarray(init_scale, flat.dtype), parametrization)
        return {"mean": params, "chol": jnp.diag(jnp.full(flat.shape, raw, flat.dtype))}

    def draw(key: PRNGKey, state: FullRankVIState) -> Params:
        flat, unravel = ravel_pytree(state.mean)
        eps = jax.random.normal(key, flat.shape, flat.dtype)
        return unravel(flat + cholesky(state.chol, parametrization) @ eps)

    def entropy(state: FullRankVIState) -> Array:
        log_diag = scales.log_positive(jnp.diagonal(state.chol), parametrization)
        return jnp.sum(log_diag) + gaussian_entropy_constant(log_diag.shape[0], log_diag.dtype)

    def variance(state: FullRankVIState) -> Params:
        _, unravel = ravel_pytree(state.mean)
        return unravel(jnp.sum(jnp.square(cholesky(state.chol, parametrization)), axis=1))

    return Family("fullrank", FullRankVIState, ("mean", "chol"), init, draw, entropy,
                  lambda state: state.mean, variance)
