"""Positive scales from unconstrained parameters: ``sigma = softplus(rho)`` or ``exp(rho)``.

Blundell et al. (2015) use the softplus, which grows linearly for large ``rho``
and so keeps Adam's steps on ``rho`` from exploding the scale; the log
parametrization ``sigma = exp(rho)`` makes the entropy linear in ``rho``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from bayesjax.types import Array

SCALE_PARAMETRIZATIONS = ("softplus", "log")


def check(parametrization: str) -> str:
    """``parametrization`` if known, else ValueError."""
    if parametrization not in SCALE_PARAMETRIZATIONS:
        raise ValueError(f"parametrization must be one of {SCALE_PARAMETRIZATIONS}, got {parametrization!r}")
    return parametrization


def positive(raw: Array, parametrization: str) -> Array:
    """The scale ``sigma > 0`` of an unconstrained ``raw``."""
    return jax.nn.softplus(raw) if parametrization == "softplus" else jnp.exp(raw)


def log_positive(raw: Array, parametrization: str) -> Array:
    """``log sigma``, without forming a tiny ``sigma`` first.

    For the softplus, ``log softplus(r) = log log1p(e^r) = r + log(1 - e^r / 2 + ...)``
    is ``r`` to within e^r / 2 < 2e-7 for r < -15, so it is used there;
    ``softplus`` itself underflows to 0 (and its log to -inf) for r < -104 in float32.
    """
    if parametrization == "softplus":
        small = raw < -15.0
        return jnp.where(small, raw, jnp.log(jax.nn.softplus(jnp.where(small, 0.0, raw))))
    return raw


def unconstrained(scale: Array, parametrization: str) -> Array:
    """The inverse map: ``raw`` with ``positive(raw) == scale``.

    The softplus inverse is ``log(expm1(s)) = s + log(-expm1(-s))`` (stable for
    small and large ``s``).
    """
    scale = jnp.asarray(scale)
    if parametrization == "softplus":
        return scale + jnp.log(-jnp.expm1(-scale))
    return jnp.log(scale)
