"""Laplace approximations: full, diagonal and KFAC GGN, last-layer, GLM predictive, evidence tuning.

One concept per file:

* :mod:`.layers`: finding and tapping flax ``Dense`` and ``Conv`` layers (inputs or patches, output gradients).
* :mod:`.curvature`: GGN / empirical-Fisher sums (diag, full, Kronecker factors),
  chunked over data, and the matrix-free GGN-vector product.
* :mod:`.posterior`: :class:`LaplacePosterior` (sampling, variances, log-determinants).
* :mod:`.glm`: the linearized predictive with probit / bridge / MC links.
* :mod:`.marglik`: the Laplace log evidence and prior-precision / noise tuning.
* :mod:`.algorithm`: the streaming :class:`~bayesjax.base.Algorithm` form.
* :mod:`.fit`: :func:`laplace`, the post-hoc entry point.

References: MacKay (1992), "A practical Bayesian framework for backpropagation
networks"; Martens & Grosse (2015), KFAC; Ritter, Botev & Barber (2018), "A
scalable Laplace approximation for neural networks"; Grosse & Martens (2016),
KFAC for convolution layers; Immer, Korzepa & Bauer
(2021), GLM predictive; Daxberger et al. (2021), "Laplace Redux".
"""
from bayesjax.inference.laplace.algorithm import LaplaceInfo, LaplaceState, build, from_state
from bayesjax.inference.laplace.curvature import (
    DiagCurvature,
    FullCurvature,
    KronCurvature,
    KronFactor,
    ggn_vector_product,
)
from bayesjax.inference.laplace.fit import laplace
from bayesjax.inference.laplace.marglik import log_marginal_likelihood, optimize_prior_precision
from bayesjax.inference.laplace.posterior import LaplacePosterior
from bayesjax.inference.laplace.glm import functional_covariance, predictive_glm

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
