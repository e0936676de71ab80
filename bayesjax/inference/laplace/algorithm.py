"""Streaming Laplace: the :class:`~bayesjax.base.Algorithm` form.

The state is not a Markov chain (no ``position``): it holds the fixed mean
(the MAP it was started at) and curvature accumulators; each ``step`` adds one
batch's likelihood curvature at the mean (chunked inside the batch), so one
pass of ``bj.run`` over the data sums the same curvature as
:func:`bayesjax.laplace` on all of it. ``sample`` turns the state into a
:class:`~.approximation.LaplacePosterior` (the curvature of the ``m`` examples
seen estimates the full-data one as ``(N / m) K_seen``) and draws from it.

Example:
  >>> algo = bj.streaming_laplace(lj, hessian="kfac")
  >>> post = bj.run(key, algo, params_map, (x, y), num_steps=len(x) // 128, batch_size=128)
  >>> samples = post.sample(key, 100)
  >>> laplace_post = bj.inference.laplace.from_state(lj, jax.tree.map(lambda s: s[0], post.state))
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from bayesjax.base import Algorithm, cached_builder
from bayesjax.targeting import targeting
from bayesjax.inference.laplace import factorization, sampling, subsets
from bayesjax.inference.laplace.approximation import LaplacePosterior
from bayesjax.inference.laplace.curvature import (
    Curvature,
    DiagCurvature,
    FullCurvature,
    KronCurvature,
    accumulate,
    check_options,
    zeros,
)
from bayesjax.inference.laplace.posterior import LogJointKey, normalize_prior_precision
from bayesjax.logjoint import LogJoint
from bayesjax.types import Array, Batch, Params, PRNGKey


class LaplaceState(NamedTuple):
    """Curvature accumulated at a fixed mean.

    Attributes:
      mean: the MAP (all parameters).
      curvature: the likelihood curvature summed over the examples seen.
      num_seen: how many examples were summed.
      log_likelihood: their summed log-likelihood at the mean.
    """

    mean: Params
    curvature: Curvature
    num_seen: Array
    log_likelihood: Array


class LaplaceInfo(NamedTuple):
    """Diagnostics of one step: the batch's summed log-likelihood at the mean, and ``num_seen`` after it."""

    log_likelihood: Array
    num_seen: Array


def init(params: Params, hessian: str = "kfac", subset="all") -> LaplaceState:
    """An empty accumulator at ``params``."""
    names = subsets.resolve(subset, params)
    sub = subsets.select(params, names)
    dtype = jnp.result_type(*jax.tree.leaves(sub))
    return LaplaceState(params, zeros(hessian, sub), jnp.zeros((), jnp.int32), jnp.zeros((), dtype))


def step(
    state: LaplaceState,
    batch: Batch,
    *,
    log_joint: LogJoint,
    hessian: str = "kfac",
    curvature: str = "ggn",
    subset="all",
    chunk_size: int | None = None,
) -> tuple[LaplaceState, LaplaceInfo]:
    """Adds the curvature of ``batch`` (chunked) at ``state.mean``."""
    new_state, log_likelihood, _ = add_batch(state, batch, log_joint=log_joint, hessian=hessian, curvature=curvature,
                                             subset=subset, chunk_size=chunk_size)
    return new_state, LaplaceInfo(log_likelihood, new_state.num_seen)


def add_batch(state: LaplaceState, batch: Batch, *, log_joint: LogJoint, hessian: str, curvature: str, subset,
              chunk_size: int | None, with_gradient: bool = False) -> tuple[LaplaceState, Array, Params | None]:
    """:func:`step`'s new state, the batch's summed log-likelihood and (``with_gradient``) its gradient.

    The gradient is over the Bayesian weights, from the same pass
    (:func:`~.curvature.accumulate`); :func:`bayesjax.laplace` checks the mode with it.
    """
    x, y = batch
    names = subsets.resolve(subset, state.mean)
    done = accumulate(state.curvature, hessian, curvature, log_joint.apply, log_joint.likelihood, state.mean, names,
                      jnp.asarray(x), jnp.asarray(y), chunk_size, with_gradient)
    log_likelihood = done.log_likelihood.astype(state.log_likelihood.dtype)
    new_state = LaplaceState(state.mean, done.curvature, state.num_seen + x.shape[0],
                             state.log_likelihood + log_likelihood)
    return new_state, log_likelihood, done.gradient


def from_state(
    log_joint: LogJoint,
    state: LaplaceState,
    hessian: str | None = None,
    curvature: str = "ggn",
    subset="all",
    prior_precision=None,
    chunk_size: int | None = None,
) -> LaplacePosterior:
    """The Laplace posterior of an accumulated state (one chain: no leading chain axis).

    Args:
      log_joint: the target (prior, temperature, tempering, ``num_data`` N).
      state: a :class:`LaplaceState` with ``num_seen > 0``.
      hessian: the structure the state was built with (read from its type when ``None``).
      curvature: ``"ggn"`` or ``"ef"`` (recorded only).
      subset: the subset the state was built with.
      prior_precision: overrides the log-joint's Gaussian prior (scalar or tree).
      chunk_size: examples per chunk in later functional-covariance passes.
    """
    if hessian is None:
        hessian = {DiagCurvature: "diag", FullCurvature: "full", KronCurvature: "kfac"}[type(state.curvature)]
    check_options(hessian, curvature)
    names = subsets.resolve(subset, state.mean)
    sub = subsets.select(state.mean, names)
    delta = normalize_prior_precision(prior_precision, sub, log_joint, hessian)
    log_joint_key = LogJointKey(log_joint)
    scalars, factor = _finalize(state, delta, log_joint.likelihood_weight, log_joint.prior_weight,
                                log_joint.num_data, hessian, log_joint_key, names)
    return assemble(state, delta, scalars, factor, log_joint_key, hessian, curvature, names, chunk_size)


