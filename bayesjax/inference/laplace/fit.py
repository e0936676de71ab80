"""``bj.laplace``: the post-hoc Laplace approximation of a trained network."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from bayesjax.inference.laplace import algorithm
from bayesjax.inference.laplace import subset as subsets
from bayesjax.inference.laplace.posterior import LaplacePosterior, Target
from bayesjax.likelihoods import check_targets
from bayesjax.logjoint import LogJoint
from bayesjax.run import _check_data
from bayesjax.types import Batch, Params

MAX_FULL_PARAMS = 20_000
"""Largest D for ``hessian="full"`` (a D x D float32 matrix of 1.6 GB)."""


@functools.partial(jax.jit, static_argnames=("target", "hessian", "curvature", "subset", "chunk_size"))
def _fit(state, data, *, target: Target, hessian, curvature, subset, chunk_size):
    return algorithm.step(state, data, log_joint=target.log_joint, hessian=hessian, curvature=curvature,
                          subset=subset, chunk_size=chunk_size)


def laplace(
    log_joint: LogJoint,
    params_map: Params,
    data: Batch,
    hessian: str = "kfac",
    curvature: str = "ggn",
    subset="all",
    *,
    prior_precision=None,
    chunk_size: int | None = None,
) -> LaplacePosterior:
    """Laplace approximation at a MAP estimate (MacKay 1992; Daxberger et al. 2021).

    ``q(theta) = N(theta_MAP, P^{-1})`` on the Bayesian weights with

        tempering="posterior":   P = (K + Delta) / T
        tempering="likelihood":  P = K / T + Delta

    where ``K`` is the GGN (or empirical Fisher) of the log-likelihood summed
    over ``data`` (scaled by ``N / len(data)`` if ``data`` is not all
    ``num_data`` examples) and ``Delta`` the Gaussian prior's precision. The
    curvature is computed matrix-free, in chunks of ``chunk_size`` examples
    (default: sized to ~64 MB of intermediates), so memory does not grow with
    the data.

    Args:
      log_joint: the tempered target from ``bj.log_joint`` (its ``apply``,
        ``likelihood``, Gaussian ``prior``, ``num_data``, ``temperature`` and
        ``tempering`` are read).
      params_map: the MAP (mode of the tempered log-joint).
      data: ``(x, y)``, usually the training set.
      hessian: ``"kfac"`` (Kronecker-factored per dense layer), ``"diag"`` or
        ``"full"`` (dense ``D x D``; ``D <= 20,000``).
      curvature: ``"ggn"`` (generalized Gauss-Newton) or ``"ef"`` (empirical Fisher).
      subset: ``"all"``, ``"last_layer"`` (the last ``Dense_<k>``; the rest
        fixed at the MAP) or a sequence of top-level module names.
      prior_precision: overrides the prior's precision (scalar or a tree like
        the Bayesian weights); needed for non-Gaussian priors.
      chunk_size: examples per chunk.

    Returns:
      A :class:`~bayesjax.inference.laplace.posterior.LaplacePosterior` with
      ``sample``, ``predictive_glm``, ``log_marginal_likelihood`` and
      ``optimize_prior_precision``.

    Raises:
      ValueError: unknown options, KFAC on layers other than flax ``Dense``,
        a full Hessian over more than 20,000 weights, a non-Gaussian prior
        without ``prior_precision``, or data that do not fit the likelihood.

    Example:
      >>> post = bj.laplace(lj, params_map, (ds.x_train, ds.y_train), hessian="kfac")
      >>> post = post.optimize_prior_precision()
      >>> pred = post.predictive_glm(ds.x_test, link="probit")
      >>> pred_mc = bj.predictive(model.apply, post.sample(key, 100), ds.x_test, lj.likelihood)
    """
    if not isinstance(log_joint, LogJoint):
        raise TypeError(f"laplace needs a LogJoint from bj.log_joint, got {type(log_joint).__name__}")
    algorithm._check_options(hessian, curvature)
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    x, y = _check_data(data)
    outputs = jax.eval_shape(log_joint.apply, params_map, jax.ShapeDtypeStruct((1,) + x.shape[1:], x.dtype))
    check_targets(log_joint.likelihood, y, outputs.shape[-1])
    subset = subset if isinstance(subset, str) else tuple(subset)
    names = subsets.resolve(subset, params_map)
    dim = subsets.num_params(subsets.select(params_map, names))
    if hessian == "full" and dim > MAX_FULL_PARAMS:
        raise ValueError(
            f"hessian='full' over {dim} weights needs a {dim} x {dim} matrix; the limit is {MAX_FULL_PARAMS}. "
            "Use hessian='kfac' or 'diag', or subset='last_layer'."
        )
    if prior_precision is None and log_joint.prior.stddev is None:
        raise ValueError(
            "the Laplace approximation needs a Gaussian prior (bj.priors.gaussian or bj.priors.layerwise, "
            "which expose stddev) or an explicit prior_precision="
        )
    state = algorithm.init(params_map, hessian, subset)
    state, _ = _fit(state, (jnp.asarray(x), jnp.asarray(y)), target=Target(log_joint), hessian=hessian,
                    curvature=curvature, subset=subset, chunk_size=chunk_size)
    return algorithm.from_state(log_joint, state, hessian, curvature, subset, prior_precision, chunk_size)

