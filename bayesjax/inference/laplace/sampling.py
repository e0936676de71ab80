"""Draws from a Laplace posterior ``N(mean, P^{-1})``: ``theta = mean + C z`` with ``C C^T = P^{-1}``.

Per structure (:mod:`.factorization`): full, ``C = L^{-T}`` from the Cholesky
factor ``P = L L^T``; diag, ``C = P^{-1/2}``; kfac, per layer
``W + Q_A (Z / sqrt(eig)) Q_G^T`` in the eigenbases of the Kronecker factors.
All ``D`` standard normals of a draw come from one PRNG call
(:func:`standard_normal`); the weights outside the Bayesian subset stay at
the MAP.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from bayesjax import compiling
from bayesjax.inference.laplace import subsets
from bayesjax.inference.laplace.factorization import coefficients, kron_eigenvalues, kron_layers
from bayesjax.inference.laplace.layers import get_path, set_path
from bayesjax.inference.laplace.posterior import PosteriorData
from bayesjax.trees import num_params
from bayesjax.types import Array, Params, PRNGKey


def standard_normal(post: PosteriorData, key: PRNGKey, num_samples: int) -> Array:
    """The ``[num_samples, D]`` standard normals one draw of ``num_samples`` samples uses.

    One PRNG call for all leaves (a threefry kernel per leaf shape costs
    seconds of compile on CPU). Called outside the sampler's jit, its compile
    (:func:`bayesjax.compiling.normal`) is shared by every posterior with the same D.
    """
    sub = post.subset_mean
    dtype = jnp.result_type(*jax.tree.leaves(sub))
    return compiling.normal(key, (num_samples, num_params(sub)), dtype, post)


def sample_deviations(post: PosteriorData, noise: Array) -> Params:
    """``theta - mean`` from standard normals ``[S, D]``: a subset tree with a leading sample axis."""
    sub = post.subset_mean
    num_samples = noise.shape[0]
    if post.hessian == "full":
        deviations = jax.scipy.linalg.solve_triangular(post.factor.T, noise.T, lower=False)
        return jax.vmap(ravel_pytree(sub)[1])(deviations.T)
    leaves, treedef = jax.tree.flatten(sub)
    pieces, start = [], 0
    for leaf in leaves:
        pieces.append(noise[:, start:start + leaf.size].reshape((num_samples,) + leaf.shape))
        start += leaf.size
    noise = jax.tree.unflatten(treedef, pieces)
    if post.hessian == "diag":
        a, b = coefficients(post)
        return jax.tree.map(lambda z, k, d: z * jax.lax.rsqrt(a * k + b * d), noise, post.curvature.diag,
                            post.prior_precision)
    return _kron_deviations(post, noise)


def _kron_deviations(post: PosteriorData, noise: Params) -> Params:
    result: dict = {}
    for layer, factor, eigen, delta_kernel, delta_bias in kron_layers(post):
        eig_kernel, eig_bias = kron_eigenvalues(post, factor, eigen, delta_kernel, delta_bias)
        z = get_path(noise, layer.path)
        num_samples = z["kernel"].shape[0]
        z_kernel = z["kernel"].reshape(num_samples, layer.fan_in, layer.fan_out)
        kernel = jnp.einsum("ip,spq,jq->sij", eigen.eigvecs_a, z_kernel * jax.lax.rsqrt(eig_kernel), eigen.eigvecs_g)
        set_path(result, layer.path + ("kernel",), kernel.reshape((num_samples,) + layer.kernel_shape))
        if layer.has_bias:
            bias = (z["bias"] * jax.lax.rsqrt(eig_bias)) @ eigen.eigvecs_g.T
            set_path(result, layer.path + ("bias",), bias)
    return result


def samples_from_noise(post: PosteriorData, noise: Array) -> Params:
    """Full parameter samples (leading axis S) from standard normals ``[S, D]``."""
    num_samples = noise.shape[0]
    deviations = sample_deviations(post, noise)
    sub = jax.tree.map(lambda m, d: m + d.astype(m.dtype), post.subset_mean, deviations)
    rest = jax.tree.map(lambda p: jnp.broadcast_to(p, (num_samples,) + p.shape), post.mean)
    return subsets.merge(sub, rest, post.subset)


def sample(post: PosteriorData, key: PRNGKey, num_samples: int) -> Params:
    """``num_samples`` draws (traceable: usable inside ``jit``/``vmap``)."""
    return samples_from_noise(post, standard_normal(post, key, num_samples))
