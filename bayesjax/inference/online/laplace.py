r"""Sequential (online) Laplace: today's posterior is tomorrow's prior.

For batch t, with the predicted belief ``N(mu, P^{-1})`` (after the dynamics
step of :mod:`.dynamics`) as the prior (Ritter, Botev & Barber 2018;
Kirkpatrick et al. 2017 for its diagonal form):

1. the MAP of the batch under that prior,

       theta_t = argmax_theta  c_lik sum_{i in B_t} log p(y_i | x_i, theta)
                               - 1/2 (theta - mu)^T P (theta - mu),

   by ``num_inner_steps`` steps of an optax optimizer started at ``mu``, or of
   Gauss-Newton, ``theta <- theta + alpha P_theta^{-1} grad``, preconditioned by
   the structured posterior precision ``P_theta = P + c_lik GGN_t(theta)`` (the
   iterated EKF, Bell & Cathey 1993), with ``alpha`` the largest of 1, 1/2, ...
   that increases the objective enough (Armijo backtracking). For a Gaussian
   likelihood on a linear model the full step is taken and lands on the exact
   posterior mean;
2. the curvature update at the MAP with the Laplace package's GGN
   (``curvature.accumulate``; diag, KFAC or full),

       P_t = P + c_lik GGN_t(theta_t),      mu_t = theta_t.

``c_lik = w_t / T`` carries the temperature and the per-step likelihood weight
(:mod:`.belief`). Exactness on linear-Gaussian streams: ``"full"`` always (with
Gauss-Newton, or an optimizer run to convergence); ``"diag"`` when every
batch's design ``[1, X_t]`` has orthogonal columns (each batch's GGN is
diagonal); ``"kfac"`` for one dense layer with a single output whenever every
batch's inputs are centred (``G`` is then a scalar and the kernel-bias cross
term that KFAC drops is zero). For KFAC, the precision of a layer is the
Kronecker product of the factor sums, ``A (x) G / m`` (an approximation of
the sum of per-batch Kronecker products, as in the Laplace package's
streaming form).

References: H. Ritter, A. Botev, D. Barber (2018), "Online structured Laplace
approximations for overcoming catastrophic forgetting", NeurIPS; B. M. Bell,
F. W. Cathey (1993), "The iterated Kalman filter update as a Gauss-Newton
method"; J. Schwarz et al. (2018), "Progress & compress" (online EWC).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from bayesjax.base import Algorithm, cached_builder
from bayesjax.targeting import targeting
from bayesjax.checks import check_int
from bayesjax.inference.laplace import sampling
from bayesjax.inference.laplace.approximation import LaplacePosterior
from bayesjax.inference.laplace.curvature import Curvature
from bayesjax.inference.laplace.fit import MAX_FULL_PARAMS
from bayesjax.inference.online import belief, dynamics, prequential
from bayesjax.inference.vi.meanfield import float_dtype
from bayesjax.logjoint import LogJoint
from bayesjax.trees import num_params
from bayesjax.types import Array, Batch, Params, PRNGKey

HESSIANS = ("diag", "kfac", "full")
GAUSS_NEWTON = "gauss_newton"
NUM_STEP_SIZES = 8
"""Gauss-Newton's backtracking tries the step sizes 1, 1/2, ..., 1/128."""
ARMIJO = 1e-4
"""The sufficient-increase constant of the line search."""


class OnlineLaplaceState(NamedTuple):
    """The Gaussian belief ``N(mean, (c_prior Delta + K)^{-1})``.

    Attributes:
      mean: the last MAP ``theta_t``.
      curvature: ``K_t``, the tempered, weighted and forgotten GGN sum
        (``DiagCurvature``, ``KronCurvature`` or ``FullCurvature``).
      num_seen: the decayed example count ``m`` (divides the KFAC factors).
      count: batches absorbed.
    """

    mean: Params
    curvature: Curvature
    num_seen: Array
    count: Array


class OnlineLaplaceInfo(NamedTuple):
    """Diagnostics of one step.

    Attributes:
      log_predictive: ``sum_i log p(y_i | x_i, D_{1:t-1})`` under the predicted
        belief, before the update (see :mod:`.prequential`).
      log_likelihood: ``sum_i log p(y_i | x_i, mu_{t|t-1})``, the plug-in value before the update.
      grad_norm: norm of the MAP objective's gradient at ``theta_t`` (0 at an exact MAP).
    """

    log_predictive: Array
    log_likelihood: Array
    grad_norm: Array


