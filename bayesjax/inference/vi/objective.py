r"""The tempered evidence lower bound and its reparametrized, minibatch estimate.

The target is the tempered posterior of the log-joint, p_T(theta) ∝ exp(log_joint(theta, D)),
where (see :mod:`bayesjax.logjoint`)

    log_joint = c_lik log p(D | theta) + c_prior log p(theta),
    c_lik = c_prior = 1/T          (posterior tempering),
    c_lik = 1/T,  c_prior = 1      (likelihood tempering).

Minimizing KL(q || p_T) is maximizing the tempered ELBO

    ELBO_T(q) = E_q[log_joint(theta, D)] + H[q]
              = c_lik E_q[log p(D | theta)] + c_prior E_q[log p(theta)] + H[q]
              = log Z_T - KL(q || p_T).

With KL(q || p) = -E_q[log p(theta)] - H[q] this reads

    likelihood tempering:  ELBO_T = E_q[log p(D | theta)] / T - KL(q || p)
                           (the KL weighted by T relative to the likelihood),
    posterior tempering:   ELBO_T = (E_q[log p(D | theta)] - KL(q || p)) / T + (1 - 1/T) H[q]
                           (the prior is raised to 1/T as well, so the KL is
                           not simply reweighted: the entropy keeps weight 1).

Both reduce to the ordinary ELBO at T = 1. Estimation, per step:

* E_q[log p(D | theta)]: S reparametrized draws theta_s = mu + L eps_s, each
  scored on the minibatch with the unbiased (N / |B|) sum_{i in B} scaling of
  :meth:`LogJoint.log_likelihood`; optionally with local reparametrization
  (:mod:`.local_reparametrization`).
* E_q[log p(theta)]: in closed form when the prior is Gaussian (``prior.stddev``
  set, prior std s_i per weight),

      E_q[log p(theta)] = sum_i -1/2 log(2 pi s_i^2) - (mu_i^2 + Var_q[theta_i]) / (2 s_i^2),

  otherwise the Monte Carlo average of log p(theta_s) over the same draws.
* H[q]: in closed form for every family.

KL annealing (Bowman et al. 2016; Blundell et al. 2015 weight the KL per
minibatch) multiplies the part of ELBO_T that does not involve the data by a
weight beta_t, t the step count:

    objective_t = c_lik E_q[log p(D | theta)] + beta_t (c_prior E_q[log p(theta)] + H[q]).

With beta_t = 1 (the default) the objective is ELBO_T itself; ``elbo`` in the
diagnostics is always the unweighted ELBO_T.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from bayesjax.inference.vi.family import Family, variational, with_variational
from bayesjax.inference.vi.local_reparametrization import local_log_likelihood
from bayesjax.logjoint import LogJoint
from bayesjax.types import Array, Batch, Params, PRNGKey, State

KLWeight = float | Array | Callable[[Array], Array]
"""A constant KL weight beta or a schedule ``count -> beta``."""


class ELBOTerms(NamedTuple):
    """One estimate of the tempered ELBO and its parts (all scalars).

    Attributes:
      objective: what the optimizer ascends (ELBO_T with the KL-annealing weight).
      elbo: ELBO_T, the tempered evidence lower bound.
      expected_log_likelihood: E_q[log p(D | theta)], untempered, minibatch-scaled.
      expected_log_prior: E_q[log p(theta)], untempered.
      entropy: H[q].
    """

    objective: Array
    elbo: Array
    expected_log_likelihood: Array
    expected_log_prior: Array
    entropy: Array


def kl_weight_at(kl_weight: KLWeight, count: Array) -> Array:
    """beta at step ``count``."""
    return kl_weight(count) if callable(kl_weight) else jnp.asarray(kl_weight)


def gaussian_expected_log_prior(mean: Params, variance: Params, prior_stddev: Params) -> Array:
    """E_q[log N(theta | 0, s^2)] = sum_i -1/2 log(2 pi s_i^2) - (mu_i^2 + v_i) / (2 s_i^2).

    Args:
      mean: q's means mu.
      variance: q's marginal variances v.
      prior_stddev: the prior's per-weight standard deviations s.
    """
    def leaf(m, v, s):
        s2 = jnp.square(s)
        return jnp.sum(-0.5 * jnp.log(2 * math.pi * s2) - (jnp.square(m) + v) / (2 * s2))

    terms = jax.tree.leaves(jax.tree.map(leaf, mean, variance, prior_stddev))
    return sum(terms[1:], start=terms[0])


def elbo_draw(
    key: PRNGKey,
    state: State,
    batch: Batch,
    *,
    log_joint: LogJoint,
    family: Family,
    local_reparametrization: bool = False,
    kl_weight: KLWeight = 1.0,
) -> ELBOTerms:
    """The tempered ELBO estimated from one draw theta ~ q on one minibatch.

    Differentiable with respect to the variational fields of ``state``; its
    expectation over ``key`` (and over minibatches) is ELBO_T (see module
    docstring).

    Args:
      key: the draw's key (split into a weight key and a pre-activation key under local
        reparametrization).
      state: the family's state (only its variational fields and ``count`` are read).
      batch: ``(x, y)``.
      log_joint: the tempered log-joint.
      family: the variational family of ``state``.
      local_reparametrization: sample dense-layer pre-activations instead of
        their weights (mean-field only).
      kl_weight: beta, a constant or a schedule of ``state.count``.
    """
    weight_key, local_key = jax.random.split(key) if local_reparametrization else (key, None)
    theta = family.draw(weight_key, state)
    if local_reparametrization:
        stddev = jax.tree.map(jnp.sqrt, family.variance(state))
        log_lik = local_log_likelihood(local_key, log_joint, theta, family.mean(state), stddev, batch)
    else:
        log_lik = log_joint.log_likelihood(theta, batch)
    prior = log_joint.prior
    if prior.stddev is not None:
        mean = family.mean(state)
        log_prior = gaussian_expected_log_prior(mean, family.variance(state), prior.stddev(mean))
    else:
        log_prior = log_joint.log_prior(theta)
    entropy = family.entropy(state)
    zero = jnp.zeros_like(log_lik)
    data_term = log_joint.combine(log_lik, zero)
    rest = log_joint.combine(zero, log_prior) + entropy
    beta = kl_weight_at(kl_weight, state.count)
    return ELBOTerms(data_term + beta * rest, data_term + rest, log_lik, log_prior, entropy)


def elbo_value_and_grad(
    key: PRNGKey,
    state: State,
    batch: Batch,
    *,
    log_joint: LogJoint,
    family: Family,
    num_mc_samples: int = 1,
    local_reparametrization: bool = False,
    kl_weight: KLWeight = 1.0,
) -> tuple[ELBOTerms, tuple, Array | None]:
    """The ELBO estimate averaged over ``num_mc_samples`` draws, its gradient and the gradient's variance.

    Args:
      key: split into one key per draw.
      state: the family's state.
      batch: ``(x, y)``.
      log_joint, family, local_reparametrization, kl_weight: as :func:`elbo_draw`.
      num_mc_samples: S, the number of draws averaged.

    Returns:
      ``(terms, grads, grad_variance)``: the averaged :class:`ELBOTerms`; the
      gradient of the averaged ``objective`` with respect to the variational
      fields (a tuple in ``family.fields`` order); and, for S >= 2, the
      estimated variance of that averaged gradient summed over coordinates,
      sum_j Var_s[g_sj] / S (``None`` for S = 1).
    """
    phi = variational(state, family)

    def objective(draw_key, phi):
        terms = elbo_draw(draw_key, with_variational(state, family, phi), batch, log_joint=log_joint,
                          family=family, local_reparametrization=local_reparametrization, kl_weight=kl_weight)
        return terms.objective, terms

    grad_fn = jax.grad(objective, argnums=1, has_aux=True)
    if num_mc_samples == 1:
        grads, terms = grad_fn(key, phi)
        return terms, grads, None
    per_draw_grads, per_draw_terms = jax.vmap(grad_fn, (0, None))(jax.random.split(key, num_mc_samples), phi)
    grads = jax.tree.map(lambda g: jnp.mean(g, axis=0), per_draw_grads)
    terms = jax.tree.map(lambda t: jnp.mean(t, axis=0), per_draw_terms)
    variances = [jnp.sum(jnp.var(g, axis=0, ddof=1)) for g in jax.tree.leaves(per_draw_grads)]
    grad_variance = sum(variances[1:], start=variances[0]) / num_mc_samples
    return terms, grads, grad_variance
