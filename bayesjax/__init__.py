"""bayesjax: Bayesian neural networks in JAX behind one functional protocol.

Example:
  >>> import bayesjax as bj
  >>> lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=n)
  >>> post = bj.run(key, bj.map(lj, optax.adam(1e-3)), params, (x, y), num_steps=20, batch_size=128)
  >>> pred = bj.predictive(model.apply, post.sample(key, 1), x_test, lj.likelihood)
"""
from bayesjax import (augment, buffer, convolution, data, diagnostics, likelihoods, linear, memory, metrics, models,
                      priors, sharding, trees)
from bayesjax import calibration
from bayesjax.base import Algorithm
from bayesjax.buffer import with_sample_buffer
from bayesjax.chains import vmap_chains
from bayesjax.driver.posterior import DivergenceError, DivergenceWarning, Posterior
from bayesjax.inference.ensemble import build as ensemble
from bayesjax.inference.ensemble import build_multiswag as multiswag
from bayesjax.inference.from_blackjax import from_blackjax
from bayesjax.inference.laplace import LaplacePosterior, laplace
from bayesjax.inference.laplace import build as streaming_laplace
from bayesjax.inference.map import build as map  # noqa: A001 (bj.map is the public name)
from bayesjax.inference.mc_dropout import build as mc_dropout
from bayesjax.inference.mcmc.hmc import build_hmc as hmc
from bayesjax.inference.mcmc.nuts import build_nuts as nuts
from bayesjax.inference.online import online
from bayesjax.inference.cyclical import build_cyclical_sgld as cyclical_sgld
from bayesjax.inference.sgmcmc import build_sghmc as sghmc
from bayesjax.inference.sgmcmc import build_sgld as sgld
from bayesjax.inference.swag import build_swa as swa
from bayesjax.inference.swag import build_swag as swag
from bayesjax.inference.vi import build_fullrank as fullrank_vi
from bayesjax.inference.vi import build_lowrank as lowrank_vi
from bayesjax.inference.vi import build_meanfield as meanfield_vi
from bayesjax.logjoint import LogJoint, log_joint
from bayesjax.model_state import recompute_statistics, with_model_state
from bayesjax.predictive import ClassificationPredictive, RegressionPredictive, predictive
from bayesjax.run import run

__version__ = "0.2.0"

__all__ = [
    "Algorithm",
    "augment",
    "buffer",
    "calibration",
    "ClassificationPredictive",
    "DivergenceError",
    "DivergenceWarning",
    "LaplacePosterior",
    "LogJoint",
    "Posterior",
    "RegressionPredictive",
    "convolution",
    "cyclical_sgld",
    "data",
    "diagnostics",
    "ensemble",
    "from_blackjax",
    "fullrank_vi",
    "hmc",
    "likelihoods",
    "linear",
    "laplace",
    "log_joint",
    "lowrank_vi",
    "map",
    "mc_dropout",
    "memory",
    "meanfield_vi",
    "multiswag",
    "metrics",
    "models",
    "nuts",
    "online",
    "predictive",
    "recompute_statistics",
    "priors",
    "run",
    "sharding",
    "streaming_laplace",
    "swa",
    "swag",
    "trees",
    "sghmc",
    "sgld",
    "vmap_chains",
    "with_model_state",
    "with_sample_buffer",
]
