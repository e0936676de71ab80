"""The Laplace posterior: a Gaussian at the MAP with a structured precision.

For a tempered log-joint (``bj.log_joint``) with likelihood curvature ``K``
(the GGN or empirical Fisher of ``sum_i log p(y_i | x_i, theta)``, estimated
from ``m`` of the ``N`` examples as ``(N / m) K_seen``) and a Gaussian prior
of precision ``Delta`` (per weight), the posterior precision is the negative
Hessian of the tempered log-joint:

    tempering="posterior":   P = (K + Delta) / T
    tempering="likelihood":  P = K / T + Delta

and ``q(theta) = N(theta_MAP, P^{-1})`` on the Bayesian subset of the weights
(the rest stay at the MAP). Structures of ``K``:

* ``full``: ``P`` dense, Cholesky-factored; samples ``theta + L^{-T} z``.
* ``diag``: ``P`` diagonal.
* ``kfac``: per dense or conv layer ``K_W ~= (A (x) G) / m`` (Martens & Grosse
  2015; Grosse & Martens 2016 for convolutions; Ritter et al. 2018), the
  kernel read as a matrix ``[fan_in, fan_out]``, and for its bias
  ``K_b ~= A_11 G / m`` (exact for dense layers); with
  ``A = Q_A diag(l_A) Q_A^T`` and ``G = Q_G diag(l_G) Q_G^T``, the block is
  ``(Q_A (x) Q_G) diag(c l_A (x) l_G + delta) (Q_A (x) Q_G)^T``, so sampling
  (``W + Q_A (Z / sqrt(eig)) Q_G^T``), the log-determinant and the marginal
  variances are exact for this precision. Kernel and bias are separate blocks
  (their cross-covariance is dropped), so each may have its own prior
  precision, as ``bj.priors.layerwise`` gives them.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from bayesjax import compiling
from bayesjax._checks import check_key, check_positive, concrete
from bayesjax.base import num_params
from bayesjax.inference.laplace import curvature as curv
from bayesjax.inference.laplace import subset as subsets
from bayesjax.logjoint import LogJoint
from bayesjax.types import Array, Params, PRNGKey

__all__ = ["LaplacePosterior", "KronEigen", "Target", "sample", "normalize_prior_precision", "with_prior_precision"]


class KronEigen(NamedTuple):
    """Eigendecompositions of one layer's Kronecker factors (``A`` without its bias row)."""

    eigvals_a: Array
    eigvecs_a: Array
    eigvals_g: Array
    eigvecs_g: Array


class Target:
    """A log-joint as a jit-cache key: equal when ``apply``, ``prior`` and ``likelihood`` are.

    Temperature, tempering and ``num_data`` enter as data (leaves of
    :class:`LaplacePosterior`), so a sweep over temperatures with one prior and
    likelihood compiles once. Traced code reads only those three parts from it; jitted functions return
    arrays, never posteriors, so a posterior's ``log_joint`` is always its own.
    """

    __slots__ = ("log_joint",)

    def __init__(self, log_joint: LogJoint):
        self.log_joint = log_joint

    def _key(self):
        lj = self.log_joint
        return (lj.apply, lj.prior, lj.likelihood)

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other) -> bool:
        return isinstance(other, Target) and self._key() == other._key()


