"""The linear-Gaussian problem the Laplace and online tests share: N = 60 examples, D = 3 weights.

``bj.linear`` gives its exact (tempered) posterior, predictive and evidence.
"""
import bayesjax as bj

N, D, NOISE, PRIOR = 60, 3, 0.5, 1.3
LINEAR_LAYER = bj.models.mlp([], num_outputs=1)  # y = x W + b: params Dense_0/{bias, kernel}


def linear_apply(params, x):
    return x @ params["w"][:, None]
