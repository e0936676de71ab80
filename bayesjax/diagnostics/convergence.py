"""Convergence estimators of Markov chains: R-hat and effective sample size of every element of a pytree of draws.

* **split R-hat** (Gelman et al., *Bayesian Data Analysis*, 3rd ed., 2013,
  §11.4): the potential scale reduction of Gelman & Rubin (1992) after cutting
  every chain into its two halves (:func:`split_rhat`), the classic statistic.
* **rank-normalized split R-hat** (Vehtari, Gelman, Simpson, Carpenter &
  Bürkner, 2021, "Rank-normalization, folding, and localization: an improved
  R-hat for assessing convergence of MCMC", *Bayesian Analysis* 16(2)): the
  larger of the bulk R-hat (on ranks) and the tail R-hat (on folded ranks),
  which also sees chains that differ in scale or have infinite variance
  (:func:`rank_rhat`).
* **bulk and tail ESS** (Vehtari et al. 2021, §4.2-4.3): how many independent
  draws the chains are worth for the center of the distribution
  (:func:`ess`) and for its 5% and 95% quantiles (:func:`tail_ess`).

The arithmetic lives in :mod:`~bayesjax.diagnostics.kernels`; this module
maps it over parameter pytrees and documents it. Every function runs under
``jax.jit`` (only shapes are checked).
"""
from __future__ import annotations

from bayesjax.checks import concrete
from bayesjax.diagnostics import kernels
from bayesjax.types import ArrayTree

__all__ = ["check_prob", "ess", "rank_rhat", "split_rhat", "tail_ess"]


def check_prob(name: str, prob) -> None:
    """ValueError unless a concrete ``prob`` is a scalar strictly between 0 and 1."""
    value = concrete(prob)
    if value is not None and (value.shape != () or not 0 < float(value) < 1):
        raise ValueError(f"{name} must be a probability strictly between 0 and 1, got {prob!r}")


def split_rhat(samples: ArrayTree) -> ArrayTree:
    r"""Split R-hat of every element, from draws ``[C, K, ...]``.

    Each chain is cut into its first and second half (the middle draw dropped
    when K is odd), giving M = 2C chains of N = K // 2 draws, and the potential
    scale reduction of Gelman & Rubin (1992) is computed over them
    (:func:`blackjax.diagnostics.potential_scale_reduction`):

    .. math::

        W = \frac{1}{M} \sum_m s_m^2, \qquad
        B = \frac{N}{M - 1} \sum_m (\bar\theta_m - \bar\theta)^2, \qquad
        \hat R = \sqrt{\frac{\frac{N - 1}{N} W + \frac{1}{N} B}{W}}.

    Splitting is what makes this *split* R-hat (Gelman et al., BDA3 §11.4;
    Vehtari et al. 2021, §3): a chain that drifts, even when every chain drifts
    alike, has halves with different means and so R-hat > 1. Values above
    1.01 (Vehtari et al.) or, more leniently, 1.1 (BDA3) signal
    non-convergence. This is the classic statistic; :func:`rank_rhat` is the
    rank-normalized one Vehtari et al. recommend. An element constant over all
    draws has 0/0 = NaN.

    Args:
      samples: a pytree whose leaves are ``[C, K, ...]`` (C >= 1 chains,
        K >= 4 draws, time-ordered), e.g. from
        :func:`~bayesjax.diagnostics.draws.chain_samples`.

    Returns:
      A pytree of the same structure with leaves ``[...]``.

    Example:
      >>> import jax
      >>> import bayesjax as bj
      >>> draws = jax.random.normal(jax.random.key(0), (4, 500, 3))  # 4 independent chains
      >>> rhat = bj.diagnostics.split_rhat({"w": draws})["w"]
      >>> rhat.shape, bool(rhat.max() < 1.01)
      ((3,), True)
    """
    return kernels.per_element(kernels.split_rhat, samples, "split_rhat")


def rank_rhat(samples: ArrayTree) -> ArrayTree:
    r"""Rank-normalized split R-hat of every element (Vehtari et al. 2021, §4.1), from draws ``[C, K, ...]``.

    The draws are split as in :func:`split_rhat` (M = 2C chains of N = K // 2)
    and pooled, S = MN, then rank-normalized,

    .. math::

        z = \Phi^{-1}\!\left(\frac{r - 3/8}{S + 1/4}\right),

    with r the (average, for ties) rank of a draw among all S. The **bulk**
    R-hat is split R-hat of z; the **tail** R-hat is split R-hat of the
    rank-normalized *folded* draws :math:`|\theta - \mathrm{median}(\theta)|`,
    which turns a difference in spread between chains into a difference in
    location. The result is

    .. math::

        \hat R = \max(\hat R_\mathrm{bulk}, \hat R_\mathrm{tail}).

    Ranks make it invariant to monotone transformations and defined for
    distributions without a mean or variance (Cauchy), where classic R-hat is
    meaningless; folding catches chains with equal means and unequal scales,
    which classic R-hat misses. Use with the threshold 1.01 (Vehtari et al.)
    together with :func:`ess` and :func:`tail_ess` of at least 100 per chain.
    An element constant over all draws has NaN; an element with a NaN draw
    has NaN. Agrees with ``arviz.rhat(method="rank")``.

    Args:
      samples: a pytree whose leaves are ``[C, K, ...]`` (K >= 4, time-ordered).

    Returns:
      A pytree of the same structure with leaves ``[...]``.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import bayesjax as bj
      >>> draws = jax.random.normal(jax.random.key(0), (4, 500))
      >>> wide = draws * jnp.array([[1.0], [1.0], [1.0], [3.0]])  # one chain three times wider
      >>> bool(bj.diagnostics.rank_rhat(draws) < 1.01), bool(bj.diagnostics.rank_rhat(wide) > 1.01)
      (True, True)
    """
    return kernels.per_element(kernels.rank_rhat, samples, "rank_rhat")