@dataclasses.dataclass(frozen=True)
class LaplacePosterior:
    """A Laplace approximation ``N(mean, P^{-1})``; built by :func:`bayesjax.laplace`.

    A pytree: its arrays are leaves, its configuration is static, so it
    passes through ``jax.jit`` and its methods are jitted.

    Attributes:
      mean: the MAP, all parameters (the non-Bayesian ones stay there).
      curvature: the likelihood curvature sum over the examples seen
        (:class:`~.curvature.DiagCurvature`, ``FullCurvature`` or ``KronCurvature``).
      prior_precision: per-leaf prior precision of the Bayesian subset (each
        leaf broadcastable to its parameter; a scalar per leaf for KFAC).
      temperature: T of the log-joint.
      prior_scale: the factor on the log-prior in the tempered log-joint:
        ``1 / T`` (``tempering="posterior"``) or 1 (``"likelihood"``).
      num_data: N, the log-joint's data set size.
      num_seen: m, the number of examples the curvature was summed over.
      log_likelihood_sum: ``sum_i log p(y_i | x_i, mean)`` over those m examples.
      noise_scale: factor on the curvature after noise tuning (Gaussian
        likelihood: ``sigma_fit^2 / sigma^2``), else 1.
      factor: cached factorization (full: Cholesky of P; kfac: eigendecompositions).
      target: the log-joint, as a static :class:`Target` (read ``log_joint``).
      hessian: ``"full"``, ``"diag"`` or ``"kfac"`` (static).
      curvature_type: ``"ggn"`` or ``"ef"`` (static).
      subset: top-level names of the Bayesian parameters, or ``None`` for all (static).
      chunk_size: examples per chunk in functional-covariance passes (static; ``None``: automatic).
    """

    mean: Params
    curvature: curv.Curvature
    prior_precision: Params
    temperature: Array
    prior_scale: Array
    num_data: Array
    num_seen: Array
    log_likelihood_sum: Array
    noise_scale: Array
    factor: Any
    target: Target
    hessian: str
    curvature_type: str
    subset: tuple[str, ...] | None
    chunk_size: int | None = None

    # ------------------------------------------------------------------ views
    @property
    def log_joint(self) -> LogJoint:
        """The target: ``apply``, ``prior``, ``likelihood``, ``tempering`` (and its own T and N)."""
        return self.target.log_joint

    @property
    def subset_mean(self) -> Params:
        """The MAP of the Bayesian parameters."""
        return subsets.select(self.mean, self.subset)

    @property
    def num_params(self) -> int:
        """Number of Bayesian parameters D."""
        return num_params(self.subset_mean)

    @property
    def log_likelihood(self) -> Array:
        """``(N / m) sum_i log p(y_i | x_i, mean)``: the full-data log-likelihood estimate (untempered)."""
        return self.num_data / self.num_seen * self.log_likelihood_sum

    # ---------------------------------------------------------------- methods
    def sample(self, key: PRNGKey, num_samples: int) -> Params:
        """``num_samples`` draws; leaves gain a leading axis (feed ``bj.predictive``).

        Example:
          >>> pred = bj.predictive(model.apply, post.sample(key, 100), x_test, lik)
        """
        check_key(key)
        num_samples = int(num_samples)
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        return _samples_from_noise_jit(self, standard_normal(self, key, num_samples))

    def marginal_variance(self) -> Params:
        """Diagonal of the posterior covariance, a tree like the Bayesian parameters."""
        return _marginal_variance_jit(self)

    def precision_matrix(self) -> Array:
        """The dense posterior precision ``[D, D]`` in ``ravel_pytree`` order (small models)."""
        return _precision_matrix_jit(self)

    def covariance(self) -> Array:
        """The dense posterior covariance ``[D, D]`` (small models)."""
        return _covariance_jit(self)

    def functional_covariance(self, x: Array) -> tuple[Array, Array]:
        """The linearized (GLM) function-space posterior at inputs ``x``.

        ``f(x) ~ N(f(x; mean), J(x) P^{-1} J(x)^T)`` with ``J`` the Jacobian of
        the outputs with respect to the Bayesian parameters.

        Returns:
          ``(f_mean [N, K], f_cov [N, K, K])``.
        """
        return _functional_covariance_jit(self, jnp.asarray(x))

    def predictive_glm(self, x: Array, link: str = "probit", *, key: PRNGKey | None = None,
                       num_samples: int = 100):
        """GLM (linearized) predictive; see :func:`.glm.predictive_glm`."""
        from bayesjax.inference.laplace.glm import predictive_glm

        return predictive_glm(self, x, link, key=key, num_samples=num_samples)

    def predictive(self, key: PRNGKey, x: Array, num_samples: int = 100):
        """Monte Carlo predictive: ``bj.predictive`` over ``num_samples`` weight draws."""
        from bayesjax.predictive import predictive

        return predictive(self.log_joint.apply, self.sample(key, num_samples), x, self.log_joint.likelihood)

    def log_marginal_likelihood(self, prior_precision=None, noise_std=None) -> Array:
        """Laplace log evidence; see :func:`.marglik.log_marginal_likelihood`."""
        return _log_marginal_likelihood_jit(self, prior_precision, noise_std)

    def with_prior_precision(self, prior_precision) -> "LaplacePosterior":
        """The same curvature with another prior precision (scalar, or a tree like the subset)."""
        return with_prior_precision(self, prior_precision)

    def optimize_prior_precision(self, method: str = "marglik", **kwargs) -> "LaplacePosterior":
        """Tunes the prior precision; see :func:`.marglik.optimize_prior_precision`."""
        from bayesjax.inference.laplace.marglik import optimize_prior_precision

        return optimize_prior_precision(self, method, **kwargs)


