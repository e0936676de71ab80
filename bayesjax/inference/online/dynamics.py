r"""The dynamics step that loosens the belief before each update: exponential forgetting, random-walk noise.

A non-stationary stream is tracked by letting old information decay before
batch t is absorbed (Kalman 1960's predict step; Duran-Martin et al. 2024,
"A unifying framework for generalised Bayesian online learning in
non-stationary environments", the choice of conditional prior). Two
mechanisms, applied in this order to ``P = c_prior Delta + K``:

* exponential forgetting by ``gamma`` in (0, 1]: the information of past data
  is discounted, the prior's is kept,

      P_{t|t-1} = c_prior Delta + gamma K_{t-1},

  i.e. batch s counts with weight ``gamma^(t-s)``: the previous posterior
  tempered by ``gamma`` and renormalized against the prior (stabilized
  exponential forgetting, Kulhavý & Zarrop 1993; the decayed Fisher of online
  EWC, Schwarz et al. 2018). The mean is kept. It applies to every structure,
  KFAC included (``A``, ``G`` and ``m`` are all scaled by ``gamma``, so
  ``A (x) G / m`` is).
* random-walk process noise ``q >= 0``: ``theta_t = theta_{t-1} + N(0, q I)``, so

      Sigma_{t|t-1} = Sigma_{t-1} + q I,

  Kalman's predict step for a drifting parameter (Ollivier 2018; Chang et al.
  2022). Diagonal and full precisions only: ``Sigma + q I`` is not a
  Kronecker-factored precision.

``gamma = 1`` and ``q = 0`` (the defaults) leave the belief unchanged.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from bayesjax.checks import check_positive, concrete
from bayesjax.inference.laplace.curvature import Curvature, DiagCurvature, FullCurvature, KronCurvature, KronFactor
from bayesjax.inference.laplace.factorization import spd_inverse
from bayesjax.types import Array, Params


class Forgetting(NamedTuple):
    """The dynamics step's hyperparameters (either may be traced).

    Attributes:
      gamma: exponential forgetting factor in (0, 1]; 1 forgets nothing.
      process_noise: random-walk variance ``q >= 0`` added to every weight's variance.
    """

    gamma: float | Array = 1.0
    process_noise: float | Array = 0.0


def check(gamma, process_noise, inflatable: bool = True) -> Forgetting:
    """The validated :class:`Forgetting`.

    Raises:
      ValueError: a concrete ``gamma`` outside (0, 1], a negative or
        non-finite ``process_noise``, or process noise where the precision
        structure cannot represent it (``inflatable=False``: KFAC).
    """
    value = concrete(gamma)
    if value is not None and (np.ndim(value) != 0 or not np.isfinite(value) or not 0.0 < value <= 1.0):
        raise ValueError(f"forgetting (gamma) must be a scalar in (0, 1], got {gamma!r}")
    check_positive("process_noise", process_noise, allow_zero=True)
    if not inflatable and inflates(Forgetting(gamma, process_noise)):
        raise ValueError(
            "process_noise (Sigma + q I) cannot be represented by a Kronecker-factored precision; "
            "use forgetting=gamma with KFAC, or a diagonal / full structure"
        )
    return Forgetting(gamma, process_noise)


def inflates(forgetting: Forgetting) -> bool:
    """Whether the process noise may be non-zero (static: False only for a concrete 0)."""
    value = concrete(forgetting.process_noise)
    return value is None or bool(np.any(value != 0))


def forget(curvature: Curvature, num_seen: Array, prior: Params, forgetting: Forgetting,
           ) -> tuple[Curvature, Array]:
    """The predicted ``(K_{t|t-1}, m_{t|t-1})`` from ``(K_{t-1}, m_{t-1})``.

    Args:
      curvature: ``K``, the data's share of the precision.
      num_seen: ``m``, the decayed example count.
      prior: ``c_prior Delta``, the (tempered) prior precision, a tree like the
        weights with full leaf shapes.
      forgetting: the hyperparameters.
    """
    gamma, q = forgetting
    if isinstance(curvature, KronCurvature):
        factors = {key: KronFactor(gamma * f.A, gamma * f.G) for key, f in curvature.factors.items()}
        return KronCurvature(factors), gamma * num_seen
    curvature = jax.tree.map(lambda k: gamma * k, curvature)
    if not inflates(forgetting):
        return curvature, gamma * num_seen
    if isinstance(curvature, DiagCurvature):
        diag = jax.tree.map(lambda k, p: 1.0 / (1.0 / (k + p) + q) - p, curvature.diag, prior)
        return DiagCurvature(diag), gamma * num_seen
    prior_diag = ravel_pytree(prior)[0]
    covariance = spd_inverse(curvature.matrix + jnp.diag(prior_diag))
    precision = spd_inverse(covariance + q * jnp.eye(covariance.shape[0], dtype=covariance.dtype))
    return FullCurvature(precision - jnp.diag(prior_diag)), gamma * num_seen
