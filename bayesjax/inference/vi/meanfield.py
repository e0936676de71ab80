"""The mean-field (diagonal) Gaussian family: Bayes by Backprop's q.

    q(theta) = prod_i N(theta_i | mu_i, sigma_i^2),    sigma_i = softplus(rho_i) or exp(rho_i)
    theta    = mu + sigma * eps,                       eps ~ N(0, I)   (drawn leaf by leaf)
    H[q]     = sum_i log sigma_i + D/2 log(2 pi e)

Blundell et al. (2015), "Weight uncertainty in neural networks"; Hinton & van
Camp (1993). For a Gaussian target N(m, Lambda^-1) the KL(q || p)-optimal
mean-field q has mean m and variances 1 / Lambda_ii, the conditional
variances, which are smaller than the marginal variances (Lambda^-1)_ii
whenever the posterior is correlated: mean-field VI underestimates
uncertainty (Bishop 2006, PRML sec. 10.1.2).
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
from bayesjax.trees import num_params
from bayesjax.types import Array, Params, PRNGKey


class MeanFieldVIState(NamedTuple):
    """Mean-field Gaussian q and its optimizer.

    Attributes:
      mean: mu, a tree like the parameters.
      rho: unconstrained scales, sigma = softplus(rho) (or exp(rho)).
      opt_state: the optax state over ``(mean, rho)``.
      count: number of steps taken.
    """

    mean: Params
    rho: Params
    opt_state: optax.OptState
    count: Array


def float_dtype(tree: Params):
    """The floating dtype that the leaves of ``tree`` promote to."""
    return jnp.result_type(*jax.tree.leaves(tree), float)


def gaussian_entropy_constant(dimension: int, dtype) -> Array:
    """D/2 log(2 pi e), the part of a D-dimensional Gaussian's entropy that is free of Sigma."""
    return jnp.asarray(0.5 * dimension * (1.0 + math.log(2 * math.pi)), dtype)


def family(init_scale: float | Array = 1e-2, parametrization: str = "softplus") -> Family:
    """The mean-field Gaussian family.

    Args:
      init_scale: sigma at initialization, every weight (may be traced).
      parametrization: ``"softplus"`` or ``"log"`` for sigma(rho).

    Returns:
      A :class:`~bayesjax.inference.vi.family.Family` over :class:`MeanFieldVIState`.
    """
    parametrization = scales.check(parametrization)

    def init(key: PRNGKey, params: Params) -> dict:
        del key
        rho = jax.tree.map(
            lambda p: jnp.full(jnp.shape(p), scales.unconstrained(jnp.asarray(init_scale, p.dtype), parametrization),
                               p.dtype),
            params,
        )
        return {"mean": params, "rho": rho}

    def stddev(state: MeanFieldVIState) -> Params:
        return jax.tree.map(lambda r: scales.positive(r, parametrization), state.rho)

    def draw(key: PRNGKey, state: MeanFieldVIState) -> Params:
        eps = normal_like(key, state.mean)
        return jax.tree.map(lambda m, s, e: m + s * e, state.mean, stddev(state), eps)

    def entropy(state: MeanFieldVIState) -> Array:
        log_sigma = sum(jnp.sum(scales.log_positive(r, parametrization)) for r in jax.tree.leaves(state.rho))
        return log_sigma + gaussian_entropy_constant(num_params(state.mean), float_dtype(state.mean))

    def variance(state: MeanFieldVIState) -> Params:
        return jax.tree.map(jnp.square, stddev(state))

    return Family("meanfield", MeanFieldVIState, ("mean", "rho"), init, draw, entropy,
                  lambda state: state.mean, variance, factorized=True)


def stddev(state: MeanFieldVIState, parametrization: str = "softplus") -> Params:
    """The per-weight standard deviations sigma of a mean-field state."""
    return jax.tree.map(lambda r: scales.positive(r, parametrization), state.rho)
