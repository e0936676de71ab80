r"""The extended Kalman filter over the weights of a network (diagonal or full covariance).

The weights are the hidden state of a state-space model whose observation
model is the network linearized at the predicted mean ``mu = mu_{t|t-1}``,
``f(x; theta) ~= f(x; mu) + J (theta - mu)`` (Singhal & Wu 1989; Puskorius &
Feldkamp 1991). For an exponential-family likelihood, Ollivier (2018, "Online
natural gradient as a Kalman filter") shows that the EKF is the online
natural-gradient step

    P_t   = P_{t|t-1} + c_lik sum_{i in B_t} J_i^T Lambda_i J_i,
    mu_t  = mu + P_t^{-1} c_lik sum_{i in B_t} J_i^T r_i,

with ``Lambda_i = L_i L_i^T`` the output-space Fisher (the Laplace package's
GGN factors) and ``r_i = d log p(y_i | f) / df`` at ``f(x_i; mu)``. For a
Gaussian likelihood on a linear model (``J_i = x_i^T``, ``Lambda = 1 /
sigma^2``) this is Kalman's (1960) update in information form, so with
``structure="full"`` the belief after the last batch is the exact batch
posterior whatever the split. ``c_lik = w_t / T`` carries the log-joint's
temperature and the per-step likelihood weight (:mod:`.belief`).

Structures:

* ``"full"``: ``P`` dense, the update above (small models: D x D).
* ``"diag"``: the covariance-form (Kalman-gain) update with a diagonal
  predicted covariance ``Sigma = diag(v)``, whose posterior is projected back
  to its diagonal (the fully decoupled EKF, Puskorius & Feldkamp 1991; the
  VD-EKF of Chang, Murphy & Jones 2022). With ``H = sqrt(c_lik) L^T J``
  stacked over the batch (``[|B| M, D]``) and ``S = I + H Sigma H^T``:

      mu_t = mu + u - Sigma H^T S^{-1} H u,     u = Sigma c_lik sum_i J_i^T r_i,
      v_t  = v - v^2 * diag(H^T S^{-1} H).

  The mean update is the exact Bayesian update given the diagonal prior
  ``N(mu, Sigma)``; only the posterior covariance is made diagonal. It is
  exact when every batch's ``sum_i J_i^T Lambda_i J_i`` is diagonal (e.g. a
  linear model whose per-batch design has orthogonal columns).

The one-step-ahead log predictive of each batch is recorded before its update
(:mod:`.prequential`), after the dynamics step (:mod:`.dynamics`).

References: R. E. Kalman (1960), "A new approach to linear filtering and
prediction problems"; Y. Ollivier (2018), "Online natural gradient as a Kalman
filter", Electronic Journal of Statistics; P. Chang, K. Murphy, M. Jones
(2022), "On diagonal approximations to the extended Kalman filter for online
training of Bayesian neural networks"; G. Duran-Martin, L. Sanchez-Betancourt,
A. Shestopaloff, K. Murphy (2024), "A unifying framework for generalised
Bayesian online learning in non-stationary environments".
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from bayesjax.base import Algorithm, cached_builder
from bayesjax.targeting import targeting
from bayesjax.inference.laplace import factorization, jacobians, sampling
from bayesjax.inference.laplace.curvature import DiagCurvature, FullCurvature, output_factors
from bayesjax.inference.laplace.fit import MAX_FULL_PARAMS
from bayesjax.inference.online import belief, dynamics, prequential
from bayesjax.inference.vi.meanfield import float_dtype
from bayesjax.logjoint import LogJoint
from bayesjax.trees import num_params
from bayesjax.types import Array, Batch, Params, PRNGKey

STRUCTURES = ("diag", "full")


class EKFState(NamedTuple):
    """The Gaussian belief ``N(mean, (c_prior Delta + K)^{-1})``.

    Attributes:
      mean: ``mu_t``, a tree like the weights.
      curvature: ``K_t``, the data's share of the precision
        (:class:`~bayesjax.inference.laplace.DiagCurvature` or ``FullCurvature``).
      count: batches absorbed.
    """

    mean: Params
    curvature: DiagCurvature | FullCurvature
    count: Array


class EKFInfo(NamedTuple):
    """Diagnostics of one step, computed before its update.

    Attributes:
      log_predictive: ``sum_i log p(y_i | x_i, D_{1:t-1})``, the one-step-ahead
        (prequential) log predictive of the batch under the predicted belief.
      log_likelihood: ``sum_i log p(y_i | x_i, mu_{t|t-1})``, the plug-in value at the predicted mean.
    """

    log_predictive: Array
    log_likelihood: Array


def init(params: Params, structure: str = "diag") -> EKFState:
    """The prior belief, centred on ``params`` (zeros for the exact prior; initial weights for a network)."""
    return EKFState(params, belief.initial_curvature(structure, params), jnp.zeros((), jnp.int32))


def _diag_update(log_joint: LogJoint, mean: Params, variance: Params, gradient: Params, batch: Batch,
                 c_lik: Array) -> tuple[Params, Params]:
    """The covariance-form update with ``Sigma = diag(variance)``: ``(mu_t, v_t)`` (module docstring)."""
    x, y = batch
    outputs = log_joint.apply(mean, x)
    factors = output_factors(log_joint.likelihood, outputs, y, "ggn")  # [B, K, M]
    rows = jax.tree.map(
        lambda h: jnp.sqrt(c_lik) * h.reshape(h.shape[0] * h.shape[1], -1),
        jacobians.per_example_vjp(log_joint.apply, mean, None, x, jnp.swapaxes(factors, 1, 2)),
    )  # H, leaf by leaf: [B M, leaf size]
    flat = lambda tree: jax.tree.map(jnp.ravel, tree)  # noqa: E731
    v, u = flat(variance), flat(jax.tree.map(lambda s, g: s * c_lik * g, variance, gradient))
    num_rows = jax.tree.leaves(rows)[0].shape[0]
    identity = jnp.eye(num_rows, dtype=float_dtype(mean))
    innovation = identity + sum((h * s) @ h.T for h, s in zip(jax.tree.leaves(rows), jax.tree.leaves(v)))
    inverse = jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(innovation), True), identity)  # S^{-1}, one solve
    solved = inverse @ sum(h @ w for h, w in zip(jax.tree.leaves(rows), jax.tree.leaves(u)))
    new_mean = jax.tree.map(lambda m, w, s, h: m + (w - s * (h.T @ solved)).reshape(m.shape),
                            mean, u, v, rows)

    def shrink(s, h):
        # v_t = v (1 - r), r = v diag(H^T S^{-1} H) in [0, 1); rounding can break 1 - r >= 1 / (1 + v |h|^2)
        # (a diagonal of an inverse is at least the inverse of the diagonal), so that bound is enforced.
        explained = s * jnp.sum(h * (inverse @ h), axis=0)
        return s * jnp.maximum(1.0 - explained, 1.0 / (1.0 + s * jnp.sum(jnp.square(h), axis=0)))

    new_variance = jax.tree.map(lambda m, s, h: shrink(s, h).reshape(m.shape), mean, v, rows)
    return new_mean, new_variance


def step(
    key: PRNGKey,
    state: EKFState,
    batch: Batch,
    *,
    log_joint: LogJoint,
    structure: str = "diag",
    forgetting: dynamics.Forgetting = dynamics.Forgetting(),
    likelihood_weight: belief.LikelihoodWeight = 1.0,
    predictive: str = "glm",
    num_predictive_samples: int = 16,
) -> tuple[EKFState, EKFInfo]:
    """Predict (forgetting), score the batch (one-step-ahead), then the EKF update (module docstring)."""
    c_lik = belief.likelihood_coefficient(log_joint, likelihood_weight, state.count)
    c_prior = log_joint.prior_weight
    prior = belief.tempered_prior(log_joint, state.mean, c_prior)
    curvature, _ = dynamics.forget(state.curvature, jnp.zeros(()), prior, forgetting)
    predicted = belief.laplace_view(log_joint, state.mean, curvature, jnp.ones(()), c_prior)
    log_predictive = prequential.log_predictive(key, predicted, batch, predictive, num_predictive_samples)
    log_likelihood, gradient = jax.value_and_grad(belief.batch_log_likelihood, argnums=1)(
        log_joint, state.mean, batch)
    if structure == "full":
        new, _ = belief.batch_curvature(log_joint, "full", state.mean, batch)
        curvature = FullCurvature(curvature.matrix + c_lik * new.matrix)
        updated = belief.laplace_view(log_joint, state.mean, curvature, jnp.ones(()), c_prior)
        step_ = belief.apply_precision(updated, jax.tree.map(lambda g: c_lik * g, gradient), -1)
        mean = jax.tree.map(jnp.add, state.mean, step_)
    else:
        variance = factorization.marginal_variance(predicted)
        mean, variance = _diag_update(log_joint, state.mean, variance, gradient, batch, c_lik)
        curvature = DiagCurvature(jax.tree.map(lambda s, p: 1.0 / s - p, variance, prior))
    return EKFState(mean, curvature, state.count + 1), EKFInfo(log_predictive, log_likelihood)


def sample(key: PRNGKey, state: EKFState, num_samples: int, *, log_joint: LogJoint) -> Params:
    """``num_samples`` draws from the current belief; leaves gain a leading axis."""
    post = belief.laplace_view(log_joint, state.mean, state.curvature, jnp.ones(()), log_joint.prior_weight)
    return sampling.sample(post, key, num_samples)


@cached_builder
def build(
    log_joint: LogJoint,
    structure: str = "diag",
    *,
    forgetting: float | Array = 1.0,
    process_noise: float | Array = 0.0,
    likelihood_weight: belief.LikelihoodWeight = 1.0,
    predictive: str = "glm",
    num_predictive_samples: int = 16,
) -> Algorithm:
    """The EKF as an :class:`~bayesjax.base.Algorithm` (``bj.online(lj, "ekf", ...)``).

    Args:
      log_joint: the tempered target; its Gaussian prior is the initial
        belief's covariance (centred on the ``params`` given to ``init``), its
        temperature scales each batch's likelihood by ``1 / T``. ``num_data``
        is not used: a batch's log-likelihood is its unscaled sum.
      structure: ``"diag"`` or ``"full"`` (exact Kalman on linear-Gaussian models).
      forgetting: ``gamma`` in (0, 1] (:mod:`.dynamics`).
      process_noise: random-walk variance ``q >= 0`` (:mod:`.dynamics`).
      likelihood_weight: ``w_t > 0``, a constant or a schedule ``count -> w``.
      predictive: ``"glm"`` or ``"mc"`` for the one-step-ahead log predictive.
      num_predictive_samples: draws of the ``"mc"`` predictive.

    Returns:
      An :class:`Algorithm` over :class:`EKFState`; ``step`` consumes the next
      batch, ``sample`` draws from the current belief.

    Example:
      >>> algo = bj.online(lj, "ekf", structure="diag", process_noise=1e-4)
      >>> post = bj.run(key, algo, params, (x, y), num_steps=len(x) // 16, batch_size=16,
      ...               shuffle=False, progress=False)
      >>> prequential_nll = -post.info.log_predictive.sum() / len(x)
    """
    if structure not in STRUCTURES:
        raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")
    options = dict(structure=structure, **belief.checked_options(
        log_joint, forgetting, process_noise, likelihood_weight, predictive, num_predictive_samples))

    def init_fn(key: PRNGKey, params: Params) -> EKFState:
        del key
        if structure == "full" and num_params(params) > MAX_FULL_PARAMS:
            raise ValueError(f"structure='full' is limited to {MAX_FULL_PARAMS} weights; use 'diag'")
        return init(params, structure)

    def step_fn(key: PRNGKey, state: EKFState, batch: Batch, *, log_joint: LogJoint):
        return step(key, state, batch, log_joint=log_joint, **options)

    def sample_fn(key: PRNGKey, state: EKFState, num_samples: int) -> Params:
        return sample(key, state, num_samples, log_joint=log_joint)

    return targeting(log_joint, init_fn, step_fn, sample_fn)
