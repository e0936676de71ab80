"""Convergence diagnostics of Markov chains: R-hat, bulk and tail ESS, MCSE, in weight and function space.

A :class:`~bayesjax.driver.posterior.Posterior` from :func:`bayesjax.run.run`
over a Markov chain (SGLD, SGHMC, HMC, NUTS, ...) keeps each chain's retained
positions in a sample buffer. The rooms of this package:

* :mod:`~bayesjax.diagnostics.draws`: the draws read back in time order,
  ``[C, K, ...]`` (:func:`chain_samples`);
* :mod:`~bayesjax.diagnostics.convergence`: split R-hat (:func:`split_rhat`),
  rank-normalized split R-hat (:func:`rank_rhat`), bulk ESS (:func:`ess`) and
  tail ESS (:func:`tail_ess`), after Vehtari et al. (2021);
* :mod:`~bayesjax.diagnostics.mcse`: Monte Carlo standard errors of a mean
  (:func:`mcse_mean`) and of a quantile (:func:`mcse_quantile`);
* :mod:`~bayesjax.diagnostics.kernels`: the arithmetic of all of them on one
  array ``[C, K, E]``;
* :mod:`~bayesjax.diagnostics.spaces`: where they are measured, on chosen
  weights (:func:`weight_space`) or on the predictions at probe inputs
  (:func:`function_space`, the check that suits neural networks);
* :mod:`~bayesjax.diagnostics.report`: the worst-case numbers as floats
  (:func:`summary`);
* :mod:`~bayesjax.diagnostics.arviz`: export to ArviZ (:func:`to_arviz`,
  with the same arguments as :func:`summary`).

Example:
  >>> draws = bj.diagnostics.chain_samples(linear_post)
  >>> bj.diagnostics.rank_rhat(draws)["w"].shape, bj.diagnostics.tail_ess(draws)["w"].shape
  ((3, 1), (3, 1))
"""
from bayesjax.diagnostics.arviz import to_arviz
from bayesjax.diagnostics.convergence import ess, rank_rhat, split_rhat, tail_ess
from bayesjax.diagnostics.draws import chain_samples
from bayesjax.diagnostics.mcse import mcse_mean, mcse_quantile
from bayesjax.diagnostics.report import summary
from bayesjax.diagnostics.spaces import function_space, weight_space

__all__ = [
    "chain_samples",
    "ess",
    "function_space",
    "mcse_mean",
    "mcse_quantile",
    "rank_rhat",
    "split_rhat",
    "summary",
    "tail_ess",
    "to_arviz",
    "weight_space",
]