def init(params: Params, hessian: str = "diag") -> OnlineLaplaceState:
    """The prior belief, centred on ``params``."""
    dtype = float_dtype(params)
    return OnlineLaplaceState(params, belief.initial_curvature(hessian, params), jnp.zeros((), dtype),
                              jnp.zeros((), jnp.int32))


def _line_search(objective, theta: Params, gradient: Params, direction: Params) -> Params:
    """``theta + alpha direction`` for the largest ``alpha`` in ``1, 1/2, ..., 2^-(K-1)`` meeting Armijo's
    condition ``f(theta + alpha d) >= f(theta) + c alpha g^T d`` (Nocedal & Wright 2006, Alg. 3.1), else ``theta``.

    All K candidates are scored at once (one vmapped forward pass each); on a quadratic objective with
    ``d = P^{-1} g`` the full step always qualifies, so Gauss-Newton stays exact on linear-Gaussian models.
    """
    alphas = 0.5 ** jnp.arange(NUM_STEP_SIZES, dtype=float_dtype(theta))
    moved = lambda alpha: jax.tree.map(lambda t, d: t + alpha * d, theta, direction)  # noqa: E731
    values = jax.vmap(lambda alpha: objective(moved(alpha)))(alphas)
    accept = values >= objective(theta) + ARMIJO * alphas * optax.tree_utils.tree_vdot(gradient, direction)
    return moved(jnp.where(jnp.any(accept), alphas[jnp.argmax(accept)], 0.0))


def _maximize(objective, mean: Params, optimizer, num_inner_steps: int, gauss_newton_precision) -> Params:
    """``num_inner_steps`` ascent steps on ``objective`` from ``mean`` (optax, or Gauss-Newton with a line search)."""
    grad = jax.grad(objective)
    if isinstance(optimizer, str):
        def body(theta, _):
            gradient = grad(theta)
            direction = belief.apply_precision(gauss_newton_precision(theta), gradient, -1)
            return _line_search(objective, theta, gradient, direction), None

        theta, _ = jax.lax.scan(body, mean, None, length=num_inner_steps)
        return theta

    def body(carry, _):
        theta, opt_state = carry
        updates, opt_state = optimizer.update(jax.tree.map(jnp.negative, grad(theta)), opt_state, theta)
        return (optax.apply_updates(theta, updates), opt_state), None

    (theta, _), _ = jax.lax.scan(body, (mean, optimizer.init(mean)), None, length=num_inner_steps)
    return theta


def step(
    key: PRNGKey,
    state: OnlineLaplaceState,
    batch: Batch,
    *,
    log_joint: LogJoint,
    hessian: str = "diag",
    optimizer: optax.GradientTransformation | str = GAUSS_NEWTON,
    num_inner_steps: int = 1,
    forgetting: dynamics.Forgetting = dynamics.Forgetting(),
    likelihood_weight: belief.LikelihoodWeight = 1.0,
    predictive: str = "glm",
    num_predictive_samples: int = 16,
) -> tuple[OnlineLaplaceState, OnlineLaplaceInfo]:
    """Predict (forgetting), score the batch (one-step-ahead), MAP under the belief, curvature update."""
    c_lik = belief.likelihood_coefficient(log_joint, likelihood_weight, state.count)
    c_prior = log_joint.prior_weight
    prior = belief.tempered_prior(log_joint, state.mean, c_prior)
    curvature, num_seen = dynamics.forget(state.curvature, state.num_seen, prior, forgetting)
    predicted = belief.laplace_view(log_joint, state.mean, curvature, num_seen, c_prior)
    log_predictive = prequential.log_predictive(key, predicted, batch, predictive, num_predictive_samples)
    batch_size = jax.tree.leaves(batch)[0].shape[0]

    def objective(theta: Params) -> Array:
        deviation = jax.tree.map(jnp.subtract, theta, state.mean)
        penalty = optax.tree_utils.tree_vdot(deviation, belief.apply_precision(predicted, deviation, 1))
        return c_lik * belief.batch_log_likelihood(log_joint, theta, batch) - 0.5 * penalty

    def updated(theta: Params) -> LaplacePosterior:
        new, _ = belief.batch_curvature(log_joint, hessian, theta, batch)
        return belief.laplace_view(log_joint, theta, *belief.add_curvature(curvature, num_seen, new, c_lik,
                                                                          batch_size), c_prior)

    theta = _maximize(objective, state.mean, optimizer, num_inner_steps, updated)
    new, _ = belief.batch_curvature(log_joint, hessian, theta, batch)
    curvature, num_seen = belief.add_curvature(curvature, num_seen, new, c_lik, batch_size)
    gradient = jax.grad(objective)(theta)
    info = OnlineLaplaceInfo(log_predictive, belief.batch_log_likelihood(log_joint, state.mean, batch),
                             jnp.sqrt(optax.tree_utils.tree_vdot(gradient, gradient)))
    return OnlineLaplaceState(theta, curvature, num_seen.astype(state.num_seen.dtype), state.count + 1), info


