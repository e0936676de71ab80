"""Monte Carlo standard errors: how far a posterior mean or quantile estimated from correlated draws may be off.

Both estimators follow Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021,
"Rank-normalization, folding, and localization: an improved R-hat for
assessing convergence of MCMC", *Bayesian Analysis* 16(2), §4.4) and agree
with ``arviz.mcse``. The arithmetic lives in
:mod:`~bayesjax.diagnostics.kernels`.
"""
from __future__ import annotations

from bayesjax.diagnostics import kernels
from bayesjax.diagnostics.convergence import check_prob
from bayesjax.types import ArrayTree

__all__ = ["mcse_mean", "mcse_quantile"]


def mcse_mean(samples: ArrayTree) -> ArrayTree:
    r"""Monte Carlo standard error of the posterior mean of every element, from draws ``[C, K, ...]``.

    .. math::

        \mathrm{MCSE}(\bar\theta) = \frac{\hat\sigma}{\sqrt{\mathrm{ESS}_\mathrm{mean}}},

    with :math:`\hat\sigma` the standard deviation of all C K draws (ddof 1)
    and :math:`\mathrm{ESS}_\mathrm{mean}` the split-chain ESS of the draws
    themselves (as :func:`~bayesjax.diagnostics.convergence.ess`, without
    rank normalization, since the mean is not rank-invariant). Report a
    posterior mean to the digits this error allows. An element constant over
    all draws gets 0; one whose chains are each constant at different values
    gets inf (the ESS is 0).

    Args:
      samples: a pytree whose leaves are ``[C, K, ...]`` (K >= 4, time-ordered).

    Returns:
      A pytree of the same structure with leaves ``[...]``, in the units of
      the draws.

    Example:
      >>> import jax
      >>> import bayesjax as bj
      >>> draws = jax.random.normal(jax.random.key(0), (4, 500))  # 2000 independent N(0, 1) draws
      >>> round(float(bj.diagnostics.mcse_mean(draws)), 2)  # about 1 / sqrt(2000)
      0.02
    """
    return kernels.per_element(kernels.mcse_mean, samples, "mcse_mean")


def mcse_quantile(samples: ArrayTree, prob: float) -> ArrayTree:
    r"""Monte Carlo standard error of the posterior ``prob``-quantile of every element, from draws ``[C, K, ...]``.

    With :math:`E = \mathrm{ESS}(\mathbb{1}(\theta \le \hat q_p))` the quantile
    ESS of :func:`~bayesjax.diagnostics.convergence.tail_ess`, the uncertainty
    of :math:`F(\hat q_p)` is modeled as :math:`\mathrm{Beta}(Ep + 1, E(1 - p) + 1)`;
    its quantiles :math:`a, b` at :math:`\Phi(-1)` and :math:`\Phi(1)` (a
    :math:`\pm 1` sd interval) are mapped back through the sorted draws
    :math:`\theta_{(1)} \le \dots \le \theta_{(S)}`,

    .. math::

        \mathrm{MCSE}(\hat q_p) = \tfrac12 \left(\theta_{(\lceil bS \rceil)} - \theta_{(\lfloor aS \rfloor)}\right)

    (indices clipped to the draws). The Beta quantiles are found by bisection
    on :func:`jax.scipy.special.betainc`, so it runs under ``jax.jit``.

    Args:
      samples: a pytree whose leaves are ``[C, K, ...]`` (K >= 4, time-ordered).
      prob: the quantile level, strictly between 0 and 1.

    Returns:
      A pytree of the same structure with leaves ``[...]``, in the units of
      the draws.

    Raises:
      ValueError: ``prob`` is not in (0, 1).

    Example:
      >>> import jax
      >>> import bayesjax as bj
      >>> draws = jax.random.normal(jax.random.key(0), (4, 500))
      >>> 0.02 < float(bj.diagnostics.mcse_quantile(draws, 0.5)) < 0.05  # sqrt(pi / 2 / 2000) = 0.028
      True
    """
    check_prob("mcse_quantile: prob", prob)
    return kernels.per_element(lambda x: kernels.mcse_quantile(x, prob), samples, "mcse_quantile")
