"""The structured algebra of a Laplace precision ``P = a K_seen + b Delta``: factorization, variances, log-det.

With ``a = (N / m) s c_lik`` (``s`` the noise scale after tuning) and
``b = c_prior`` (:func:`coefficients`), per structure of ``K``:

* ``full``: ``P`` dense, factored by Cholesky ``P = L L^T``.
* ``diag``: ``P`` diagonal; nothing to factor.
* ``kfac``: per dense or conv layer ``K_W ~= (A (x) G) / m`` (Martens & Grosse
  2015; Grosse & Martens 2016 for convolutions; Ritter et al. 2018), the
  kernel read as a matrix ``[fan_in, fan_out]``, and for its bias
  ``K_b ~= A_11 G / m`` (exact for dense layers); with
  ``A = Q_A diag(l_A) Q_A^T`` and ``G = Q_G diag(l_G) Q_G^T``, the block is
  ``(Q_A (x) Q_G) diag(c l_A (x) l_G + b delta) (Q_A (x) Q_G)^T``
  (``c = a / m``), so sampling (``W + Q_A (Z / sqrt(eig)) Q_G^T``), the
  log-determinant and the marginal variances are exact for this precision.
  Kernel and bias are separate blocks (their cross-covariance is dropped),
  so each may have its own prior precision, as ``bj.priors.layerwise`` gives
  them.

The factorization is cached in the posterior's ``factor`` (:func:`factorize`).
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from bayesjax.inference.laplace.curvature import KronFactor
from bayesjax.inference.laplace.jacobians import kfac_layers
from bayesjax.inference.laplace.layers import get_path, set_path
from bayesjax.inference.laplace.posterior import PosteriorData, normalize_prior_precision
from bayesjax.types import Array, Params


class KronEigen(NamedTuple):
    """Eigendecompositions of one layer's Kronecker factors (``A`` without its bias row)."""

    eigvals_a: Array
    eigvecs_a: Array
    eigvals_g: Array
    eigvecs_g: Array


def coefficients(post: PosteriorData, noise_scale=None) -> tuple[Array, Array]:
    """``(a, b)`` with ``P = a K_seen + b Delta``: ``a = (N / m) s c_lik``, ``b = c_prior``."""
    noise_scale = post.noise_scale if noise_scale is None else noise_scale
    a = post.num_data / post.num_seen * noise_scale * post.likelihood_weight
    return a, post.prior_weight


def _flat_precision(prior_precision: Params, sub: Params) -> Array:
    return ravel_pytree(jax.tree.map(lambda d, p: jnp.broadcast_to(d, p.shape), prior_precision, sub))[0]


def factorize(post: PosteriorData, prior_precision=None, noise_scale=None):
    """The factorization of ``post``'s precision: full, its Cholesky factor; kfac, :class:`KronEigen` per layer."""
    prior_precision = post.prior_precision if prior_precision is None else prior_precision
    if post.hessian == "diag":
        return None
    if post.hessian == "full":
        a, b = coefficients(post, noise_scale)
        delta = _flat_precision(prior_precision, post.subset_mean)
        precision = a * post.curvature.matrix + jnp.diag(b * delta)
        return jnp.linalg.cholesky(0.5 * (precision + precision.T))
    eigens = {}
    for key, factor in post.curvature.factors.items():
        eigvals_a, eigvecs_a = jnp.linalg.eigh(factor.A[:-1, :-1])
        eigvals_g, eigvecs_g = output_factor_eigh(factor.G)
        eigens[key] = KronEigen(jnp.maximum(eigvals_a, 0.0), eigvecs_a, eigvals_g, eigvecs_g)
    return eigens