jax.tree_util.register_dataclass(
    LaplacePosterior,
    data_fields=["mean", "curvature", "prior_precision", "temperature", "prior_scale", "num_data", "num_seen",
                 "log_likelihood_sum", "noise_scale", "factor"],
    meta_fields=["target", "hessian", "curvature_type", "subset", "chunk_size"],
)


# --------------------------------------------------------------------------- #
# Construction
# --------------------------------------------------------------------------- #
@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _precision_of_prior(prior, treedef, shapes: tuple) -> Params:
    """``1 / stddev^2`` from the prior, given only shapes: concrete even when the weights are traced."""
    return jax.tree.map(lambda s: 1.0 / jnp.square(s), prior.stddev(jax.tree.unflatten(treedef, shapes)))


def normalize_prior_precision(value, sub: Params, log_joint: LogJoint, hessian: str) -> Params:
    """Per-leaf prior precision of the Bayesian parameters.

    Concrete values are checked and reduced on the host (a leaf whose
    entries are all equal becomes a scalar), so no per-op kernels compile.

    Args:
      value: ``None`` (read ``1 / prior.stddev(params)^2`` from the log-joint's
        Gaussian prior), a scalar, or a tree like ``sub`` whose leaves
        broadcast against the parameters.

    Raises:
      ValueError: for a non-Gaussian prior without an explicit value, a
        non-positive value, or a non-scalar per-leaf value under KFAC.
    """
    if value is None:
        if log_joint.prior.stddev is None:
            raise ValueError(
                "the Laplace approximation needs a Gaussian prior (bj.priors.gaussian or "
                "bj.priors.layerwise, which expose stddev) or an explicit prior_precision="
            )
        leaves, treedef = jax.tree.flatten(sub)
        shapes = tuple(jax.ShapeDtypeStruct(jnp.shape(leaf), jnp.result_type(leaf)) for leaf in leaves)
        tree = _precision_of_prior(log_joint.prior, treedef, shapes)
    elif jax.tree.structure(value) == jax.tree.structure(sub):
        tree = value
    elif jnp.ndim(value) == 0:
        tree = jax.tree.map(lambda _: value, sub)
    else:
        raise ValueError(
            "prior_precision must be a scalar or a tree with the structure of the Bayesian parameters "
            f"{jax.tree.structure(sub)}"
        )

    def per_leaf(delta, leaf):
        shape = jnp.shape(delta)
        if jnp.broadcast_shapes(shape, leaf.shape) != leaf.shape:
            raise ValueError(f"prior_precision leaf of shape {shape} does not broadcast to {leaf.shape}")
        values = concrete(delta)
        if values is not None:
            check_positive("prior_precision", values)
            if values.size and np.all(values == values.flat[0]):
                values = values.reshape(-1)[0]
            delta = jax.device_put(np.asarray(values, leaf.dtype))  # jnp.asarray would compile a copy
        else:
            delta = jnp.asarray(delta).astype(leaf.dtype)
            if hessian == "kfac" and value is None:  # a traced prior scale: bj priors are constant per leaf
                delta = delta.reshape(-1)[0]
        if hessian == "kfac" and jnp.ndim(delta) > 0:
            raise ValueError("hessian='kfac' needs one prior precision per kernel and per bias (a scalar per leaf)")
        return delta

    return jax.tree.map(per_leaf, tree, sub)


def coefficients(post: LaplacePosterior, noise_scale=None) -> tuple[Array, Array]:
    """``(a, b)`` with ``P = a K_seen + b Delta``: ``a = (N / m) s / T``, ``b`` the prior scale (1/T or 1)."""
    noise_scale = post.noise_scale if noise_scale is None else noise_scale
    a = post.num_data / post.num_seen * noise_scale / post.temperature
    return a, post.prior_scale


def _flat_precision(prior_precision: Params, sub: Params) -> Array:
    return ravel_pytree(jax.tree.map(lambda d, p: jnp.broadcast_to(d, p.shape), prior_precision, sub))[0]


