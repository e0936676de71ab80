"""The VI method behind the Algorithm protocol: generic init / step / sample and the builders.

One step draws S reparametrized weight sets from q, estimates the tempered
ELBO on the minibatch (:mod:`.objective`), and takes one optax step on the
variational parameters (fed the negated gradient: optax minimizes). The state
has no ``position`` field: it is an approximate posterior, and ``sample``
draws from q itself.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from bayesjax.base import Algorithm, cached_builder
from bayesjax.targeting import targeting
from bayesjax.checks import check_int, check_positive
from bayesjax.inference.vi import fullrank, lowrank, meanfield
from bayesjax.inference.vi.family import Family, variational, with_variational
from bayesjax.inference.vi.objective import KLWeight, elbo_value_and_grad
from bayesjax.logjoint import LogJoint
from bayesjax.types import Array, Batch, Params, PRNGKey, State


class VIInfo(NamedTuple):
    """Diagnostics of one VI step, at the step's starting q (minibatch estimates).

    Attributes:
      elbo: ELBO_T, the tempered evidence lower bound (unweighted by KL annealing).
      expected_log_likelihood: E_q[log p(D | theta)], untempered.
      expected_log_prior: E_q[log p(theta)], untempered (analytic for Gaussian priors).
      entropy: H[q].
      kl: KL(q || p) = -E_q[log p(theta)] - H[q], untempered, against the prior.
      grad_variance: estimated variance of the gradient estimate, summed over
        coordinates (from the spread of the S per-draw gradients); ``None``
        when ``num_mc_samples == 1``.
    """

    elbo: Array
    expected_log_likelihood: Array
    expected_log_prior: Array
    entropy: Array
    kl: Array
    grad_variance: Array | None


def init(key: PRNGKey, params: Params, *, family: Family, optimizer: optax.GradientTransformation) -> State:
    """q centred on ``params`` (its scales from the family's ``init_scale``) with a fresh optimizer state."""
    fields = family.init(key, params)
    phi = tuple(fields[name] for name in family.fields)
    return family.state_type(**fields, opt_state=optimizer.init(phi), count=jnp.zeros((), jnp.int32))


def step(
    key: PRNGKey,
    state: State,
    batch: Batch,
    *,
    log_joint: LogJoint,
    family: Family,
    optimizer: optax.GradientTransformation,
    num_mc_samples: int = 1,
    local_reparametrization: bool = False,
    kl_weight: KLWeight = 1.0,
) -> tuple[State, VIInfo]:
    """One stochastic-gradient ascent step on the tempered ELBO (see :mod:`.objective`).

    The optimizer meets the per-example negative ELBO ``-T ELBO / N``, the
    scale of :meth:`~bayesjax.logjoint.LogJoint.loss`, so a learning rate
    means the same at every data size N and temperature T.
    """
    terms, grads, grad_variance = elbo_value_and_grad(
        key, state, batch, log_joint=log_joint, family=family, num_mc_samples=num_mc_samples,
        local_reparametrization=local_reparametrization, kl_weight=kl_weight,
    )
    phi = variational(state, family)
    per_example = -log_joint.temperature / log_joint.num_data
    updates, opt_state = optimizer.update(jax.tree.map(lambda g: per_example * g, grads), state.opt_state, phi)
    state = with_variational(state, family, optax.apply_updates(phi, updates))
    state = state._replace(opt_state=opt_state, count=state.count + 1)
    kl = -(terms.expected_log_prior + terms.entropy)
    info = VIInfo(terms.elbo, terms.expected_log_likelihood, terms.expected_log_prior, terms.entropy, kl,
                  grad_variance)
    return state, info


def sample(key: PRNGKey, state: State, num_samples: int, *, family: Family) -> Params:
    """``num_samples`` independent draws from q; leaves gain a leading axis."""
    return jax.vmap(family.draw, (0, None))(jax.random.split(key, num_samples), state)


def _check_common(optimizer, num_mc_samples, init_scale, kl_weight) -> int:
    if not isinstance(optimizer, optax.GradientTransformation) and not hasattr(optimizer, "update"):
        raise ValueError(f"optimizer must be an optax GradientTransformation, got {type(optimizer).__name__}")
    num_mc_samples = check_int("num_mc_samples", num_mc_samples)
    check_positive("init_scale", init_scale)
    if not callable(kl_weight):
        check_positive("kl_weight", kl_weight, allow_zero=True)
    return num_mc_samples


@cached_builder
def build(
    log_joint: LogJoint,
    family: Family,
    optimizer: optax.GradientTransformation,
    num_mc_samples: int = 1,
    local_reparametrization: bool = False,
    kl_weight: KLWeight = 1.0,
) -> Algorithm:
    """VI over any Gaussian :class:`~bayesjax.inference.vi.family.Family` as an :class:`Algorithm`."""
    if local_reparametrization and not family.factorized:
        raise ValueError(
            f"local_reparametrization needs a fully factorized (mean-field) q, not the {family.name} family"
        )

    def init_fn(key: PRNGKey, params: Params) -> State:
        return init(key, params, family=family, optimizer=optimizer)

    def step_fn(key: PRNGKey, state: State, batch: Batch, *, log_joint: LogJoint) -> tuple[State, VIInfo]:
        return step(key, state, batch, log_joint=log_joint, family=family, optimizer=optimizer,
                    num_mc_samples=num_mc_samples, local_reparametrization=local_reparametrization,
                    kl_weight=kl_weight)

    def sample_fn(key: PRNGKey, state: State, num_samples: int) -> Params:
        return sample(key, state, num_samples, family=family)

    return targeting(log_joint, init_fn, step_fn, sample_fn, recompute_statistics=True)


@cached_builder
def build_meanfield(
    log_joint: LogJoint,
    optimizer: optax.GradientTransformation,
    num_mc_samples: int = 1,
    init_scale: float | Array = 1e-2,
    parametrization: str = "softplus",
    local_reparametrization: bool = False,
    kl_weight: KLWeight = 1.0,
) -> Algorithm:
    """Mean-field Gaussian VI, "Bayes by Backprop" (Blundell et al. 2015), on minibatches.

    q(theta) = prod_i N(mu_i, softplus(rho_i)^2) is fitted by stochastic
    gradient ascent on the tempered ELBO of ``log_joint``, estimated on each
    minibatch with S reparametrized draws theta_s = mu + sigma eps_s:

        ELBO_T(q) = E_q[log_joint(theta, D)] + H[q]
                  = c_lik E_q[log p(D | theta)] + c_prior E_q[log p(theta)] + H[q]

    Temperature: c_lik = 1/T and c_prior = 1/T (posterior tempering) or 1
    (likelihood tempering), so at T = 1 this is the ordinary ELBO and its
    optimum is KL(q || p_T)'s (:mod:`bayesjax.inference.vi.objective` writes
    both forms out). The expected log-prior is analytic for a Gaussian prior,
    Monte Carlo otherwise; ``kl_weight`` beta anneals the non-data part.

    Learning rate: the optimizer meets the gradient of the per-example
    negative ELBO, -T ELBO_T / N, the scale of
    :meth:`~bayesjax.logjoint.LogJoint.loss`, so a learning rate means what
    it means for :func:`bayesjax.map` at every N and T. No default:
    ``optax.adam(1e-3)`` (``bayesjax compare``'s) fits the digits and
    Fashion-MNIST networks; q's scales move slowly from ``init_scale``, so
    long runs (or a larger rate) are needed for them to settle.

    State and info: :class:`~bayesjax.inference.vi.meanfield.MeanFieldVIState`
    (``mean``, ``rho``, ``opt_state``, ``count``) and :class:`VIInfo`
    (``elbo``, ``expected_log_likelihood``, ``expected_log_prior``,
    ``entropy``, ``kl``, ``grad_variance``), minibatch estimates at the
    step's starting q.

    Args:
      log_joint: the tempered log-joint (its temperature sets the tempered ELBO).
      optimizer: an optax optimizer over ``(mean, rho)``.
      num_mc_samples: S reparametrized draws per step (S >= 2 also reports
        ``grad_variance``).
      init_scale: sigma of every weight at the start (may be traced).
      parametrization: ``"softplus"`` (sigma = log(1 + e^rho)) or ``"log"`` (sigma = e^rho).
      local_reparametrization: sample the pre-activations of ``flax.linen.Dense``
        layers per example (Kingma et al. 2015): same expectation, lower variance.
      kl_weight: KL-annealing weight beta, a constant or a schedule ``count -> beta``.

    Returns:
      An :class:`Algorithm` over :class:`~bayesjax.inference.vi.meanfield.MeanFieldVIState`;
      ``sample`` draws from q.

    Example:
      >>> algo = bj.meanfield_vi(lj, optax.adam(1e-3), init_scale=1e-2)
      >>> post = bj.run(key, algo, params, (x, y), num_steps=20, batch_size=50, progress=False)
      >>> pred = bj.predictive(model.apply, post.sample(key, 100), x_test, lj.likelihood)
      >>> pred.probs.shape   # the model average on the 100 test digits
      (100, 10)

    References:
      C. Blundell, J. Cornebise, K. Kavukcuoglu and D. Wierstra, "Weight
      uncertainty in neural networks", ICML 2015. D. P. Kingma, T. Salimans
      and M. Welling, "Variational dropout and the local reparameterization
      trick", NeurIPS 2015.
    """
    num_mc_samples = _check_common(optimizer, num_mc_samples, init_scale, kl_weight)
    return build(log_joint, meanfield.family(init_scale, parametrization), optimizer, num_mc_samples,
                 bool(local_reparametrization), kl_weight)


@cached_builder
def build_fullrank(
    log_joint: LogJoint,
    optimizer: optax.GradientTransformation,
    num_mc_samples: int = 1,
    init_scale: float | Array = 1e-2,
    parametrization: str = "softplus",
    kl_weight: KLWeight = 1.0,
) -> Algorithm:
    """Full-rank Gaussian VI with a Cholesky factor, for small models (D x D memory).

    q(theta) = N(mu, L L^T) over the raveled parameters, fitted like
    :func:`build_meanfield`: stochastic gradient ascent on the tempered ELBO
    E_q[log_joint(theta, D)] + H[q] (T enters through the log-joint), the
    optimizer meeting the per-example negative ELBO -T ELBO_T / N (the scale
    of :func:`bayesjax.map`'s loss). On a Gaussian target its optimum is the
    exact (tempered) posterior. The example runs ``optax.adam(1e-2)`` with
    8 draws per step.

    State and info: :class:`~bayesjax.inference.vi.fullrank.FullRankVIState`
    (``mean``, ``chol``, ``opt_state``, ``count``) and :class:`VIInfo`.

    Args:
      log_joint: the tempered log-joint.
      optimizer: an optax optimizer over ``(mean, chol)``.
      num_mc_samples: S reparametrized draws per step.
      init_scale: L = init_scale I at the start.
      parametrization: ``"softplus"`` or ``"log"`` for L's diagonal.
      kl_weight: KL-annealing weight beta, a constant or a schedule.

    Returns:
      An :class:`Algorithm` over :class:`~bayesjax.inference.vi.fullrank.FullRankVIState`.

    Example:
      >>> algo = bj.fullrank_vi(lj, optax.adam(1e-2), num_mc_samples=8)
      >>> post = bj.run(key, algo, params_map, (x, y), num_steps=20, progress=False)
      >>> post.state.chol.shape   # one chain; D x D over the D = 1210 weights of the MLP
      (1, 1210, 1210)
    """
    num_mc_samples = _check_common(optimizer, num_mc_samples, init_scale, kl_weight)
    return build(log_joint, fullrank.family(init_scale, parametrization), optimizer, num_mc_samples,
                 kl_weight=kl_weight)


@cached_builder
def build_lowrank(
    log_joint: LogJoint,
    optimizer: optax.GradientTransformation,
    rank: int = 1,
    num_mc_samples: int = 1,
    init_scale: float | Array = 1e-2,
    parametrization: str = "softplus",
    kl_weight: KLWeight = 1.0,
) -> Algorithm:
    """Low-rank-plus-diagonal Gaussian VI: Sigma = diag(sigma^2) + U U^T, U of rank r.

    Captures the r leading directions of posterior correlation at O(D r)
    memory, between mean-field and full rank; fitted like
    :func:`build_meanfield`: stochastic gradient ascent on the tempered ELBO
    E_q[log_joint(theta, D)] + H[q] (T enters through the log-joint), the
    optimizer meeting the per-example negative ELBO -T ELBO_T / N (the scale
    of :func:`bayesjax.map`'s loss; ``optax.adam(1e-3)`` as for mean field).

    State and info: :class:`~bayesjax.inference.vi.lowrank.LowRankVIState`
    (``mean``, ``rho``, ``factor``, ``opt_state``, ``count``) and :class:`VIInfo`.

    Args:
      log_joint: the tempered log-joint.
      optimizer: an optax optimizer over ``(mean, rho, factor)``.
      rank: r >= 1, the number of columns of U.
      num_mc_samples: S reparametrized draws per step.
      init_scale: the marginal standard deviation at the start.
      parametrization: ``"softplus"`` or ``"log"`` for sigma(rho).
      kl_weight: KL-annealing weight beta, a constant or a schedule.

    Returns:
      An :class:`Algorithm` over :class:`~bayesjax.inference.vi.lowrank.LowRankVIState`.

    Example:
      >>> algo = bj.lowrank_vi(lj, optax.adam(1e-3), rank=5)
      >>> state = algo.init(key, params_map)   # q around the MAP estimate
      >>> state.factor["Dense_0"]["kernel"].shape   # U's leaf: the weight's shape, then r
      (64, 16, 5)
    """
    num_mc_samples = _check_common(optimizer, num_mc_samples, init_scale, kl_weight)
    rank = check_int("rank", rank)
    return build(log_joint, lowrank.family(rank, init_scale, parametrization), optimizer, num_mc_samples,
                 kl_weight=kl_weight)
