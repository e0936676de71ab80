"""The prior precision tuned for prediction: a grid search on the validation NLL of the GLM predictive.

The evidence (:mod:`.marglik`) scores a prior precision ``delta`` by how well
the model explains the training data; a held-out split scores it by how well
the Laplace predictive forecasts new data. On networks the two disagree,
often by orders of magnitude (the evidence prefers a weaker prior). For each
``delta`` of a grid, with the MAP and the curvature fixed, the posterior
precision becomes ``P(delta) = c_lik K + c_prior delta I`` and the score is
the validation negative log-likelihood of its linearized predictive
(:mod:`.glm`),

    NLL(delta) = -1/n sum_i log p(y_i | x_i, D; delta),    delta* = argmin_{delta in grid} NLL(delta),

as laplace-torch's ``optimize_prior_precision(method="gridsearch")``
(Daxberger et al. 2021, "Laplace Redux"; Ritter et al. 2018 tune the same way).

The grid is one traced argument: diagonal and KFAC posteriors evaluate every
value in one ``vmap`` (the network's Jacobians on the validation inputs do
not depend on ``delta``, so they are computed once and only the variances are
batched); a full posterior maps over the grid one value at a time, so that
one ``D x D`` Cholesky factor is held at once. Either way one program serves
every grid value, and :func:`tune_prior_precision` is jittable as a whole
(the sweep runs it inside its vmap over temperatures).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax import metrics
from bayesjax.checks import check_int, concrete
from bayesjax.inference.laplace import factorization, glm
from bayesjax.inference.laplace.posterior import PosteriorData
from bayesjax.types import Array, PRNGKey

DEFAULT_GRID = tuple(float(v) for v in np.logspace(-4, 4, 33))
"""Candidate prior precisions: 1e-4 to 1e4, four per decade."""

__all__ = ["DEFAULT_GRID", "PriorSearch", "tune_prior_precision", "validation_nll"]


class PriorSearch(NamedTuple):
    """What :func:`tune_prior_precision` found.

    Attributes:
      posterior: the posterior at the chosen prior precision (one scalar for every Bayesian weight).
      prior_precision: the chosen precision, a scalar (NaN when no grid value gave a finite NLL).
      nll: the validation NLL at each grid value ``[G]`` (NaN where the predictive was not finite).
    """

    posterior: PosteriorData
    prior_precision: Array
    nll: Array


def _checked_grid(grid, dtype) -> Array:
    values = concrete(grid)
    if values is not None:
        values = np.asarray(values, float)
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values) & (values > 0)):
            raise ValueError(f"grid must be a non-empty 1-D array of finite precisions > 0, got {grid!r}")
    elif jnp.ndim(grid) != 1:
        raise ValueError(f"grid must be 1-D, got shape {jnp.shape(grid)}")
    return jnp.asarray(grid, dtype)


@functools.partial(jax.jit, static_argnames=("link",))
def _nll_on_grid(post: PosteriorData, x_val: Array, y_val: Array, grid: Array, noise: Array, link: str) -> Array:
    def nll(delta):
        tuned = factorization.with_prior_precision(post, delta)
        return metrics.nll(glm.to_predictive(tuned, glm.glm_moments(tuned, x_val, noise), link), y_val)

    if post.hessian == "full":
        return jax.lax.map(nll, grid)
    return jax.vmap(nll)(grid)


def validation_nll(post: PosteriorData, x_val: Array, y_val: Array, grid=DEFAULT_GRID, link: str = "probit", *,
                   key: PRNGKey | None = None, num_samples: int = 100) -> Array:
    """The validation NLL of the GLM predictive at each prior precision of ``grid`` (one program for all).

    Args:
      post: a Laplace posterior (any Hessian structure and subset).
      x_val: validation inputs ``[n, ...]``, not seen by the fit.
      y_val: their labels or (standardized) targets ``[n]``.
      grid: candidate scalar precisions ``[G]``, each > 0.
      link: the GLM predictive's link (classification): ``"probit"``,
        ``"bridge"`` or ``"mc"``; regression is exact and ignores it.
      key: PRNG key of the ``"mc"`` link's function-space draws (default ``jax.random.key(0)``;
        the same draws at every grid value).
      num_samples: draws of the ``"mc"`` link (the other links draw none).

    Returns:
      ``[G]`` mean NLLs (nats per point; NaN where the predictive is not finite).

    Raises:
      ValueError: an unknown link, a bad grid or ``num_samples``, or inputs and labels of different lengths.
    """
    if link not in glm.LINKS:
        raise ValueError(f"link must be one of {glm.LINKS}, got {link!r}")
    num_samples = check_int("num_samples", num_samples)
    if jnp.ndim(x_val) == 0 or jnp.ndim(y_val) != 1 or jnp.shape(x_val)[0] != jnp.shape(y_val)[0]:
        raise ValueError(f"x_val [n, ...] and y_val [n] must hold the same examples, got shapes "
                         f"{jnp.shape(x_val)} and {jnp.shape(y_val)}")
    dtype = post.log_likelihood_sum.dtype
    noise = glm.function_noise(post, x_val, key, num_samples if link == "mc" else 1)
    return _nll_on_grid(post, x_val, y_val, _checked_grid(grid, dtype), noise, link)


def tune_prior_precision(post: PosteriorData, x_val: Array, y_val: Array, grid=DEFAULT_GRID,
                         link: str = "probit", *, key: PRNGKey | None = None, num_samples: int = 100) -> PriorSearch:
    """The scalar prior precision of ``grid`` whose GLM predictive has the lowest validation NLL.

    See the module docstring for the criterion. The MAP and the curvature are
    kept; only the prior precision changes (one value for every Bayesian
    weight), so the search costs no pass over the training data. Ties go to
    the first (smallest, for an increasing grid) value; non-finite NLLs never
    win. Jittable: inside a trace the checks on values are skipped.

    Args:
      post, x_val, y_val, grid, link, key, num_samples: as :func:`validation_nll`.

    Returns:
      A :class:`PriorSearch`: the tuned posterior, the chosen precision and the grid's NLLs.

    Example:
      >>> post = bj.laplace(lj, params_map, (x, y), hessian="diag")
      >>> search = tune_prior_precision(post, x_test, y_test, grid=[1.0, 10.0, 100.0, 1000.0])
      >>> float(search.prior_precision) in (1.0, 10.0, 100.0, 1000.0), search.nll.shape
      (True, (4,))
    """
    nll = validation_nll(post, x_val, y_val, grid, link, key=key, num_samples=num_samples)
    grid = jnp.asarray(grid, nll.dtype)
    finite = jnp.isfinite(nll)
    best = jnp.argmin(jnp.where(finite, nll, jnp.inf))
    precision = jnp.where(jnp.any(finite), grid[best], jnp.nan)
    if concrete(precision) is not None and not np.isfinite(concrete(precision)):
        raise ValueError("no prior precision of the grid gave a finite validation NLL")
    return PriorSearch(factorization.with_prior_precision(post, precision), precision, nll)
