"""The low-rank-plus-diagonal Gaussian family.

    q(theta) = N(mu, diag(sigma^2) + U U^T),   U: D x r,   sigma = softplus(rho) (or exp)
    theta    = mu + sigma * eps_1 + U eps_2,   eps_1 ~ N(0, I_D),  eps_2 ~ N(0, I_r)
    H[q]     = sum_i log sigma_i + 1/2 log det(I_r + U^T diag(sigma^-2) U) + D/2 log(2 pi e)

(matrix determinant lemma). U is kept leaf by leaf, each leaf of shape
``leaf.shape + (r,)``, so draws and the r x r determinant never ravel the
parameters and every leaf keeps its sharding. Rezende & Mohamed's
"factor" covariance; Ong, Nott & Smith (2018), "Gaussian variational
approximation with a factor covariance structure"; Tomczak et al. (2020).

U starts small and random: at U = 0 the expected ELBO gradient with respect
to U vanishes (E[grad f(theta) eps_2^T] = 0 when theta does not depend on
eps_2, and so does the entropy's), a saddle that U = 0 would never leave.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from bayesjax.inference.vi import scales
from bayesjax.inference.vi.family import Family
from bayesjax.noise import normal_like
from bayesjax.inference.vi.meanfield import float_dtype, gaussian_entropy_constant
from bayesjax.trees import num_params
from bayesjax.types import Array, Params, PRNGKey


class LowRankVIState(NamedTuple):
    """Low-rank-plus-diagonal Gaussian q and its optimizer.

    Attributes:
      mean: mu, a tree like the parameters.
      rho: unconstrained diagonal scales, sigma = softplus(rho) (or exp(rho)).
      factor: U, a tree whose leaves are ``leaf.shape + (rank,)``.
      opt_state: the optax state over ``(mean, rho, factor)``.
      count: number of steps taken.
    """

    mean: Params
    rho: Params
    factor: Params
    opt_state: optax.OptState
    count: Array


def family(rank: int, init_scale: float | Array = 1e-2, parametrization: str = "softplus") -> Family:
    """The low-rank-plus-diagonal Gaussian family.

    At initialization sigma = init_scale / sqrt(2) and the entries of U are
    N(0, init_scale^2 / (2 r)), so every marginal variance starts near
    init_scale^2.

    Args:
      rank: r, the number of columns of U.
      init_scale: the marginal standard deviation at initialization (may be traced).
      parametrization: ``"softplus"`` or ``"log"`` for sigma(rho).

    Returns:
      A :class:`~bayesjax.inference.vi.family.Family` over :class:`LowRankVIState`.
    """
    parametrization = scales.check(parametrization)

    def init(key: PRNGKey, params: Params) -> dict:
        def raw(p):
            scale = jnp.asarray(init_scale, p.dtype) / math.sqrt(2)
            return jnp.full(jnp.shape(p), scales.unconstrained(scale, parametrization), p.dtype)

        shapes = jax.tree.map(lambda p: jnp.zeros(jnp.shape(p) + (rank,), p.dtype), params)
        noise = normal_like(key, shapes)
        factor = jax.tree.map(lambda z: z * (jnp.asarray(init_scale, z.dtype) / math.sqrt(2 * rank)), noise)
        return {"mean": params, "rho": jax.tree.map(raw, params), "factor": factor}

    def sigma(state: LowRankVIState) -> Params:
        return jax.tree.map(lambda r: scales.positive(r, parametrization), state.rho)

    def draw(key: PRNGKey, state: LowRankVIState) -> Params:
        diag_key, factor_key = jax.random.split(key)
        eps = normal_like(diag_key, state.mean)
        eps_factor = jax.random.normal(factor_key, (rank,), float_dtype(state.mean))
        return jax.tree.map(
            lambda m, s, e, u: m + s * e + u @ eps_factor.astype(u.dtype), state.mean, sigma(state), eps,
            state.factor,
        )

    def entropy(state: LowRankVIState) -> Array:
        dtype = float_dtype(state.mean)
        log_sigma = sum(jnp.sum(scales.log_positive(r, parametrization)) for r in jax.tree.leaves(state.rho))
        whitened = jax.tree.map(lambda u, s: u / s[..., None], state.factor, sigma(state))
        gram = sum(
            jnp.einsum("...r,...s->rs", w, w).astype(dtype) for w in jax.tree.leaves(whitened)
        ) + jnp.eye(rank, dtype=dtype)
        log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(jnp.linalg.cholesky(gram))))
        return log_sigma + 0.5 * log_det + gaussian_entropy_constant(num_params(state.mean), dtype)

    def variance(state: LowRankVIState) -> Params:
        return jax.tree.map(lambda s, u: s**2 + jnp.sum(u**2, axis=-1), sigma(state), state.factor)

    return Family("lowrank", LowRankVIState, ("mean", "rho", "factor"), init, draw, entropy,
                  lambda state: state.mean, variance)
