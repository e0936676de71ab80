r"""The one-step-ahead (prequential) log predictive of a batch, before it updates the belief.

For batch t and the predicted belief ``q_{t|t-1}`` (after the dynamics step),

    log_predictive_t = sum_{i in B_t} log p(y_i | x_i, D_{1:t-1})
                     = sum_{i in B_t} log E_{q_{t|t-1}(theta)}[p(y_i | x_i, theta)],

so summing over a stream gives the prequential log-likelihood (Dawid 1984),
the online analogue of the log evidence, with no held-out data. Two estimates:

* ``"glm"``: the linearized predictive of the Laplace package (MacKay 1992;
  Immer et al. 2021): ``f(x) ~ N(f(x; mu), J P^{-1} J^T)``; exact for a
  Gaussian likelihood on a linear model, the probit approximation for
  classification. Deterministic.
* ``"mc"``: the Monte Carlo model average over ``S`` draws from the belief,
  ``log 1/S sum_s p(y_i | x_i, theta_s)`` (``bj.predictive``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from bayesjax.checks import check_int
from bayesjax.inference.laplace import glm, sampling
from bayesjax.inference.laplace.approximation import LaplacePosterior
from bayesjax.inference.vi.meanfield import float_dtype
from bayesjax.predictive import predictive
from bayesjax.types import Array, Batch, PRNGKey

PREDICTIVES = ("glm", "mc")


def check(kind: str, num_samples: int) -> int:
    """ValueError for an unknown ``kind`` or ``num_samples < 1``; returns ``num_samples``."""
    if kind not in PREDICTIVES:
        raise ValueError(f"predictive must be one of {PREDICTIVES}, got {kind!r}")
    return check_int("num_predictive_samples", num_samples)


def log_predictive(key: PRNGKey, post: LaplacePosterior, batch: Batch, kind: str, num_samples: int) -> Array:
    """``sum_i log p(y_i | x_i, D_{1:t-1})`` under the belief ``post`` (see module docstring)."""
    x, y = batch
    log_joint = post.log_joint
    if kind == "glm":
        # Only the probit link is read; the Monte Carlo draws glm_moments takes serve the
        # expected entropy, which is not used here, so a single zero draw stands in for them.
        num_outputs = jax.eval_shape(log_joint.apply, post.mean, x[:1]).shape[-1]
        noise = jnp.zeros((1, num_outputs), float_dtype(post.mean))
        pred = glm.to_predictive(post, glm.glm_moments(post, x, noise), "probit")
    else:
        pred = predictive(log_joint.apply, sampling.sample(post, key, num_samples), x, log_joint.likelihood)
    return jnp.sum(pred.log_prob(y))
