"""Convergence diagnostics of Markov chains: split R-hat and bulk ESS, in weight and function space.

A :class:`~bayesjax.driver.posterior.Posterior` from :func:`bayesjax.run.run`
over a Markov chain (SGLD, SGHMC, HMC, NUTS, ...) keeps each chain's retained
positions in a sample buffer. The rooms of this package:

* :mod:`~bayesjax.diagnostics.draws`: the draws read back in time order,
  ``[C, K, ...]`` (:func:`chain_samples`);
* :mod:`~bayesjax.diagnostics.convergence`: the estimators, split R-hat
  (:func:`split_rhat`) and bulk ESS (:func:`ess`);
* :mod:`~bayesjax.diagnostics.spaces`: where they are measured, on chosen
  weights (:func:`weight_space`) or on the predictions at probe inputs
  (:func:`function_space`, the check that suits neural networks);
* :mod:`~bayesjax.diagnostics.report`: the worst-case numbers as floats
  (:func:`summary`);
* :mod:`~bayesjax.diagnostics.arviz`: export to ArviZ (:func:`to_arviz`).

Example:
  >>> draws = bj.diagnostics.chain_samples(linear_post)
  >>> bj.diagnostics.split_rhat(draws)["w"].shape, bj.diagnostics.ess(draws)["w"].shape
  ((3, 1), (3, 1))
"""
from bayesjax.diagnostics.arviz import to_arviz
from bayesjax.diagnostics.convergence import ess, split_rhat
from bayesjax.diagnostics.draws import chain_samples
from bayesjax.diagnostics.report import summary
from bayesjax.diagnostics.spaces import function_space, weight_space

__all__ = [
    "chain_samples",
    "ess",
    "function_space",
    "split_rhat",
    "summary",
    "to_arviz",
    "weight_space",
]