def factorize(post: LaplacePosterior, prior_precision=None, noise_scale=None):
    """The cached factorization of ``post``'s precision (see :class:`LaplacePosterior`)."""
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
        eigvals_g, eigvecs_g = jnp.linalg.eigh(factor.G)
        eigens[key] = KronEigen(jnp.maximum(eigvals_a, 0.0), eigvecs_a, jnp.maximum(eigvals_g, 0.0), eigvecs_g)
    return eigens


def with_prior_precision(post: LaplacePosterior, prior_precision) -> LaplacePosterior:
    """``post`` with another prior precision (refactored where needed); jittable."""
    delta = normalize_prior_precision(prior_precision, post.subset_mean, post.log_joint, post.hessian)
    factor = post.factor if post.hessian == "kfac" else factorize_jit(post, delta)
    return dataclasses.replace(post, prior_precision=delta, factor=factor)


factorize_jit = jax.jit(factorize)


# --------------------------------------------------------------------------- #
# KFAC helpers
# --------------------------------------------------------------------------- #
def kron_layers(post: LaplacePosterior):
    """``(layer, factor, eigen, delta_kernel, delta_bias)`` for each KFAC layer."""
    layers = curv.kfac_layers(post.subset_mean)
    out = []
    for layer in layers:
        node = curv.get_path(post.prior_precision, layer.path)
        out.append((layer, post.curvature.factors[layer.key], post.factor[layer.key],
                    node["kernel"], node.get("bias")))
    return out


def kron_eigenvalues(post: LaplacePosterior, factor: curv.KronFactor, eigen: KronEigen, delta_kernel, delta_bias,
                     noise_scale=None):
    """Precision eigenvalues of a layer's kernel block ``[in, out]`` and bias block ``[out]``."""
    a, b = coefficients(post, noise_scale)
    c = a / post.num_seen
    kernel = c * eigen.eigvals_a[:, None] * eigen.eigvals_g[None, :] + b * delta_kernel
    bias = None if delta_bias is None else c * factor.A[-1, -1] * eigen.eigvals_g + b * delta_bias
    return kernel, bias


def _kron_tree(post: LaplacePosterior, kernel_fn, bias_fn) -> Params:
    """A tree like the subset from per-layer functions of ``(eigen, eig_kernel / eig_bias)``.

    ``kernel_fn`` returns the kernel as a matrix ``[fan_in, fan_out]``.
    """
    result: dict = {}
    for layer, factor, eigen, delta_kernel, delta_bias in kron_layers(post):
        eig_kernel, eig_bias = kron_eigenvalues(post, factor, eigen, delta_kernel, delta_bias)
        curv.set_path(result, layer.path + ("kernel",), kernel_fn(eigen, eig_kernel).reshape(layer.kernel_shape))
        if layer.has_bias:
            curv.set_path(result, layer.path + ("bias",), bias_fn(eigen, eig_bias))
    return result


# --------------------------------------------------------------------------- #
# Sampling, variances, dense matrices
# --------------------------------------------------------------------------- #
def standard_normal(post: LaplacePosterior, key: PRNGKey, num_samples: int) -> Array:
    """The ``[num_samples, D]`` standard normals one draw of ``num_samples`` samples uses.

    One PRNG call for all leaves (a threefry kernel per leaf shape costs
    seconds of compile on CPU). Called outside the sampler's jit, its compile
    (:func:`.compiling.normal`) is shared by every posterior with the same D.
    """
    sub = post.subset_mean
    dtype = jnp.result_type(*jax.tree.leaves(sub))
    return compiling.normal(key, (num_samples, num_params(sub)), dtype, post)


def sample_deviations(post: LaplacePosterior, noise: Array) -> Params:
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
    return _kron_tree_map(post, noise)


def _kron_tree_map(post: LaplacePosterior, noise: Params) -> Params:
    result: dict = {}
    for layer, factor, eigen, delta_kernel, delta_bias in kron_layers(post):
        eig_kernel, eig_bias = kron_eigenvalues(post, factor, eigen, delta_kernel, delta_bias)
        z = curv.get_path(noise, layer.path)
        num_samples = z["kernel"].shape[0]
        z_kernel = z["kernel"].reshape(num_samples, layer.fan_in, layer.fan_out)
        kernel = jnp.einsum("ip,spq,jq->sij", eigen.eigvecs_a, z_kernel * jax.lax.rsqrt(eig_kernel), eigen.eigvecs_g)
        curv.set_path(result, layer.path + ("kernel",), kernel.reshape((num_samples,) + layer.kernel_shape))
        if layer.has_bias:
            bias = (z["bias"] * jax.lax.rsqrt(eig_bias)) @ eigen.eigvecs_g.T
            curv.set_path(result, layer.path + ("bias",), bias)
    return result


