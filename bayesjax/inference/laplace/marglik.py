"""Laplace log evidence and hyperparameter tuning (prior precision, observation noise).

With ``l(theta)`` the tempered log-joint (``bj.log_joint``: untempered
log-likelihood ``LL`` and a Gaussian log-prior of precision ``Delta`` on the D
Bayesian weights, weighted by the factors ``c_lik`` and ``c_prior`` of its
tempering rule, ``LogJoint.likelihood_weight`` and ``LogJoint.prior_weight``,
carried by the posterior as data) and ``P`` the Laplace precision, the
Laplace approximation of ``log int exp(l(theta)) dtheta`` is (MacKay 1992;
Immer et al. 2021, "Scalable marginal likelihood estimation for model
selection in deep learning"):

    log Z ~= l(m) + D/2 log(2 pi) - 1/2 log |P|,
    l(m)   = c_lik LL(m) + c_prior log N(m_sub; 0, Delta^{-1}),

the log evidence ``log p(D)`` at T = 1; on Bayesian linear regression it is
exact. Only the Bayesian subset's prior enters (the fixed weights contribute a
constant). The mean stays at the MAP while hyperparameters change (post-hoc
tuning, as laplace-torch): the optimum in ``Delta`` is MacKay's fixed point
``delta = gamma / |m|^2`` with that mean.

For a Gaussian likelihood the noise is tunable too: the GGN scales as
``1 / sigma^2`` and the log-likelihood is rebuilt from the residual sum of
squares, so no pass over the data is needed.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import optax

from bayesjax.checks import check_int, check_positive
from bayesjax.inference.laplace import factorization, gridsearch
from bayesjax.inference.laplace.posterior import LogJointKey, PosteriorData, normalize_prior_precision
from bayesjax.likelihoods import gaussian

METHODS = ("marglik", "gridsearch")


def _noise_variance(post: PosteriorData) -> jax.Array:
    likelihood = post.log_joint.likelihood
    if likelihood.name != "gaussian":
        raise ValueError(f"noise tuning needs the homoscedastic gaussian likelihood, got {likelihood.name!r}")
    dtype = post.log_likelihood_sum.dtype
    return likelihood.predict(jnp.zeros((1, 1), dtype))[1][0]


def _log_likelihood_sum(post: PosteriorData, noise_std):
    """Seen-data log-likelihood sum and curvature factor at noise ``noise_std`` (or as fitted)."""
    if noise_std is None:
        return post.log_likelihood_sum, post.noise_scale
    variance = _noise_variance(post)
    new_variance = jnp.square(jnp.asarray(noise_std, variance.dtype))
    m = post.num_seen
    sse = -2.0 * variance * (post.log_likelihood_sum + 0.5 * m * jnp.log(2 * jnp.pi * variance))
    log_likelihood = -0.5 * m * jnp.log(2 * jnp.pi * new_variance) - 0.5 * sse / new_variance
    return log_likelihood, post.noise_scale * variance / new_variance


def log_marginal_likelihood(post: PosteriorData, prior_precision=None, noise_std=None) -> jax.Array:
    """Laplace approximation of the (tempered) log evidence.

    Args:
      post: the Laplace posterior.
      prior_precision: evaluate at this prior precision instead (scalar or a
        tree like the Bayesian parameters); may be traced (differentiable).
      noise_std: Gaussian likelihood only: evaluate at this observation noise.

    Returns:
      The scalar ``log Z``.

    Example:
      >>> post = bj.laplace(lj, params_map, (x, y), hessian="diag")
      >>> log_z = post.log_marginal_likelihood(prior_precision=10.0)
    """
    sub = post.subset_mean
    if prior_precision is None:
        delta = post.prior_precision
    else:
        delta = normalize_prior_precision(prior_precision, sub, post.log_joint, post.hessian)
    log_likelihood_sum, noise_scale = _log_likelihood_sum(post, noise_std)
    log_likelihood = post.num_data / post.num_seen * log_likelihood_sum
    dtype = log_likelihood.dtype
    log_2pi = jnp.asarray(math.log(2 * math.pi), dtype)

    def leaf_log_prior(d, theta):
        d = jnp.broadcast_to(d, theta.shape)
        return jnp.sum(0.5 * (jnp.log(d) - log_2pi) - 0.5 * d * jnp.square(theta))

    log_prior = sum(jax.tree.leaves(jax.tree.map(leaf_log_prior, delta, sub)))
    log_joint = post.likelihood_weight * log_likelihood + post.prior_weight * log_prior
    log_det = factorization.log_det_precision(post, delta, noise_scale)
    return log_joint + 0.5 * post.num_params * log_2pi - 0.5 * log_det


def _groups(post: PosteriorData, per_layer: bool):
    """Static group index per Bayesian leaf (its top-level module when ``per_layer``)."""
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(post.subset_mean)[0]]
    if not per_layer:
        return [0] * len(paths), 1
    names = [str(getattr(p[0], "key", p[0])) if p else "" for p in paths]
    order = list(dict.fromkeys(names))
    return [order.index(n) for n in names], len(order)


def _precision_tree(post: PosteriorData, log_precisions, groups):
    treedef = jax.tree.structure(post.subset_mean)
    leaves = jax.tree.leaves(post.subset_mean)
    return jax.tree.unflatten(treedef, [jnp.exp(log_precisions[g]).astype(leaf.dtype)
                                        for g, leaf in zip(groups, leaves)])


def group_names(post: PosteriorData, per_layer: bool = True) -> list[str]:
    """Names of the groups :func:`optimize_prior_precision` tunes (top-level modules when per layer)."""
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(post.subset_mean)[0]]
    if not per_layer:
        return ["all"]
    return list(dict.fromkeys(str(getattr(p[0], "key", p[0])) if p else "" for p in paths))


def optimize_prior_precision(
    post: PosteriorData,
    method: str = "marglik",
    *,
    per_layer: bool = False,
    tune_noise: bool = False,
    num_steps: int = 200,
    learning_rate: float = 0.1,
    x_val=None,
    y_val=None,
    grid=None,
    link: str = "probit",
    num_samples: int = 100,
) -> PosteriorData:
    """Tunes the prior precision (and the Gaussian noise) of a Laplace posterior.

    ``"marglik"`` maximizes :func:`log_marginal_likelihood` over log
    precisions with Adam (``num_steps`` steps of ``learning_rate``, one
    ``lax.scan``): one precision for all weights, or with ``per_layer`` one
    per top-level module (``Dense_0``, ...; its kernel and bias share it); with
    ``tune_noise`` also the observation noise (Gaussian likelihood). The MAP is
    kept fixed.

    ``"gridsearch"`` picks, from ``grid`` (default ``logspace(-4, 4, 33)``),
    the scalar precision whose GLM predictive (``link``) has the lowest
    negative log-likelihood on ``(x_val, y_val)``
    (:func:`~bayesjax.inference.laplace.gridsearch.tune_prior_precision`, which
    also returns the chosen value and the NLL of every grid value).

    Args:
      post: the Laplace posterior.
      method: ``"marglik"`` or ``"gridsearch"``.
      per_layer, tune_noise, num_steps, learning_rate: for ``"marglik"``.
      x_val, y_val, grid, link, num_samples: for ``"gridsearch"``.

    Returns:
      A new posterior with the tuned prior precision (and, after noise
      tuning, a log-joint whose likelihood is ``bj.likelihoods.gaussian`` at
      the tuned noise).

    Example:
      >>> post = bj.laplace(lj, params_map, (x, y)).optimize_prior_precision(per_layer=True)
      >>> post = post.optimize_prior_precision("gridsearch", x_val=x_test, y_val=y_test)
    """
    if method == "gridsearch":
        if x_val is None or y_val is None:
            raise ValueError("method='gridsearch' needs validation data x_val= and y_val=")
        grid = gridsearch.DEFAULT_GRID if grid is None else grid
        return gridsearch.tune_prior_precision(post, x_val, y_val, grid, link, num_samples=num_samples).posterior
    if method != "marglik":
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    num_steps = check_int("num_steps", num_steps)
    check_positive("learning_rate", learning_rate)
    groups, num_groups = _groups(post, per_layer)
    noise0 = jnp.sqrt(_noise_variance(post)) if tune_noise else None
    log_precisions, log_noise = _optimize(post, tuple(groups), num_groups, noise0, num_steps, float(learning_rate))
    tuned = factorization.with_prior_precision(post, _precision_tree(post, log_precisions, groups))
    if tune_noise:
        tuned = with_noise_std(tuned, jnp.exp(log_noise))
    return tuned


@functools.partial(jax.jit, static_argnums=(1, 2, 4, 5))
def _optimize(post, groups, num_groups, noise0, num_steps, learning_rate):
    leaves = jax.tree.leaves(post.prior_precision)
    init_precision = jnp.stack([
        jnp.exp(jnp.mean(jnp.stack([jnp.mean(jnp.log(leaf)) for leaf, g in zip(leaves, groups) if g == group])))
        for group in range(num_groups)
    ])
    params = (jnp.log(init_precision), None if noise0 is None else jnp.log(noise0))

    def loss(p):
        log_precisions, log_noise = p
        noise = None if log_noise is None else jnp.exp(log_noise)
        return -log_marginal_likelihood(post, _precision_tree(post, log_precisions, groups), noise)

    optimizer = optax.adam(learning_rate)

    def step(carry, _):
        p, opt_state = carry
        grads = jax.grad(loss)(p)
        updates, opt_state = optimizer.update(grads, opt_state, p)
        return (optax.apply_updates(p, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, length=num_steps)
    return params


def with_noise_std(post: PosteriorData, noise_std) -> PosteriorData:
    """``post`` under a Gaussian likelihood of another noise (curvature and log-likelihood rescaled)."""
    log_likelihood_sum, noise_scale = _log_likelihood_sum(post, noise_std)
    log_joint = dataclasses.replace(post.log_joint, likelihood=gaussian(noise_std))
    tuned = dataclasses.replace(post, log_likelihood_sum=log_likelihood_sum, noise_scale=noise_scale,
                                log_joint_key=LogJointKey(log_joint))
    return dataclasses.replace(tuned, factor=factorization.factorize_jit(tuned)) if post.hessian == "full" else tuned


__all__ = ["log_marginal_likelihood", "optimize_prior_precision", "with_noise_std", "group_names"]