def ess(samples: ArrayTree) -> ArrayTree:
    r"""Bulk effective sample size of every element, pooled over chains, from draws ``[C, K, ...]``.

    Following Vehtari et al. (2021, §4.2), the chains are split in halves
    (M = 2C chains of N = K // 2 draws), the pooled draws are rank-normalized,
    :math:`z = \Phi^{-1}((r - 3/8) / (MN + 1/4))` with r the (average) rank,
    and the multi-chain ESS of Stan/Geyer is computed on z by
    :func:`blackjax.diagnostics.effective_sample_size`:

    .. math::

        \hat N_\mathrm{eff} = \frac{MN}{\hat\tau}, \qquad
        \hat\tau = -1 + 2 \sum_{t'=0}^{T} \hat P_{t'}, \qquad
        \hat P_{t'} = \hat\rho_{2t'} + \hat\rho_{2t' + 1},

    with :math:`\hat\rho_t` the autocorrelation combined over chains and T
    the end of Geyer's initial positive, monotone sequence. For independent
    draws :math:`\hat N_\mathrm{eff} \approx CK`; for an AR(1) chain with
    coefficient :math:`\rho`, :math:`\hat N_\mathrm{eff} / CK \approx (1 - \rho) / (1 + \rho)`.
    Ranks make the estimate invariant to monotone transformations and finite
    for heavy tails. An element with no variation within chains gets 0.
    Agrees with ``arviz.ess(method="bulk")``.

    Args:
      samples: a pytree whose leaves are ``[C, K, ...]`` (K >= 4, time-ordered).

    Returns:
      A pytree of the same structure with leaves ``[...]``.

    Example:
      >>> import jax
      >>> import bayesjax as bj
      >>> draws = jax.random.normal(jax.random.key(0), (4, 500, 3))  # 4 x 500 independent draws
      >>> bool(bj.diagnostics.ess({"w": draws})["w"].min() > 1500)
      True
    """
    return kernels.per_element(kernels.bulk_ess, samples, "ess")


def tail_ess(samples: ArrayTree, probs: tuple[float, float] = kernels.TAIL_PROBS) -> ArrayTree:
    r"""Tail effective sample size of every element (Vehtari et al. 2021, §4.3), from draws ``[C, K, ...]``.

    For a quantile level p, the quantile ESS is the ESS (as in :func:`ess`,
    split chains, without ranks) of the indicator draws

    .. math::

        I_p = \mathbb{1}(\theta \le \hat q_p),

    :math:`\hat q_p` the p-quantile of all C K draws: it measures how well the
    chains estimate :math:`P(\theta \le q_p)`, hence the quantile. The tail ESS
    is the smaller of the two levels, by default the 5% and 95% quantiles,

    .. math::

        \mathrm{ESS}_\mathrm{tail} = \min(\mathrm{ESS}(I_{0.05}), \mathrm{ESS}(I_{0.95})).

    It is low when the chains visit the tails rarely or slowly (a heavy tail,
    a funnel's neck) even when the bulk mixes well; the 5-95% interval of the
    draws is reliable only when it is large (Vehtari et al. suggest at least
    100 per chain). Agrees with ``arviz.ess(method="tail")``.

    Args:
      samples: a pytree whose leaves are ``[C, K, ...]`` (K >= 4, time-ordered).
      probs: the two quantile levels, each strictly between 0 and 1.

    Returns:
      A pytree of the same structure with leaves ``[...]``.

    Raises:
      ValueError: ``probs`` is not two levels in (0, 1).

    Example:
      >>> import jax
      >>> import bayesjax as bj
      >>> draws = jax.random.normal(jax.random.key(0), (4, 500))  # independent draws
      >>> bool(bj.diagnostics.tail_ess(draws) > 1000)
      True
    """
    if len(probs) != 2:
        raise ValueError(f"tail_ess needs two quantile levels (low, high), got {probs!r}")
    for prob in probs:
        check_prob("tail_ess: each of probs", prob)
    return kernels.per_element(lambda x: kernels.tail_ess(x, *probs), samples, "tail_ess")