def samples_from_noise(post: LaplacePosterior, noise: Array) -> Params:
    """Full parameter samples (leading axis S) from standard normals ``[S, D]``."""
    num_samples = noise.shape[0]
    deviations = sample_deviations(post, noise)
    sub = jax.tree.map(lambda m, d: m + d.astype(m.dtype), post.subset_mean, deviations)
    rest = jax.tree.map(lambda p: jnp.broadcast_to(p, (num_samples,) + p.shape), post.mean)
    return subsets.merge(sub, rest, post.subset)


def sample(post: LaplacePosterior, key: PRNGKey, num_samples: int) -> Params:
    """``num_samples`` draws (traceable: usable inside ``jit``/``vmap``)."""
    return samples_from_noise(post, standard_normal(post, key, num_samples))


_samples_from_noise_jit = jax.jit(samples_from_noise)


def marginal_variance(post: LaplacePosterior) -> Params:
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
    """Path (tuple of keys) -> ``(offset, size)`` of each leaf in ``ravel_pytree`` order."""
    offsets, start = {}, 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(sub)[0]:
        offsets[tuple(str(getattr(p, "key", p)) for p in path)] = (start, leaf.size)
        start += leaf.size
    return offsets


def precision_matrix(post: LaplacePosterior) -> Array:
    """Dense ``P`` ``[D, D]`` (for checks and small models)."""
    sub = post.subset_mean
    a, b = coefficients(post)
    delta = _flat_precision(post.prior_precision, sub)
    if post.hessian == "full":
        return a * post.curvature.matrix + jnp.diag(b * delta)
    if post.hessian == "diag":
        return jnp.diag(a * ravel_pytree(post.curvature.diag)[0] + b * delta)
    matrix = jnp.diag(b * delta)
    offsets = leaf_offsets(sub)
    for layer, factor, _, _, _ in kron_layers(post):
        start, size = offsets[layer.path + ("kernel",)]
        block = a / post.num_seen * jnp.kron(factor.A[:-1, :-1], factor.G)
        matrix = matrix.at[start:start + size, start:start + size].add(block)
        if layer.has_bias:
            start, size = offsets[layer.path + ("bias",)]
            matrix = matrix.at[start:start + size, start:start + size].add(
                a / post.num_seen * factor.A[-1, -1] * factor.G)
    return matrix


def log_det_precision(post: LaplacePosterior, prior_precision: Params, noise_scale=None) -> Array:
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


def spd_inverse(matrix: Array) -> Array:
    """The inverse of a symmetric positive-definite matrix by Cholesky, symmetrized."""
    chol = jnp.linalg.cholesky(0.5 * (matrix + matrix.T))
    inverse = jax.scipy.linalg.cho_solve((chol, True), jnp.eye(matrix.shape[0], dtype=matrix.dtype))
    return 0.5 * (inverse + inverse.T)


def log_2pi(dtype) -> Array:
    return jnp.asarray(math.log(2 * math.pi), dtype)




@jax.jit
def _marginal_variance_jit(post: LaplacePosterior) -> Params:
    return marginal_variance(post)


@jax.jit
def _precision_matrix_jit(post: LaplacePosterior) -> Array:
    return precision_matrix(post)


@jax.jit
def _covariance_jit(post: LaplacePosterior) -> Array:
    return spd_inverse(precision_matrix(post))


@jax.jit
def _functional_covariance_jit(post: LaplacePosterior, x: Array) -> tuple[Array, Array]:
    from bayesjax.inference.laplace.glm import functional_covariance

    return functional_covariance(post, x)


@jax.jit
def _log_marginal_likelihood_jit(post: LaplacePosterior, prior_precision, noise_std) -> Array:
    from bayesjax.inference.laplace.marglik import log_marginal_likelihood

    return log_marginal_likelihood(post, prior_precision, noise_std)
