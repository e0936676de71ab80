"""Observation models p(y | f(x; theta)).

A :class:`Likelihood` turns network outputs ``f`` of shape ``[B, K]`` into a
per-example log density and into what the Bayesian model average needs:
class log-probabilities (classification) or a predictive mean and variance
(regression).
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax.checks import check_positive
from bayesjax.types import Array

CLASSIFICATION = "classification"
REGRESSION = "regression"


class Likelihood(NamedTuple):
    """An observation model.

    Attributes:
      name: short name, e.g. ``"categorical"``.
      task: ``"classification"`` or ``"regression"``.
      log_prob: ``(outputs [B, K], y [B]) -> [B]``, log p(y_i | f_i).
      predict: classification: ``outputs -> log class probabilities [B, C]``;
        regression: ``outputs -> (mean [B], variance [B])``.
      num_outputs: how many network outputs a regression model reads; ``None``
        for classification, where it is the number of classes.
    """

    name: str
    task: str
    log_prob: Callable[[Array, Array], Array]
    predict: Callable[[Array], Array | tuple[Array, Array]]
    num_outputs: int | None


def check_targets(likelihood: Likelihood, y, num_model_outputs: int) -> None:
    """Raises ValueError when concrete targets ``y`` do not fit the likelihood.

    Args:
      likelihood: the observation model.
      y: targets, shape ``[N]``.
      num_model_outputs: the model's last output dimension K.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"targets must have shape [N], got {y.shape}")
    if likelihood.task == CLASSIFICATION:
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{likelihood.name} likelihood needs integer labels, got dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= num_model_outputs):
            raise ValueError(
                f"labels out of range: found labels in [{y.min()}, {y.max()}] but the model "
                f"has {num_model_outputs} outputs (classes 0..{num_model_outputs - 1})"
            )
    elif num_model_outputs != likelihood.num_outputs:
        raise ValueError(
            f"{likelihood.name} likelihood reads {likelihood.num_outputs} model output(s), "
            f"the model has {num_model_outputs}"
        )


def _normal_log_prob(y: Array, mean: Array, var: Array) -> Array:
    return -0.5 * (jnp.log(2 * math.pi * var) + (y - mean) ** 2 / var)


def gaussian(noise_std: float | Array = 1.0) -> Likelihood:
    """Homoscedastic Gaussian: y ~ N(f(x), noise_std^2), with outputs ``[B, 1]``.

    Args:
      noise_std: observation noise standard deviation (> 0; may be traced).
    """
    check_positive("noise_std", noise_std)

    def mean_variance(outputs):
        mean = outputs[..., 0]
        return mean, jnp.broadcast_to(jnp.square(noise_std), mean.shape).astype(mean.dtype)

    def log_prob(outputs, y):
        mean, var = mean_variance(outputs)
        return _normal_log_prob(y, mean, var)

    return Likelihood("gaussian", REGRESSION, log_prob, mean_variance, 1)


def heteroscedastic_gaussian() -> Likelihood:
    """Gaussian with input-dependent noise: outputs ``[B, 2]`` are mean and log-scale.

    y ~ N(mu(x), exp(s(x))^2) as in Deep Ensembles (Lakshminarayanan et al. 2017),
    trained by the Gaussian negative log-likelihood.
    """

    def mean_variance(outputs):
        return outputs[..., 0], jnp.exp(2.0 * outputs[..., 1])

    def log_prob(outputs, y):
        mean, log_scale = outputs[..., 0], outputs[..., 1]
        return -0.5 * math.log(2 * math.pi) - log_scale - 0.5 * jnp.square((y - mean) * jnp.exp(-log_scale))

    return Likelihood("heteroscedastic_gaussian", REGRESSION, log_prob, mean_variance, 2)


def categorical() -> Likelihood:
    """Categorical with softmax link: p(y = c | f) = softmax(f)_c.

    The label's log-probability is picked by a one-hot mask, not gathered: a
    gather's gradient is a scatter, its own loop on a CPU, while the mask
    fuses with the softmax (see benchmarks/README.md).
    """

    def log_prob(outputs, y):
        is_label = y[..., None] == jnp.arange(outputs.shape[-1])
        return jnp.sum(jnp.where(is_label, jax.nn.log_softmax(outputs), 0.0), axis=-1)

    return Likelihood("categorical", CLASSIFICATION, log_prob, jax.nn.log_softmax, None)


def noisy_dirichlet(alpha_epsilon: float = 0.01) -> Likelihood:
    """Noisy Dirichlet observation model (Kapoor et al. 2022).

    The one-hot label is smoothed to Dirichlet concentrations
    alpha_c = 1[y = c] + alpha_epsilon, and each Gamma(alpha_c, 1) component is
    matched by a log-normal: with sigma_c^2 = log(1 / alpha_c + 1) and
    y~_c = log(alpha_c) - sigma_c^2 / 2, the logits are regressed as

        log p(y | f) = sum_c log N(y~_c | f_c, sigma_c^2).

    Predictions are softmax(f). Kapoor et al. show this model removes much of
    the cold-posterior effect that data augmentation causes.

    Args:
      alpha_epsilon: label-noise concentration (> 0).
    """
    check_positive("alpha_epsilon", alpha_epsilon)

    def log_prob(outputs, y):
        alpha = jax.nn.one_hot(y, outputs.shape[-1], dtype=outputs.dtype) + alpha_epsilon
        var = jnp.log1p(1.0 / alpha)
        target = jnp.log(alpha) - var / 2
        return jnp.sum(_normal_log_prob(target, outputs, var), axis=-1)

    return Likelihood("noisy_dirichlet", CLASSIFICATION, log_prob, jax.nn.log_softmax, None)
