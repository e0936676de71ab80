"""Each ensemble member's own target: per-example randomness that does not depend on the batch.

An example's id is a hash of its contents (:func:`example_ids`), so a member's
bootstrap weight (Poisson(1), or Exp(1) for Rubin 1981's Bayesian bootstrap)
and its target noise (Osband et al. 2018, Pearce et al. 2020) are fixed per
example, whatever minibatch the example is in. :func:`anchored_prior` re-centres a prior on a member's anchor
(Pearce et al. 2020, anchored ensembles). Used by :mod:`bayesjax.inference.ensemble`.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax.likelihoods import Likelihood
from bayesjax.priors import Prior
from bayesjax.types import Array, Batch, Params, PRNGKey

__all__ = ["example_ids", "bootstrap_weights", "split_data_key", "target_noise_of", "weighted_likelihood",
           "anchored_prior"]


def _fmix32(h: Array) -> Array:
    """MurmurHash3's 32-bit finalizer: a bijective avalanche mix of uint32."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def _as_words(leaf: Array) -> Array:
    """A ``[B, ...]`` array's raw bits as uint32 words ``[B, W]``."""
    leaf = jnp.asarray(leaf)
    batch = leaf.shape[0]
    if leaf.dtype == jnp.bool_:
        return leaf.astype(jnp.uint32).reshape(batch, -1)
    size = leaf.dtype.itemsize
    if size < 4:
        words = jax.lax.bitcast_convert_type(leaf, {1: jnp.uint8, 2: jnp.uint16}[size]).astype(jnp.uint32)
    else:
        words = jax.lax.bitcast_convert_type(leaf, jnp.uint32)  # 8-byte items gain a trailing axis of 2
    return words.reshape(batch, -1)


def example_ids(batch: Batch) -> Array:
    """A 32-bit hash of each example's contents, ``[B]`` uint32.

    Every array of the batch (inputs and targets) contributes its raw bits, so
    an example gets the same id in whatever minibatch it appears.
    """
    words = jnp.concatenate([_as_words(leaf) for leaf in jax.tree.leaves(batch)], axis=1)
    salts = _fmix32(jnp.arange(words.shape[1], dtype=jnp.uint32) + jnp.uint32(0x9E3779B9))
    return _fmix32(jnp.sum(_fmix32(words ^ salts), axis=1, dtype=jnp.uint32))


_POISSON_CDF = np.cumsum([math.exp(-1.0) / math.factorial(k) for k in range(20)])


def bootstrap_weights(key: PRNGKey, ids: Array, kind: str = "poisson") -> Array:
    """One member's fixed example weights, ``[B]``: Poisson(1) or Exp(1) draws keyed by example id."""
    uniforms = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i)))(ids)
    if kind == "poisson":  # inverse CDF, truncated where the tail is below 1e-18
        return jnp.sum(uniforms[:, None] > jnp.asarray(_POISSON_CDF, uniforms.dtype), axis=1).astype(uniforms.dtype)
    return -jnp.log1p(-uniforms)  # Exp(1)


def split_data_key(data_key: Array) -> tuple[PRNGKey, PRNGKey]:
    """A member's stored key data -> (target-noise key, bootstrap-weight key)."""
    noise_key, weight_key = jax.random.split(jax.random.wrap_key_data(data_key))
    return noise_key, weight_key


def target_noise_of(key: PRNGKey, ids: Array, dtype) -> Array:
    """One member's fixed standard-normal noise per example, ``[B]``, keyed by example id."""
    return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), (), dtype))(ids)


def weighted_likelihood(likelihood: Likelihood) -> Likelihood:
    """The likelihood reading targets ``(y, w)``: log p(y | f) times the weight w."""
    return likelihood._replace(
        name=f"weighted_{likelihood.name}",
        log_prob=lambda outputs, yw: yw[1] * likelihood.log_prob(outputs, yw[0]),
    )


def anchored_prior(prior: Prior, anchor: Params) -> Prior:
    """The prior shifted to ``anchor``: log p(theta - anchor), draws anchor + theta."""
    return Prior(
        log_prob=lambda params: prior.log_prob(jax.tree.map(jnp.subtract, params, anchor)),
        sample=lambda key, like: jax.tree.map(jnp.add, prior.sample(key, like), anchor),
        stddev=prior.stddev,
    )