def output_factor_eigh(g: Array) -> tuple[Array, Array]:
    """``eigh`` of a ``G`` factor (eigenvalues clipped at 0), with an all-ones null direction made exact.

    Under the softmax, the ``G`` of the layer that outputs the logits has the
    all-ones direction ``u = 1 / sqrt(K)`` as an exact null vector (logits
    shifted together leave the likelihood unchanged). In float32, ``eigh``
    returns a rounding-level eigenvalue there (about 1e-7 of the largest,
    positive or negative, changing with the chunk size), and ``A``'s
    eigenvalues (up to about 1e7 on 60,000 images) multiply it into a
    precision comparable to the prior's, so untuned predictives moved by
    0.03 NLL with the chunk size. When ``||G u|| <= K eps tr(G)`` (``u`` is
    null to rounding; other layers' ``G`` sit at 1e-2 of that scale), ``G``
    is deflated: its eigenvalue along ``u`` is exactly 0, the precision there
    the prior's, as in exact arithmetic, and the rest is the ``eigh`` of
    ``G`` restricted to ``u``'s complement (a Householder basis).
    """
    plain_vals, plain_vecs = jnp.linalg.eigh(g)
    plain_vals = jnp.maximum(plain_vals, 0.0)
    k = g.shape[0]
    if k == 1:
        return plain_vals, plain_vecs
    u = jnp.full((k,), 1.0 / jnp.sqrt(k), g.dtype)
    w = u.at[0].add(-1.0)  # the reflection I - 2 w w^T / w^T w maps e_1 to u; its other columns span u's complement
    complement = (jnp.eye(k, dtype=g.dtype) - 2.0 * jnp.outer(w, w) / (w @ w))[:, 1:]
    rest_vals, rest_vecs = jnp.linalg.eigh(complement.T @ g @ complement)
    deflated_vals = jnp.concatenate([jnp.zeros((1,), g.dtype), jnp.maximum(rest_vals, 0.0)])
    deflated_vecs = jnp.concatenate([u[:, None], complement @ rest_vecs], axis=1)
    null = jnp.linalg.norm(g @ u) <= k * jnp.finfo(g.dtype).eps * jnp.trace(g)
    return jnp.where(null, deflated_vals, plain_vals), jnp.where(null, deflated_vecs, plain_vecs)


factorize_jit = jax.jit(factorize)


def with_prior_precision(post: PosteriorData, prior_precision) -> PosteriorData:
    """``post`` with another prior precision (refactored where needed); jittable."""
    delta = normalize_prior_precision(prior_precision, post.subset_mean, post.log_joint, post.hessian)
    factor = post.factor if post.hessian == "kfac" else factorize_jit(post, delta)
    return dataclasses.replace(post, prior_precision=delta, factor=factor)


# --------------------------------------------------------------------------- #
# KFAC blocks
# --------------------------------------------------------------------------- #
def kron_layers(post: PosteriorData):
    """``(layer, factor, eigen, delta_kernel, delta_bias)`` for each KFAC layer."""
    out = []
    for layer in kfac_layers(post.subset_mean):
        node = get_path(post.prior_precision, layer.path)
        out.append((layer, post.curvature.factors[layer.key], post.factor[layer.key],
                    node["kernel"], node.get("bias")))
    return out


def kron_eigenvalues(post: PosteriorData, factor: KronFactor, eigen: KronEigen, delta_kernel, delta_bias,
                     noise_scale=None):
    """Precision eigenvalues of a layer's kernel block ``[in, out]`` and bias block ``[out]``."""
    a, b = coefficients(post, noise_scale)
    c = a / post.num_seen
    kernel = c * eigen.eigvals_a[:, None] * eigen.eigvals_g[None, :] + b * delta_kernel
    bias = None if delta_bias is None else c * factor.A[-1, -1] * eigen.eigvals_g + b * delta_bias
    return kernel, bias


def _kron_tree(post: PosteriorData, kernel_fn, bias_fn) -> Params:
    """A tree like the subset from per-layer functions of ``(eigen, eig_kernel / eig_bias)``.

    ``kernel_fn`` returns the kernel as a matrix ``[fan_in, fan_out]``.
    """
    result: dict = {}
    for layer, factor, eigen, delta_kernel, delta_bias in kron_layers(post):
        eig_kernel, eig_bias = kron_eigenvalues(post, factor, eigen, delta_kernel, delta_bias)
        set_path(result, layer.path + ("kernel",), kernel_fn(eigen, eig_kernel).reshape(layer.kernel_shape))
        if layer.has_bias:
            set_path(result, layer.path + ("bias",), bias_fn(eigen, eig_bias))
    return result