def sample(key: PRNGKey, state: OnlineLaplaceState, num_samples: int, *, log_joint: LogJoint) -> Params:
    """``num_samples`` draws from the current belief; leaves gain a leading axis."""
    post = belief.laplace_view(log_joint, state.mean, state.curvature, state.num_seen, log_joint.prior_weight)
    return sampling.sample(post, key, num_samples)


@cached_builder
def build(
    log_joint: LogJoint,
    hessian: str = "diag",
    *,
    optimizer: optax.GradientTransformation | str = GAUSS_NEWTON,
    num_inner_steps: int = 1,
    forgetting: float | Array = 1.0,
    process_noise: float | Array = 0.0,
    likelihood_weight: belief.LikelihoodWeight = 1.0,
    predictive: str = "glm",
    num_predictive_samples: int = 16,
) -> Algorithm:
    """Sequential Laplace as an :class:`~bayesjax.base.Algorithm` (``bj.online(lj, "laplace_kfac", ...)``).

    Args:
      log_joint: the tempered target (Gaussian prior: the initial belief,
        centred on the ``params`` given to ``init``; temperature; ``num_data`` unused).
      hessian: ``"diag"``, ``"kfac"`` (flax ``Dense`` layers) or ``"full"`` (small models).
      optimizer: ``"gauss_newton"`` or an optax optimizer for the MAP of each batch.
      num_inner_steps: optimizer steps per batch.
      forgetting: ``gamma`` in (0, 1] (:mod:`.dynamics`).
      process_noise: random-walk variance ``q >= 0`` (diag and full only).
      likelihood_weight: ``w_t > 0``, a constant or a schedule ``count -> w``.
      predictive: ``"glm"`` or ``"mc"`` for the one-step-ahead log predictive.
      num_predictive_samples: draws of the ``"mc"`` predictive.

    Returns:
      An :class:`Algorithm` over :class:`OnlineLaplaceState`.

    Example:
      >>> algo = bj.online(lj, "laplace_kfac", optimizer=optax.adam(1e-2), num_inner_steps=5, forgetting=0.95)
      >>> post = bj.run(key, algo, params, (x, y), num_steps=100, batch_size=32, shuffle=False)
      >>> pred = bj.predictive(model.apply, post.sample(key, 50), x_test, lj.likelihood)
    """
    if hessian not in HESSIANS:
        raise ValueError(f"hessian must be one of {HESSIANS}, got {hessian!r}")
    known = optimizer == GAUSS_NEWTON if isinstance(optimizer, str) else isinstance(optimizer,
                                                                                 optax.GradientTransformation)
    if not known:
        raise ValueError(f"optimizer must be {GAUSS_NEWTON!r} or an optax GradientTransformation, got {optimizer!r}")
    options = dict(
        hessian=hessian,
        optimizer=optimizer,
        num_inner_steps=check_int("num_inner_steps", num_inner_steps),
        **belief.checked_options(log_joint, forgetting, process_noise, likelihood_weight, predictive,
                                 num_predictive_samples, inflatable=hessian != "kfac"),
    )

    def init_fn(key: PRNGKey, params: Params) -> OnlineLaplaceState:
        del key
        if hessian == "full" and num_params(params) > MAX_FULL_PARAMS:
            raise ValueError(f"hessian='full' is limited to {MAX_FULL_PARAMS} weights; use 'diag' or 'kfac'")
        return init(params, hessian)

    def step_fn(key: PRNGKey, state: OnlineLaplaceState, batch: Batch, *, log_joint: LogJoint):
        return step(key, state, batch, log_joint=log_joint, **options)

    def sample_fn(key: PRNGKey, state: OnlineLaplaceState, num_samples: int) -> Params:
        return sample(key, state, num_samples, log_joint=log_joint)

    return targeting(log_joint, init_fn, step_fn, sample_fn)
