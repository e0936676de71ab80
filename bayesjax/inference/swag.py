"""Stochastic weight averaging (SWA) and its Gaussian, SWAG.

Both run any optax optimizer on the per-example loss U / N of the tempered
log-joint (as :mod:`bayesjax.inference.map`: ``optax.sgd(0.1)`` is a
learning rate of 0.1 on the mean loss) and summarize the iterates it visits. After
step ``t`` (counted from 1) with ``t > start_step`` and
``(t - start_step) % collect_every == 0`` the new iterate theta_n is
*collected*:

* SWA (Izmailov et al. 2018, "Averaging weights leads to wider optima and
  better generalization") keeps the running mean
  theta_bar_n = theta_bar_{n-1} + (theta_n - theta_bar_{n-1}) / n, and its
  posterior is the point mass at theta_bar. With a constant learning rate
  collect every few steps; with the cyclical rate of
  :func:`cyclical_learning_rate` collect once per cycle, at its end
  (``collect_every = cycle_length``), when the rate is lowest.
* SWAG (Maddox et al. 2019, "A simple baseline for Bayesian uncertainty in
  deep learning") also keeps the diagonal variance of the collected iterates
  and the last K deviations D = [theta_i - theta_bar_i] (one column per
  collection, deviation from the running mean after the update, as in the
  authors' code), K = ``rank``, in a ring buffer of K slots, and samples

      theta = theta_bar + diag^(1/2) z1 / sqrt(2) + D z2 / sqrt(2 (K - 1)),
      z1 ~ N(0, I_P),  z2 ~ N(0, I_K),

  i.e. N(theta_bar, (Sigma_diag + D D^T / (K - 1)) / 2). Memory is
  O((K + 3) x params) plus the optimizer's state, and every shape is fixed,
  so the state is scan-safe.

The variance is accumulated with Welford's update (a running centred second
moment), which equals Maddox et al.'s ``sq_mean - mean^2`` in exact arithmetic
without its float32 cancellation when |theta| >> its spread. Note that the
deviations are taken from the running mean over *all* collected iterates, not
from the mean of the K columns, so for near-independent collections
E[D D^T] / K ~= Cov(theta) and the low-rank term as written has expected
covariance K / (K - 1) Cov(theta) (Maddox et al.'s normalization, kept).

Until the first collection the posterior of both is the point mass at the
current iterate. A constant learning rate eta with SGD on a quadratic loss
gives a Gaussian stationary distribution whose covariance solves the discrete
Lyapunov equation Sigma = (I - eta A) Sigma (I - eta A)^T + eta^2 C (Mandt,
Hoffman & Blei 2017, "Stochastic gradient descent as approximate Bayesian
inference"); SWAG estimates that covariance, which is the posterior only as far
as the learning rate and gradient noise make it so.

The file is one concept, the running moments of SGD iterates, shared by SWA
and SWAG; each builder documents its update in full.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from bayesjax.base import Algorithm, cached_builder
from bayesjax.targeting import targeting
from bayesjax.checks import check_int, check_positive
from bayesjax.logjoint import LogJoint
from bayesjax.trees import repeat_params
from bayesjax.types import Array, Batch, Params, PRNGKey

__all__ = [
    "SWAState", "SWAGState", "SWAGInfo", "SWAInfo", "swa_init", "swag_init", "step", "swa_sample",
    "swag_sample", "covariance", "cyclical_learning_rate", "build_swa", "build_swag",
]


class SWAState(NamedTuple):
    """State of SWA.

    Attributes:
      params: the optimizer's current iterate.
      opt_state: the optimizer's state.
      count: steps taken.
      mean: running mean of the collected iterates (zeros before the first).
      num_collected: how many iterates were collected.
    """

    params: Params
    opt_state: optax.OptState
    count: Array
    mean: Params
    num_collected: Array


class SWAGState(NamedTuple):
    """State of SWAG.

    Attributes:
      params: the optimizer's current iterate.
      opt_state: the optimizer's state.
      count: steps taken.
      mean: running mean theta_bar of the collected iterates.
      variance: running (population) variance of the collected iterates, per
        weight; ``None`` when ``diag=False``.
      deviations: ring buffer of the last ``rank`` deviations theta_i -
        theta_bar_i, each leaf ``[rank, *leaf.shape]``; ``None`` when
        ``rank=0``. Slot ``i % rank`` holds collection ``i`` (from 0).
      num_collected: how many iterates were collected.
    """

    params: Params
    opt_state: optax.OptState
    count: Array
    mean: Params
    variance: Params | None
    deviations: Params | None
    num_collected: Array


class SWAGInfo(NamedTuple):
    """Diagnostics of one step.

    Attributes:
      log_joint: the tempered log-joint estimate at the step's starting iterate.
      collected: whether the new iterate entered the averages.
    """

    log_joint: Array
    collected: Array


SWAInfo = SWAGInfo
"""SWA's diagnostics are SWAG's."""


def swa_init(params: Params, optimizer: optax.GradientTransformation) -> SWAState:
    """Starts SWA at ``params`` with nothing collected."""
    zeros = jax.tree.map(jnp.zeros_like, params)
    return SWAState(params, optimizer.init(params), jnp.zeros((), jnp.int32), zeros, jnp.zeros((), jnp.int32))


def swag_init(params: Params, optimizer: optax.GradientTransformation, rank: int = 20, diag: bool = True) -> SWAGState:
    """Starts SWAG at ``params``: zero moments and an empty deviation buffer of ``rank`` slots."""
    zeros = jax.tree.map(jnp.zeros_like, params)
    variance = zeros if diag else None
    deviations = jax.tree.map(lambda p: jnp.zeros((rank,) + jnp.shape(p), jnp.result_type(p)), params) if rank else None
    zero = jnp.zeros((), jnp.int32)
    return SWAGState(params, optimizer.init(params), zero, zeros, variance, deviations, zero)


def step(
    state: SWAState | SWAGState,
    batch: Batch,
    *,
    log_joint: LogJoint,
    optimizer: optax.GradientTransformation,
    start_step: int = 0,
    collect_every: int = 1,
) -> tuple[SWAState | SWAGState, SWAGInfo]:
    """One optimizer step on the per-example loss U / N, then maybe a collection.

    The iterate after step ``t = count + 1`` is collected when
    ``t > start_step`` and ``(t - start_step) % collect_every == 0``:
    n = num_collected + 1, theta_bar <- theta_bar + (theta - theta_bar) / n,
    variance <- variance + ((theta - theta_bar_old)(theta - theta_bar) - variance) / n
    (Welford), and for SWAG the deviation theta - theta_bar enters slot
    ``num_collected % rank`` of the ring buffer.
    """
    value, grad = log_joint.value_and_loss_grad(state.params, batch)
    updates, opt_state = optimizer.update(grad, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    count = state.count + 1
    collect = (count > start_step) & ((count - start_step) % collect_every == 0)

    n = (state.num_collected + 1).astype(jnp.result_type(float))
    new_mean = jax.tree.map(lambda m, p: m + (p - m) / n.astype(m.dtype), state.mean, params)
    mean = jax.tree.map(lambda new, old: jnp.where(collect, new, old), new_mean, state.mean)
    num_collected = state.num_collected + collect.astype(jnp.int32)
    if isinstance(state, SWAState):
        new_state = SWAState(params, opt_state, count, mean, num_collected)
        return new_state, SWAGInfo(value, collect)

    variance = state.variance
    if variance is not None:
        variance = jax.tree.map(
            lambda v, p, m_old, m_new: jnp.where(collect, v + ((p - m_old) * (p - m_new) - v) / n.astype(v.dtype), v),
            variance, params, state.mean, new_mean,
        )
    deviations = state.deviations
    if deviations is not None:
        rank = jax.tree.leaves(deviations)[0].shape[0]
        slot = state.num_collected % rank
        deviations = jax.tree.map(
            lambda d, p, m: d.at[slot].set(jnp.where(collect, p - m, d[slot])), deviations, params, new_mean
        )
    new_state = SWAGState(params, opt_state, count, mean, variance, deviations, num_collected)
    return new_state, SWAGInfo(value, collect)


def swa_sample(state: SWAState, num_samples: int) -> Params:
    """``num_samples`` copies of the SWA mean (the current iterate before any collection)."""
    started = state.num_collected > 0
    center = jax.tree.map(lambda m, p: jnp.where(started, m, p), state.mean, state.params)
    return repeat_params(center, num_samples)


def _num_columns(state: SWAGState) -> Array:
    rank = jax.tree.leaves(state.deviations)[0].shape[0]
    return jnp.minimum(state.num_collected, rank)


def _scales(state: SWAGState, var_clamp: float) -> tuple[Array | None, Array | None]:
    """Multipliers of the diagonal and low-rank terms: 1/sqrt(2) each when both are present."""
    both = state.variance is not None and state.deviations is not None
    half = math.sqrt(0.5) if both else 1.0
    low_rank = None
    if state.deviations is not None:
        low_rank = half / jnp.sqrt(jnp.maximum(_num_columns(state) - 1, 1).astype(jnp.result_type(float)))
    return (half if state.variance is not None else None), low_rank


def swag_sample(key: PRNGKey, state: SWAGState, num_samples: int, var_clamp: float = 1e-30) -> Params:
    """``num_samples`` draws of theta_bar + diag^(1/2) z1 / sqrt(2) + D z2 / sqrt(2 (K - 1)).

    K is the number of filled deviation columns (at most ``rank``). With
    ``diag=False`` the draw is theta_bar + D z2 / sqrt(K - 1); with ``rank=0``
    it is theta_bar + diag^(1/2) z1 (SWAG-Diagonal). The variance is clamped
    below at ``var_clamp``. Before the first collection every draw is the
    current iterate.
    """
    diag_scale, low_rank_scale = _scales(state, var_clamp)
    started = state.num_collected > 0
    leaves, treedef = jax.tree.flatten(state.mean)
    # One key per leaf plus one for z2, each drawing all samples of its leaf at once. Draws are
    # generated flat and reshaped: XLA:CPU's compile time of the (partitionable) threefry grows
    # steeply with the rank of the requested shape (figures in benchmarks/README.md).
    keys = jax.random.split(key, len(leaves) + 1)
    shape = lambda leaf: (num_samples,) + jnp.shape(leaf)

    def normal(k, shape, dtype):
        return jax.random.normal(k, (math.prod(shape),), dtype).reshape(shape)

    draw = [jnp.broadcast_to(m, shape(m)) for m in leaves]
    if state.variance is not None:
        variances = jax.tree.leaves(state.variance)
        draw = [
            d + diag_scale * jnp.sqrt(jnp.maximum(v, var_clamp)) * normal(k, shape(v), v.dtype)
            for d, v, k in zip(draw, variances, keys[:-1])
        ]
    if state.deviations is not None:
        rank = jax.tree.leaves(state.deviations)[0].shape[0]
        z2 = normal(keys[-1], (num_samples, rank), jnp.result_type(float))
        z2 = jnp.where(jnp.arange(rank) < _num_columns(state), z2, 0.0) * low_rank_scale
        draw = [d + jnp.tensordot(z2.astype(dev.dtype), dev, axes=1)
                for d, dev in zip(draw, jax.tree.leaves(state.deviations))]
    draw = [jnp.where(started, d, p) for d, p in zip(draw, jax.tree.leaves(state.params))]
    return jax.tree.unflatten(treedef, draw)


def covariance(state: SWAGState, var_clamp: float = 1e-30) -> Array:
    """The dense covariance that :func:`swag_sample` draws from, over the raveled parameters.

    ``[P, P]`` with P the number of weights: only for small models and tests.
    """
    diag_scale, low_rank_scale = _scales(state, var_clamp)
    size = sum(leaf.size for leaf in jax.tree.leaves(state.mean))
    cov = jnp.zeros((size, size))
    if state.variance is not None:
        var = jnp.concatenate([jnp.ravel(v) for v in jax.tree.leaves(state.variance)])
        cov = cov + diag_scale**2 * jnp.diag(jnp.maximum(var, var_clamp))
    if state.deviations is not None:
        rank = jax.tree.leaves(state.deviations)[0].shape[0]
        dev = jnp.concatenate([d.reshape(rank, -1) for d in jax.tree.leaves(state.deviations)], axis=1)
        dev = jnp.where((jnp.arange(rank) < _num_columns(state))[:, None], dev, 0.0)
        cov = cov + low_rank_scale**2 * dev.T @ dev
    return cov


def cyclical_learning_rate(max_rate: float, min_rate: float, cycle_length: int) -> Callable[[Array], Array]:
    """Izmailov et al. (2018, eq. 2): within each cycle of ``cycle_length`` steps the rate falls
    linearly from ``max_rate`` to ``min_rate``.

    alpha(i) = (1 - t(i)) max_rate + t(i) min_rate, t(i) = (mod(i, c) + 1) / c for the
    optimizer's step i counted from 0. The last step of each cycle uses ``min_rate``; collect
    there with ``collect_every=cycle_length`` and ``start_step`` a multiple of it.

    Example:
      >>> optimizer = optax.sgd(bj.inference.swag.cyclical_learning_rate(0.5, 0.01, 100))
    """
    check_positive("max_rate", max_rate)
    check_positive("min_rate", min_rate)
    cycle_length = check_int("cycle_length", cycle_length)

    def schedule(count: Array) -> Array:
        t = ((count % cycle_length) + 1) / cycle_length
        return (1 - t) * max_rate + t * min_rate

    return schedule


def _check_collection(start_step: int, collect_every: int) -> tuple[int, int]:
    return check_int("start_step", start_step, minimum=0), check_int("collect_every", collect_every)


@cached_builder
def build_swa(
    log_joint: LogJoint,
    optimizer: optax.GradientTransformation,
    start_step: int = 0,
    collect_every: int = 1,
) -> Algorithm:
    """Stochastic weight averaging (Izmailov et al. 2018) as an :class:`Algorithm`.

    Update: one optax step on the per-example loss U / N
    (:meth:`~bayesjax.logjoint.LogJoint.loss`), then, after step t > ``start_step``
    with (t - ``start_step``) divisible by ``collect_every``, the running mean

        theta_bar_n = theta_bar_{n-1} + (theta_t - theta_bar_{n-1}) / n.

    The posterior is the point mass at theta_bar (at the current iterate
    before the first collection). Temperature enters as in
    :func:`bayesjax.map`: not at all under posterior tempering, as the
    prior's weight T under likelihood tempering.

    Learning rate: the optimizer meets the gradient of the mean loss, as in
    any training loop. Izmailov et al. pre-train, then run SGD at a constant
    rate (collect every epoch or every few steps) or the cyclical rate of
    :func:`cyclical_learning_rate` (collect at the end of each cycle,
    ``collect_every = cycle_length``).

    State and info: :class:`SWAState` (``params``, ``opt_state``, ``count``,
    ``mean``, ``num_collected``) and :class:`SWAGInfo` (``log_joint``,
    ``collected``).

    Args:
      log_joint: the tempered log-joint whose iterates are averaged.
      optimizer: any optax optimizer on the per-example loss U / N; a constant or cyclical rate
        (:func:`cyclical_learning_rate`).
      start_step: steps before the first collection (>= 0).
      collect_every: collect every this many steps after ``start_step``.

    Returns:
      An :class:`Algorithm` over :class:`SWAState`; ``sample`` returns copies of the average.

    Example:
      >>> algo = bj.swa(lj, optax.sgd(0.02, momentum=0.9), start_step=20, collect_every=4)
      >>> post = bj.run(key, algo, params_map, (x, y), num_steps=40, batch_size=50, progress=False)
      >>> post.sample(key, 2)["Dense_1"]["bias"].shape   # two copies of the average
      (2, 10)

    References:
      P. Izmailov, D. Podoprikhin, T. Garipov, D. Vetrov and A. G. Wilson,
      "Averaging weights leads to wider optima and better generalization", UAI 2018.
    """
    start_step, collect_every = _check_collection(start_step, collect_every)

    def init_fn(key: PRNGKey, params: Params) -> SWAState:
        del key
        return swa_init(params, optimizer)

    def step_fn(key: PRNGKey, state: SWAState, batch: Batch, *, log_joint: LogJoint):
        del key
        return step(state, batch, log_joint=log_joint, optimizer=optimizer, start_step=start_step,
                    collect_every=collect_every)

    def sample_fn(key: PRNGKey, state: SWAState, num_samples: int) -> Params:
        del key
        return swa_sample(state, num_samples)

    return targeting(log_joint, init_fn, step_fn, sample_fn, recompute_statistics=True)


@cached_builder
def build_swag(
    log_joint: LogJoint,
    optimizer: optax.GradientTransformation,
    start_step: int = 0,
    collect_every: int = 1,
    rank: int = 20,
    diag: bool = True,
    var_clamp: float = 1e-30,
) -> Algorithm:
    """SWA-Gaussian (Maddox et al. 2019) as an :class:`Algorithm`.

    Update: the optimizer steps of :func:`build_swa` on the per-example loss
    U / N; each collected iterate theta_n also updates the diagonal variance
    (Welford) and enters a ring buffer of the last K = ``rank`` deviations
    D = [theta_i - theta_bar_i]. The posterior is the Gaussian

        theta = theta_bar + diag^(1/2) z1 / sqrt(2) + D z2 / sqrt(2 (K - 1)),
        z1 ~ N(0, I_P),  z2 ~ N(0, I_K),

    i.e. N(theta_bar, (Sigma_diag + D D^T / (K - 1)) / 2).

    Temperature: the loss, hence the iterates, depend on T as in
    :func:`bayesjax.map` (not at all under posterior tempering). The
    Gaussian's scale comes from the learning rate and the gradient noise
    (the stationary spread of SGD, Mandt et al. 2017), not from T.

    Learning rate: the optimizer meets the gradient of the mean loss. Maddox
    et al. pre-train, then run SGD at a constant, fairly high rate and
    collect once per epoch: ``bayesjax compare`` runs
    ``optax.sgd(0.05, momentum=0.9)`` and collects from half-way through
    the run, about once per epoch. A larger rate
    widens the Gaussian; a rate too small collapses it to SWA.

    State and info: :class:`SWAGState` (``params``, ``opt_state``,
    ``count``, ``mean``, ``variance``, ``deviations``, ``num_collected``)
    and :class:`SWAGInfo` (``log_joint``, ``collected``).

    Args:
      log_joint: the tempered log-joint.
      optimizer: any optax optimizer on the per-example loss U / N; Maddox et al. use SGD with a
        constant rate after a pre-training phase.
      start_step: steps before the first collection (>= 0).
      collect_every: collect every this many steps after ``start_step``
        (Maddox et al.: once per epoch).
      rank: K, the number of deviation columns kept (0, or >= 2).
      diag: keep the diagonal variance. ``rank=0, diag=True`` is SWAG-Diagonal;
        ``diag=False`` keeps only the low-rank part.
      var_clamp: lower bound on the diagonal variance when sampling.

    Returns:
      An :class:`Algorithm` over :class:`SWAGState` whose ``sample`` draws from the Gaussian.

    Example:
      >>> algo = bj.swag(lj, optax.sgd(0.02, momentum=0.9), start_step=20, collect_every=4, rank=5)
      >>> post = bj.run(key, algo, params_map, (x, y), num_steps=40, batch_size=50, progress=False)
      >>> post.sample(key, 30)["Dense_0"]["kernel"].shape
      (30, 64, 16)

    References:
      W. J. Maddox, T. Garipov, P. Izmailov, D. Vetrov and A. G. Wilson, "A
      simple baseline for Bayesian uncertainty in deep learning", NeurIPS 2019.
      S. Mandt, M. D. Hoffman and D. M. Blei, "Stochastic gradient descent as
      approximate Bayesian inference", JMLR 2017.
    """
    start_step, collect_every = _check_collection(start_step, collect_every)
    rank = check_int("rank", rank, minimum=0)
    if rank == 1:
        raise ValueError("rank must be 0 (no low-rank part) or >= 2: the low-rank covariance divides by K - 1")
    if rank == 0 and not diag:
        raise ValueError("swag with rank=0 and diag=False has no covariance; use bj.swa for the point estimate")
    check_positive("var_clamp", var_clamp)

    def init_fn(key: PRNGKey, params: Params) -> SWAGState:
        del key
        return swag_init(params, optimizer, rank, diag)

    def step_fn(key: PRNGKey, state: SWAGState, batch: Batch, *, log_joint: LogJoint):
        del key
        return step(state, batch, log_joint=log_joint, optimizer=optimizer, start_step=start_step,
                    collect_every=collect_every)

    def sample_fn(key: PRNGKey, state: SWAGState, num_samples: int) -> Params:
        return swag_sample(key, state, num_samples, var_clamp)

    return targeting(log_joint, init_fn, step_fn, sample_fn, recompute_statistics=True)