# --------------------------------------------------------------------------- #
# Variances, dense matrices, log-determinant
# --------------------------------------------------------------------------- #
def marginal_variance(post: PosteriorData) -> Params:
    """Diagonal of ``P^{-1}`` as a subset tree."""
    if post.hessian == "diag":
        a, b = coefficients(post)
        return jax.tree.map(lambda k, d: 1.0 / (a * k + b * d), post.curvature.diag, post.prior_precision)
    if post.hessian == "full":
        inverse_factor = jax.scipy.linalg.solve_triangular(post.factor, jnp.eye(post.factor.shape[0],
                                                           dtype=post.factor.dtype), lower=True)
        return ravel_pytree(post.subset_mean)[1](jnp.sum(jnp.square(inverse_factor), axis=0))
    return _kron_tree(
        post,
        lambda e, eig: jnp.square(e.eigvecs_a) @ (1.0 / eig) @ jnp.square(e.eigvecs_g).T,
        lambda e, eig: (1.0 / eig) @ jnp.square(e.eigvecs_g).T,
    )


def leaf_offsets(sub: Params) -> dict[tuple[str, ...], tuple[int, int]]:
    """Path (tuple of keys: strings, or integers in an nnx ``List``) -> ``(offset, size)`` of each leaf in ``ravel_pytree`` order."""
    offsets, start = {}, 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(sub)[0]:
        offsets[tuple(getattr(p, "key", p) for p in path)] = (start, leaf.size)
        start += leaf.size
    return offsets


def precision_matrix(post: PosteriorData) -> Array:
    """Dense ``P`` ``[D, D]`` in ``ravel_pytree`` order (for checks and small models)."""
    sub = post.subset_mean
    a, b = coefficients(post)
    delta = _flat_precision(post.prior_precision, sub)
    if post.hessian == "full":
        return a * post.curvature.matrix + jnp.diag(b * delta)
    if post.hessian == "diag":
        return jnp.diag(a * ravel_pytree(post.curvature.diag)[0] + b * delta)
    matrix = jnp.diag(b * delta)
    offsets = leaf_offsets(sub)
    for layer, factor, eigen, _, _ in kron_layers(post):  # the factors as factorized (clipped, deflated)
        factor_a = (eigen.eigvecs_a * eigen.eigvals_a) @ eigen.eigvecs_a.T
        factor_g = (eigen.eigvecs_g * eigen.eigvals_g) @ eigen.eigvecs_g.T
        start, size = offsets[layer.path + ("kernel",)]
        block = a / post.num_seen * jnp.kron(factor_a, factor_g)
        matrix = matrix.at[start:start + size, start:start + size].add(block)
        if layer.has_bias:
            start, size = offsets[layer.path + ("bias",)]
            matrix = matrix.at[start:start + size, start:start + size].add(
                a / post.num_seen * factor.A[-1, -1] * factor_g)
    return matrix


def spd_inverse(matrix: Array) -> Array:
    """The inverse of a symmetric positive-definite matrix by Cholesky, symmetrized."""
    chol = jnp.linalg.cholesky(0.5 * (matrix + matrix.T))
    inverse = jax.scipy.linalg.cho_solve((chol, True), jnp.eye(matrix.shape[0], dtype=matrix.dtype))
    return 0.5 * (inverse + inverse.T)


def covariance(post: PosteriorData) -> Array:
    """Dense ``P^{-1}`` ``[D, D]`` (small models)."""
    return spd_inverse(precision_matrix(post))


def log_det_precision(post: PosteriorData, prior_precision: Params, noise_scale=None) -> Array:
    """``log |P|`` for a given prior precision (and noise scale), without caching."""
    a, b = coefficients(post, noise_scale)
    if post.hessian == "diag":
        terms = jax.tree.map(lambda k, d: jnp.sum(jnp.log(a * k + b * d)), post.curvature.diag, prior_precision)
        return sum(jax.tree.leaves(terms))
    if post.hessian == "full":
        chol = factorize(post, prior_precision, noise_scale)
        return 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))
    tuned = dataclasses.replace(post, prior_precision=prior_precision)
    total = 0.0
    for _, factor, eigen, delta_kernel, delta_bias in kron_layers(tuned):
        eig_kernel, eig_bias = kron_eigenvalues(tuned, factor, eigen, delta_kernel, delta_bias, noise_scale)
        total = total + jnp.sum(jnp.log(eig_kernel))
        if eig_bias is not None:
            total = total + jnp.sum(jnp.log(eig_bias))
    return total
