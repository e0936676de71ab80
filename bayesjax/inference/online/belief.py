r"""The Gaussian belief of online learning, and its view as a Laplace posterior.

Every online method carries a Gaussian belief over the weights,

    q_t(theta) = N(theta | mu_t, P_t^{-1}),      P_t = c_prior Delta + K_t,

where ``Delta`` is the precision of the log-joint's Gaussian prior,
``c_prior`` the factor on the log-prior in the tempered target
(:attr:`~bayesjax.logjoint.LogJoint.prior_weight`: ``1 / T`` for
``tempering="posterior"``, 1 for ``"likelihood"``) and ``K_t`` the
information the data have added, in one of the Laplace package's curvature
structures (:class:`~bayesjax.inference.laplace.DiagCurvature`,
``FullCurvature``, ``KronCurvature``). Each batch's log-likelihood enters with
the factor ``c_lik = w_t / T`` (``w_t`` the per-step likelihood weight times
:attr:`~bayesjax.logjoint.LogJoint.likelihood_weight`), so
with ``w_t = 1`` and no forgetting the belief after the last batch targets the
same tempered posterior as every other method in the package:

    p_T(theta | D_{1:t}) ∝ p(D_t | theta)^{1/T} p_T(theta | D_{1:t-1}),
    p_T(theta | D_0) ∝ p(theta)^{c_prior}.

The belief is read through :class:`~bayesjax.inference.laplace.LaplacePosterior`
(with ``P = K + c_prior Delta``: unit curvature coefficient), so sampling, the
linearized (GLM) predictive and the structured algebra of diag / full / KFAC
precisions are the Laplace package's own. For KFAC, ``K`` is stored as
Kronecker factors summed over the examples seen, ``A = sum a a^T`` and
``G = c_lik sum g g^T``, with the (decayed) example count ``m``: the layer's
block is ``A (x) G / m`` as in the Laplace package (Martens & Grosse 2015;
Ritter, Botev & Barber 2018).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from bayesjax.checks import check_positive
from bayesjax.inference.laplace.approximation import LaplacePosterior
from bayesjax.inference.laplace.curvature import (
    Curvature,
    DiagCurvature,
    FullCurvature,
    KronCurvature,
    KronFactor,
    accumulate,
    zeros,
)
from bayesjax.inference.laplace.factorization import coefficients, factorize, kron_eigenvalues, kron_layers
from bayesjax.inference.laplace.layers import get_path, set_path
from bayesjax.inference.laplace.posterior import LogJointKey, normalize_prior_precision
from bayesjax.inference.online import dynamics, prequential
from bayesjax.inference.vi.meanfield import float_dtype
from bayesjax.logjoint import LogJoint
from bayesjax.types import Array, Batch, Params

LikelihoodWeight = float | Array | Callable[[Array], Array]
"""A constant likelihood weight ``w`` or a schedule ``step count -> w``."""

HESSIAN_OF = {DiagCurvature: "diag", FullCurvature: "full", KronCurvature: "kfac"}


def check_log_joint(log_joint: LogJoint) -> None:
    """TypeError / ValueError unless ``log_joint`` is a LogJoint with a Gaussian prior."""
    if not isinstance(log_joint, LogJoint):
        raise TypeError(f"online learning needs a LogJoint from bj.log_joint, got {type(log_joint).__name__}")
    if log_joint.prior.stddev is None:
        raise ValueError(
            "online learning starts from a Gaussian belief: the log-joint needs a Gaussian prior "
            "(bj.priors.gaussian or bj.priors.layerwise, which expose stddev)"
        )


def checked_options(log_joint: LogJoint, forgetting, process_noise, likelihood_weight: LikelihoodWeight,
                    predictive: str, num_predictive_samples: int, inflatable: bool = True) -> dict:
    """The options every online method takes, validated (see the builders' docstrings).

    Raises:
      TypeError / ValueError: not a LogJoint with a Gaussian prior, a constant
        ``likelihood_weight`` that is not finite and > 0, bad forgetting
        (:func:`.dynamics.check`) or predictive (:func:`.prequential.check`).
    """
    check_log_joint(log_joint)
    if not callable(likelihood_weight):
        check_positive("likelihood_weight", likelihood_weight)
    return dict(
        forgetting=dynamics.check(forgetting, process_noise, inflatable=inflatable),
        likelihood_weight=likelihood_weight,
        predictive=predictive,
        num_predictive_samples=prequential.check(predictive, num_predictive_samples),
    )


def likelihood_coefficient(log_joint: LogJoint, likelihood_weight: LikelihoodWeight, count: Array) -> Array:
    """``c_lik = w_t / T``, the factor on batch t's log-likelihood (``count`` = t - 1 batches seen).

    The step's weight ``w_t`` times the log-joint's
    :attr:`~bayesjax.logjoint.LogJoint.likelihood_weight` ``1 / T``.
    """
    weight = likelihood_weight(count) if callable(likelihood_weight) else likelihood_weight
    return weight * log_joint.likelihood_weight


def batch_log_likelihood(log_joint: LogJoint, params: Params, batch: Batch) -> Array:
    """``sum_{i in B} log p(y_i | x_i, params)``: untempered and, unlike ``LogJoint.log_likelihood``, unscaled."""
    x, y = batch
    return jnp.sum(log_joint.likelihood.log_prob(log_joint.apply(params, x), y))


def prior_precision(log_joint: LogJoint, params: Params, hessian: str) -> Params:
    """``Delta``, the Gaussian prior's per-leaf precision (a scalar per leaf for KFAC)."""
    return normalize_prior_precision(None, params, log_joint, hessian)


def initial_curvature(hessian: str, params: Params) -> Curvature:
    """``K_0 = 0``: the belief before any data is the (tempered) prior."""
    return zeros(hessian, params)


def laplace_view(log_joint: LogJoint, mean: Params, curvature: Curvature, num_seen: Array,
                 c_prior: Array) -> LaplacePosterior:
    """The belief ``N(mean, (K + c_prior Delta)^{-1})`` as a factorized :class:`LaplacePosterior`.

    Args:
      log_joint: supplies the model, likelihood and prior.
      mean: the belief's mean.
      curvature: ``K`` (already carrying ``c_lik``).
      num_seen: the (decayed) example count ``m`` that divides KFAC factors.
      c_prior: the factor on the prior precision.
    """
    hessian = HESSIAN_OF[type(curvature)]
    dtype = float_dtype(mean)
    count = jnp.where(num_seen > 0, num_seen, 1.0).astype(dtype)
    one = jnp.ones((), dtype)
    post = LaplacePosterior(
        mean, curvature, prior_precision(log_joint, mean, hessian), one, jnp.asarray(c_prior, dtype), count,
        count, jnp.zeros((), dtype), one, factor=None, log_joint_key=LogJointKey(log_joint), hessian=hessian,
        curvature_type="ggn", subset=None,
    )
    return dataclasses.replace(post, factor=factorize(post))


def apply_precision(post: LaplacePosterior, tree: Params, power: int) -> Params:
    """``P v`` (``power=1``) or ``P^{-1} v`` (``power=-1``) for the belief's structured precision ``P``."""
    if post.hessian == "diag":
        a, b = coefficients(post)
        return jax.tree.map(lambda v, k, d: v * (a * k + b * d) ** power, tree, post.curvature.diag,
                            post.prior_precision)
    flat, unravel = ravel_pytree(tree)
    if post.hessian == "full":
        chol = post.factor
        if power == 1:
            return unravel(chol @ (chol.T @ flat))
        return unravel(jax.scipy.linalg.cho_solve((chol, True), flat))
    result: dict = {}
    for layer, factor, eigen, delta_kernel, delta_bias in kron_layers(post):
        eig_kernel, eig_bias = kron_eigenvalues(post, factor, eigen, delta_kernel, delta_bias)
        node = get_path(tree, layer.path)
        rotated = eigen.eigvecs_a.T @ node["kernel"] @ eigen.eigvecs_g
        set_path(result, layer.path + ("kernel",),
                      eigen.eigvecs_a @ (rotated * eig_kernel**power) @ eigen.eigvecs_g.T)
        if layer.has_bias:
            set_path(result, layer.path + ("bias",),
                          eigen.eigvecs_g @ ((eigen.eigvecs_g.T @ node["bias"]) * eig_bias**power))
    return result


def add_curvature(curvature: Curvature, num_seen: Array, new: Curvature, c_lik: Array,
                  batch_size: int) -> tuple[Curvature, Array]:
    """``K + c_lik K_new`` (KFAC: ``A + A_new``, ``G + c_lik G_new``) and ``m + |B|``."""
    if isinstance(new, KronCurvature):
        factors = {key: KronFactor(f.A + new.factors[key].A, f.G + c_lik * new.factors[key].G)
                   for key, f in curvature.factors.items()}
        return KronCurvature(factors), num_seen + batch_size
    return jax.tree.map(lambda k, n: k + c_lik * n, curvature, new), num_seen + batch_size


def batch_curvature(log_joint: LogJoint, hessian: str, params: Params, batch: Batch) -> tuple[Curvature, Array]:
    """The GGN of the batch's summed log-likelihood at ``params`` (Laplace package), and that sum."""
    x, y = batch
    done = accumulate(zeros(hessian, params), hessian, "ggn", log_joint.apply, log_joint.likelihood, params, None,
                      jnp.asarray(x), jnp.asarray(y), x.shape[0])
    return done.curvature, done.log_likelihood


def tempered_prior(log_joint: LogJoint, mean: Params, c_prior: Array) -> Params:
    """``c_prior Delta`` with every leaf at its weight's full shape."""
    delta = prior_precision(log_joint, mean, "diag")
    return jax.tree.map(lambda d, m: jnp.broadcast_to(c_prior * d, m.shape).astype(m.dtype), delta, mean)
