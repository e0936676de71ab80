r"""Sequential mean-field variational inference: the previous q is the prior of the next ELBO.

Variational continual learning (Nguyen, Li, Bui & Turner 2018) applied to a
stream: with the predicted belief ``q_{t|t-1} = N(mu, diag(s^2))`` (the
previous q after the dynamics step of :mod:`.dynamics`), batch t fits

    q_t = argmax_q  ELBO_t(q),
    ELBO_t(q) = c_lik E_q[sum_{i in B_t} log p(y_i | x_i, theta)] - KL(q || q_{t|t-1})
              = c_lik E_q[...] + E_q[log q_{t|t-1}(theta)] + H[q],

over the mean-field family of the VI package (Blundell et al. 2015), by
``num_inner_steps`` optax steps started at ``q_{t|t-1}`` with a fresh
optimizer state, each on ``num_mc_samples`` reparametrized draws.
``E_q[log q_{t|t-1}]`` and ``H[q]`` are analytic. ``c_lik = w_t / T`` carries
the temperature and the per-step likelihood weight, and the initial belief is
the tempered prior (:mod:`.belief`), so at ``T = 1`` with no forgetting the
recursion targets the Bayes posterior; on a Gaussian linear model whose
posterior is diagonal, the optimum of every ELBO_t is the exact posterior.

References: C. V. Nguyen, Y. Li, T. D. Bui, R. E. Turner (2018), "Variational
continual learning", ICLR; C. Blundell et al. (2015), "Weight uncertainty in
neural networks"; R. Kurle et al. (2020), "Continual learning with Bayesian
neural networks for non-stationary data" (forgetting in VCL).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from bayesjax.base import Algorithm, cached_builder
from bayesjax.targeting import targeting
from bayesjax.checks import check_int
from bayesjax.inference.laplace.curvature import DiagCurvature
from bayesjax.inference.online import belief, dynamics, prequential
from bayesjax.inference.vi import algorithm, meanfield, scales
from bayesjax.inference.vi.family import Family
from bayesjax.inference.vi.meanfield import MeanFieldVIState
from bayesjax.inference.vi.objective import gaussian_expected_log_prior
from bayesjax.logjoint import LogJoint
from bayesjax.types import Array, Batch, Params, PRNGKey


class OnlineVIState(NamedTuple):
    """The mean-field belief ``q_t = N(mean, diag(sigma^2))``.

    Attributes:
      mean: ``mu_t``.
      rho: unconstrained scales, ``sigma = softplus(rho)`` (or ``exp(rho)``).
      count: batches absorbed.
    """

    mean: Params
    rho: Params
    count: Array


class OnlineVIInfo(NamedTuple):
    """Diagnostics of one step.

    Attributes:
      log_predictive: ``sum_i log p(y_i | x_i, D_{1:t-1})`` under ``q_{t|t-1}``,
        before the update (see :mod:`.prequential`).
      log_likelihood: ``sum_i log p(y_i | x_i, mu_{t|t-1})``, the plug-in value before the update.
      elbo: the last inner step's estimate of ELBO_t.
    """

    log_predictive: Array
    log_likelihood: Array
    elbo: Array


def _as_family_state(mean: Params, rho: Params, count: Array) -> MeanFieldVIState:
    """The VI package's state for the family's ``draw`` / ``entropy`` / ``variance`` (no optimizer)."""
    return MeanFieldVIState(mean, rho, None, count)


def init(params: Params, log_joint: LogJoint, parametrization: str = "softplus") -> OnlineVIState:
    """The prior belief ``N(params, 1 / (c_prior Delta))``."""
    prior = belief.tempered_prior(log_joint, params, log_joint.prior_weight)
    rho = jax.tree.map(lambda p: scales.unconstrained(jax.lax.rsqrt(p), parametrization), prior)
    return OnlineVIState(params, rho, jnp.zeros((), jnp.int32))


def elbo(
    key: PRNGKey,
    phi: tuple[Params, Params],
    batch: Batch,
    *,
    log_joint: LogJoint,
    family: Family,
    predicted_mean: Params,
    predicted_stddev: Params,
    c_lik: Array,
    num_mc_samples: int = 1,
) -> Array:
    """ELBO_t of ``q = N(mean, diag(sigma(rho)^2))``, ``phi = (mean, rho)``, against ``q_{t|t-1}``.

    ``c_lik E_q[sum_i log p(y_i | x_i, theta)]`` from ``num_mc_samples``
    reparametrized draws, plus the analytic ``E_q[log q_{t|t-1}] + H[q]``
    (``gaussian_expected_log_prior`` of the VI package, shifted to the
    predicted mean).
    """
    q = _as_family_state(*phi, jnp.zeros((), jnp.int32))
    draws = jax.vmap(family.draw, (0, None))(jax.random.split(key, num_mc_samples), q)
    log_likelihood = jnp.mean(jax.vmap(lambda theta: belief.batch_log_likelihood(log_joint, theta, batch))(draws))
    deviation = jax.tree.map(jnp.subtract, q.mean, predicted_mean)
    return (c_lik * log_likelihood + gaussian_expected_log_prior(deviation, family.variance(q), predicted_stddev)
            + family.entropy(q))


def step(
    key: PRNGKey,
    state: OnlineVIState,
    batch: Batch,
    *,
    log_joint: LogJoint,
    optimizer: optax.GradientTransformation,
    num_inner_steps: int = 10,
    num_mc_samples: int = 1,
    parametrization: str = "softplus",
    forgetting: dynamics.Forgetting = dynamics.Forgetting(),
    likelihood_weight: belief.LikelihoodWeight = 1.0,
    predictive: str = "glm",
    num_predictive_samples: int = 16,
) -> tuple[OnlineVIState, OnlineVIInfo]:
    """Predict (forgetting), score the batch (one-step-ahead), then maximize ELBO_t (module docstring)."""
    predictive_key, fit_key = jax.random.split(key)
    family = meanfield.family(parametrization=parametrization)
    c_lik = belief.likelihood_coefficient(log_joint, likelihood_weight, state.count)
    c_prior = log_joint.prior_weight
    prior = belief.tempered_prior(log_joint, state.mean, c_prior)
    variance = family.variance(_as_family_state(state.mean, state.rho, state.count))
    curvature = DiagCurvature(jax.tree.map(lambda v, p: 1.0 / v - p, variance, prior))
    curvature, _ = dynamics.forget(curvature, jnp.zeros(()), prior, forgetting)
    predicted = belief.laplace_view(log_joint, state.mean, curvature, jnp.ones(()), c_prior)
    log_predictive = prequential.log_predictive(predictive_key, predicted, batch, predictive,
                                                num_predictive_samples)
    stddev = jax.tree.map(lambda k, p: jax.lax.rsqrt(k + p), curvature.diag, prior)

    def body(carry, draw_key):
        phi, opt_state = carry
        value, grads = jax.value_and_grad(elbo, argnums=1)(draw_key, phi, batch, log_joint=log_joint, family=family,
                                                predicted_mean=state.mean, predicted_stddev=stddev, c_lik=c_lik,
                                                num_mc_samples=num_mc_samples)
        updates, opt_state = optimizer.update(jax.tree.map(jnp.negative, grads), opt_state, phi)
        return (optax.apply_updates(phi, updates), opt_state), value

    phi = (state.mean, jax.tree.map(lambda s: scales.unconstrained(s, parametrization), stddev))
    (phi, _), values = jax.lax.scan(body, (phi, optimizer.init(phi)), jax.random.split(fit_key, num_inner_steps))
    info = OnlineVIInfo(log_predictive, belief.batch_log_likelihood(log_joint, state.mean, batch), values[-1])
    return OnlineVIState(*phi, state.count + 1), info


def sample(key: PRNGKey, state: OnlineVIState, num_samples: int, *, parametrization: str = "softplus") -> Params:
    """``num_samples`` draws from ``q_t``; leaves gain a leading axis."""
    return algorithm.sample(key, _as_family_state(state.mean, state.rho, state.count), num_samples,
                            family=meanfield.family(parametrization=parametrization))


@cached_builder
def build(
    log_joint: LogJoint,
    optimizer: optax.GradientTransformation | None = None,
    *,
    num_inner_steps: int = 10,
    num_mc_samples: int = 1,
    parametrization: str = "softplus",
    forgetting: float | Array = 1.0,
    process_noise: float | Array = 0.0,
    likelihood_weight: belief.LikelihoodWeight = 1.0,
    predictive: str = "glm",
    num_predictive_samples: int = 16,
) -> Algorithm:
    """Sequential mean-field VI as an :class:`~bayesjax.base.Algorithm` (``bj.online(lj, "vi", ...)``).

    Args:
      log_joint: the tempered target (Gaussian prior: the initial belief,
        centred on the ``params`` given to ``init``; temperature; ``num_data`` unused).
      optimizer: optax optimizer over ``(mean, rho)`` (default ``optax.adam(1e-2)``).
      num_inner_steps: optimizer steps per batch.
      num_mc_samples: reparametrized draws per inner step.
      parametrization: ``"softplus"`` or ``"log"`` for ``sigma(rho)``.
      forgetting: ``gamma`` in (0, 1] (:mod:`.dynamics`).
      process_noise: random-walk variance ``q >= 0``.
      likelihood_weight: ``w_t > 0``, a constant or a schedule ``count -> w``.
      predictive: ``"glm"`` or ``"mc"`` for the one-step-ahead log predictive.
      num_predictive_samples: draws of the ``"mc"`` predictive.

    Returns:
      An :class:`Algorithm` over :class:`OnlineVIState`.

    Example:
      >>> algo = bj.online(lj, "vi", optimizer=optax.adam(1e-2), num_inner_steps=20, process_noise=1e-4)
      >>> post = bj.run(key, algo, params, (x, y), num_steps=100, batch_size=32, shuffle=False)
    """
    optimizer = optax.adam(1e-2) if optimizer is None else optimizer
    if not isinstance(optimizer, optax.GradientTransformation):
        raise ValueError(f"optimizer must be an optax GradientTransformation, got {type(optimizer).__name__}")
    options = dict(
        optimizer=optimizer,
        num_inner_steps=check_int("num_inner_steps", num_inner_steps),
        num_mc_samples=check_int("num_mc_samples", num_mc_samples),
        parametrization=scales.check(parametrization),
        **belief.checked_options(log_joint, forgetting, process_noise, likelihood_weight, predictive,
                                 num_predictive_samples),
    )

    def init_fn(key: PRNGKey, params: Params) -> OnlineVIState:
        del key
        return init(params, log_joint, parametrization)

    def step_fn(key: PRNGKey, state: OnlineVIState, batch: Batch, *, log_joint: LogJoint):
        return step(key, state, batch, log_joint=log_joint, **options)

    def sample_fn(key: PRNGKey, state: OnlineVIState, num_samples: int) -> Params:
        return sample(key, state, num_samples, parametrization=parametrization)

    return targeting(log_joint, init_fn, step_fn, sample_fn)