def assemble(state: LaplaceState, delta, scalars, factor, log_joint_key: LogJointKey, hessian: str, curvature: str,
             names, chunk_size) -> LaplacePosterior:
    """The :class:`~.approximation.LaplacePosterior` from the outputs of :func:`finalize` (host side, no compute)."""
    return LaplacePosterior(
        state.mean, state.curvature, delta, *scalars, factor=factor, log_joint_key=log_joint_key,
        hessian=hessian, curvature_type=curvature, subset=names, chunk_size=chunk_size,
    )


def finalize(state, delta, likelihood_weight, prior_weight, num_data, hessian, log_joint_key, names):
    """The posterior's scalars in the parameters' dtype and its factorization (traceable).

    ``likelihood_weight`` and ``prior_weight`` are the log-joint's
    (:attr:`~bayesjax.logjoint.LogJoint.likelihood_weight`, ``prior_weight``),
    passed as data so that traced temperatures share one compile.
    """
    dtype = jnp.result_type(*jax.tree.leaves(subsets.select(state.mean, names)))
    scalars = (
        jnp.asarray(likelihood_weight, dtype),
        jnp.asarray(prior_weight, dtype),
        jnp.asarray(num_data, dtype),
        jnp.maximum(state.num_seen, 1).astype(dtype),
        jnp.asarray(state.log_likelihood, dtype),
        jnp.ones((), dtype),
    )
    post = LaplacePosterior(state.mean, state.curvature, delta, *scalars, factor=None, log_joint_key=log_joint_key,
                            hessian=hessian, curvature_type="ggn", subset=names)
    return scalars, factorization.factorize(post)


_finalize = jax.jit(finalize, static_argnums=(5, 6, 7))


def sample(
    key: PRNGKey,
    state: LaplaceState,
    num_samples: int,
    *,
    log_joint: LogJoint,
    hessian: str = "kfac",
    curvature: str = "ggn",
    subset="all",
    prior_precision=None,
) -> Params:
    """``num_samples`` draws from the Laplace posterior of ``state``."""
    post = from_state(log_joint, state, hessian, curvature, subset, prior_precision)
    return sampling.sample(post, key, num_samples)


@cached_builder
def build(
    log_joint: LogJoint,
    hessian: str = "kfac",
    curvature: str = "ggn",
    subset="all",
    *,
    prior_precision=None,
    chunk_size: int | None = None,
) -> Algorithm:
    """Streaming Laplace as an :class:`~bayesjax.base.Algorithm`: :func:`bayesjax.laplace` one batch at a time.

    Update: started at a MAP (``init(key, params_map)``), each step adds the
    batch's likelihood curvature at that fixed mean, K <- K + sum_B GGN_i
    (or empirical Fisher); one pass of ``bj.run`` over the data sums what
    :func:`bayesjax.laplace` sums at once. ``sample`` forms the tempered
    precision ``P = (K_N + Delta) / T`` (posterior tempering; ``K_N / T +
    Delta`` under likelihood tempering), with ``K_N = (N / m) K`` over the m
    examples seen, and draws from ``N(mean, P^{-1})``. There is no step size.

    State and info: :class:`LaplaceState` (``mean``, ``curvature``,
    ``num_seen``, ``log_likelihood``) and :class:`LaplaceInfo`
    (``log_likelihood``, ``num_seen``). :func:`from_state` turns a final state
    into a :class:`~bayesjax.inference.laplace.approximation.LaplacePosterior`
    (GLM predictive, evidence, prior tuning).

    Args:
      log_joint: the tempered target.
      hessian: ``"full"``, ``"diag"`` or ``"kfac"``.
      curvature: ``"ggn"`` or ``"ef"``.
      subset: ``"all"``, ``"last_layer"`` or top-level names.
      prior_precision: overrides the Gaussian prior's precision.
      chunk_size: examples per chunk inside a batch (default: by memory).

    Returns:
      The :class:`Algorithm`; ``init(key, params_map)`` starts at the MAP.

    Example:
      >>> algo = bj.streaming_laplace(lj, hessian="diag")
      >>> post = bj.run(key, algo, params_map, (x, y), num_steps=10, batch_size=100)
    """
    check_options(hessian, curvature)
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    options = dict(hessian=hessian, curvature=curvature, subset=subset)

    def init_fn(key: PRNGKey, params: Params) -> LaplaceState:
        del key
        return init(params, hessian, subset)

    def step_fn(key: PRNGKey, state: LaplaceState, batch: Batch, *, log_joint: LogJoint):
        del key
        return step(state, batch, log_joint=log_joint, chunk_size=chunk_size, **options)

    def sample_fn(key: PRNGKey, state: LaplaceState, num_samples: int) -> Params:
        return sample(key, state, num_samples, log_joint=log_joint, prior_precision=prior_precision, **options)

    return targeting(log_joint, init_fn, step_fn, sample_fn)
