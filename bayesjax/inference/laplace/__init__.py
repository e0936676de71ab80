"""Laplace approximations: full, diagonal and KFAC GGN, last-layer, GLM predictive, evidence tuning.

One concept per file, each importing only the ones above it in this list:

* :mod:`.subsets`: which weights are Bayesian (all, the last layer, named modules).
* :mod:`.interception`: seeing each dense and conv layer call of a linen or nnx model.
* :mod:`.layers`: finding and tapping flax layers (linen ``Dense`` and ``Conv``, nnx ``Linear`` and ``Conv``: inputs or patches, output gradients).
* :mod:`.jacobians`: per-example Jacobian products of a chunk (tapped layers or per-example VJPs).
* :mod:`.curvature`: GGN / empirical-Fisher sums (diag, full, Kronecker factors),
  chunked over data, and the matrix-free GGN-vector product.
* :mod:`.posterior`: the posterior as data (:class:`~.posterior.PosteriorData`) and its prior precision.
* :mod:`.factorization`: the structured algebra of the precision (factorization, variances, log-determinant).
* :mod:`.sampling`: draws from the posterior.
* :mod:`.glm`: the linearized predictive with probit / bridge / MC links.
* :mod:`.gridsearch`: the prior precision tuned on validation NLL (one program for the whole grid).
* :mod:`.marglik`: the Laplace log evidence and prior-precision / noise tuning.
* :mod:`.approximation`: :class:`LaplacePosterior`, the data with those functions as methods.
* :mod:`.algorithm`: the streaming :class:`~bayesjax.base.Algorithm` form.
* :mod:`.fit`: :func:`laplace`, the post-hoc entry point.

References: MacKay (1992), "A practical Bayesian framework for backpropagation
networks"; Martens & Grosse (2015), KFAC; Ritter, Botev & Barber (2018), "A
scalable Laplace approximation for neural networks"; Grosse & Martens (2016),
KFAC for convolution layers; Immer, Korzepa & Bauer
(2021), GLM predictive; Daxberger et al. (2021), "Laplace Redux".
"""
from bayesjax.inference.laplace.algorithm import LaplaceInfo, LaplaceState, build, from_state
from bayesjax.inference.laplace.approximation import LaplacePosterior
from bayesjax.inference.laplace.curvature import (
    DiagCurvature,
    FullCurvature,
    KronCurvature,
    KronFactor,
    ggn_vector_product,
)
from bayesjax.inference.laplace.fit import laplace
from bayesjax.inference.laplace.glm import functional_covariance, predictive_glm
from bayesjax.inference.laplace.marglik import log_marginal_likelihood, optimize_prior_precision

__all__ = [
    "DiagCurvature",
    "FullCurvature",
    "KronCurvature",
    "KronFactor",
    "LaplaceInfo",
    "LaplacePosterior",
    "LaplaceState",
    "build",
    "from_state",
    "functional_covariance",
    "ggn_vector_product",
    "laplace",
    "log_marginal_likelihood",
    "optimize_prior_precision",
    "predictive_glm",
]
