"""The Bayesian linear regression the oracle tests share: ``bj.linear`` has its exact posterior."""
import numpy as np

import bayesjax as bj

D, NOISE, PRIOR = 3, 0.5, 1.0
TRUE_WEIGHTS = np.array([1.0, -2.0, 0.5])


def data(num_data: int):
    """``num_data`` standard-normal inputs and noisy linear targets (float64, seed 0)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(num_data, D))
    return x, x @ TRUE_WEIGHTS + NOISE * rng.normal(size=num_data)


def apply(params, x):
    return x @ params["w"][:, None]


def log_joint(num_data: int, temperature=1.0, tempering="posterior"):
    return bj.log_joint(apply, bj.priors.gaussian(PRIOR), bj.likelihoods.gaussian(NOISE), num_data=num_data,
                        temperature=temperature, tempering=tempering)
