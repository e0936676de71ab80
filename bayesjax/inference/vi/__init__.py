"""Variational inference with Gaussian families on minibatches, against the tempered ELBO.

    q* = argmin_q KL(q || p_T(theta | D)) = argmax_q ELBO_T(q),
    ELBO_T(q) = E_q[log_joint(theta, D)] + H[q]

(Hinton & van Camp 1993; Graves 2011; Blundell et al. 2015), estimated with
the reparametrization trick on minibatches; the temperature comes from the
log-joint (the equations per tempering mode are in :mod:`.objective`).

Families, one file each: :mod:`.meanfield` (diagonal, "Bayes by Backprop",
with optional local reparametrization of dense layers), :mod:`.lowrank`
(diagonal plus rank r), :mod:`.fullrank` (Cholesky, for small models and the
oracle check). Builders: ``bj.meanfield_vi``, ``bj.lowrank_vi``,
``bj.fullrank_vi``.
"""
from bayesjax.inference.vi.algorithm import (
    VIInfo,
    build,
    build_fullrank,
    build_lowrank,
    build_meanfield,
    init,
    sample,
    step,
)
from bayesjax.inference.vi.family import Family
from bayesjax.inference.vi.fullrank import FullRankVIState
from bayesjax.inference.vi.lowrank import LowRankVIState
from bayesjax.inference.vi.meanfield import MeanFieldVIState
from bayesjax.inference.vi.objective import ELBOTerms, elbo_draw, elbo_value_and_grad

__all__ = [
    "ELBOTerms",
    "Family",
    "FullRankVIState",
    "LowRankVIState",
    "MeanFieldVIState",
    "VIInfo",
    "build",
    "build_fullrank",
    "build_lowrank",
    "build_meanfield",
    "elbo_draw",
    "elbo_value_and_grad",
    "init",
    "sample",
    "step",
]
