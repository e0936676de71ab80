"""A 40-example, 3-class MLP problem for the driver's tests: ``(log_joint, params, (x, y))``."""
import jax
import numpy as np

import bayesjax as bj

MODEL = bj.models.mlp([8], num_outputs=3)


def tiny_classifier():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = rng.integers(0, 3, size=40).astype(np.int32)
    lj = bj.log_joint(MODEL.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=40)
    return lj, MODEL.init(jax.random.key(0), x[:1]), (x, y)
