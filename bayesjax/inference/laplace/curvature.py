"""Curvature of the log-likelihood: GGN and empirical Fisher, summed matrix-free over chunks of data.

For outputs ``f_i = f(x_i; theta)`` and per-example Jacobians ``J_i = df_i/dtheta``
(``[K, P]``), the generalized Gauss-Newton matrix (Schraudolph 2002; Martens
2020) and the empirical Fisher of the summed log-likelihood are

    GGN = sum_i J_i^T Lambda_i J_i,      Lambda_i = -d^2 log p(y_i | f) / df^2 at f_i,
    EF  = sum_i g_i g_i^T,               g_i = J_i^T r_i,   r_i = d log p(y_i | f) / df.

Both are written ``sum_i J_i^T L_i L_i^T J_i`` with an output-space factor
``L_i`` ``[K, M]`` (:func:`output_factors`): for the categorical likelihood
``L = diag(sqrt p) - p sqrt(p)^T`` (``L L^T = diag p - p p^T``, M = K), for the
Gaussian ``L = 1 / sigma`` on the mean output, for the heteroscedastic Gaussian
its Fisher ``diag(exp(-s), sqrt 2)`` (the loss Hessian is not PSD there), and
for the empirical Fisher ``L = r`` (M = 1). Other likelihoods use the autodiff
Hessian of ``-log p`` in output space, clipped to its PSD part.

Nothing of size ``N x K x P`` is ever built: the data are folded chunk by
chunk (:func:`bayesjax.chunking.scan_chunks`, chunks sized from the memory
budget of :mod:`bayesjax.memory`), and per chunk the M columns ``J_i^T L_i``
come from tapped layers or per-example VJPs (:mod:`.jacobians`):

* diag / KFAC of dense and conv layers: with layer inputs ``a_it`` and output
  gradients ``g_itm`` at the layer's T output locations, the Kronecker
  factors are (Martens & Grosse 2015; Botev et al. 2017; for T > 1 the KFC
  factors of Grosse & Martens 2016, which assume spatially homogeneous,
  spatially uncorrelated output gradients)

      A = sum_i sum_t [a_it; 1][a_it; 1]^T,     G = (1 / T) sum_i sum_m sum_t g_itm g_itm^T,

  with the kernel block ``A_aa (x) G / m`` and the bias block ``A_11 G / m``
  (m examples): exact for one example when T = 1. The diagonal is exact for
  any T: ``diag(W) = sum_i sum_m (sum_t a_it (x) g_itm)^2``, which for T = 1
  is ``(a^2)^T sum_m g_m^2`` without per-example gradients;
* any other model (diag, full): the per-example products ``J_i^T L_i``
  (``[chunk, M, P]``), squared and summed (diag) or as ``V^T V`` (full);
* :func:`ggn_vector_product`: ``jvp`` then ``vjp``, one chunk at a time.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from bayesjax import memory
from bayesjax.chunking import scan_chunks
from bayesjax.inference.laplace import jacobians, subsets
from bayesjax.inference.laplace.layers import set_path
from bayesjax.likelihoods import Likelihood
from bayesjax.logjoint import LogJoint
from bayesjax.trees import num_params
from bayesjax.types import ApplyFn, Array, Params

HESSIANS = ("full", "diag", "kfac")
CURVATURES = ("ggn", "ef")


class DiagCurvature(NamedTuple):
    """Diagonal of the curvature sum: a tree like the Bayesian parameters."""

    diag: Params


class FullCurvature(NamedTuple):
    """The dense curvature sum ``[D, D]`` in ``jax.flatten_util.ravel_pytree`` order."""

    matrix: Array


class KronFactor(NamedTuple):
    """Kronecker factors of one dense or conv layer, summed over examples.

    Attributes:
      A: ``sum_i sum_t [a_it; 1][a_it; 1]^T``, ``[fan_in + 1, fan_in + 1]``;
        its last diagonal entry counts examples times locations (``m T``).
      G: ``(1 / T) sum_i sum_m sum_t g_itm g_itm^T``, ``[fan_out, fan_out]``.
    """

    A: Array
    G: Array


class KronCurvature(NamedTuple):
    """Per-layer Kronecker factors, keyed by layer path (``"Dense_0"``, ``"Conv_1"``)."""

    factors: dict[str, KronFactor]


Curvature = DiagCurvature | FullCurvature | KronCurvature


def check_options(hessian: str, curvature: str) -> None:
    """ValueError unless ``hessian`` is one of :data:`HESSIANS` and ``curvature`` one of :data:`CURVATURES`."""
    if hessian not in HESSIANS:
        raise ValueError(f"hessian must be one of {HESSIANS}, got {hessian!r}")
    if curvature not in CURVATURES:
        raise ValueError(f"curvature must be one of {CURVATURES}, got {curvature!r}")


# --------------------------------------------------------------------------- #
# Output-space factors
# --------------------------------------------------------------------------- #
def output_factors(likelihood: Likelihood, outputs: Array, y: Array, curvature: str) -> Array:
    """``L_i`` with ``L_i L_i^T`` the output-space curvature of example i: ``[B, K, M]``.

    Args:
      likelihood: the observation model.
      outputs: network outputs ``[B, K]``.
      y: targets ``[B]``.
      curvature: ``"ggn"`` or ``"ef"``.
    """
    if curvature == "ef":
        grad = jax.vmap(jax.grad(lambda f, t: likelihood.log_prob(f[None], t[None])[0]))(outputs, y)
        return grad[:, :, None]
    batch, k = outputs.shape
    if likelihood.name == "categorical":
        p = jax.nn.softmax(outputs, axis=-1)
        sqrt_p = jnp.sqrt(p)
        return jax.vmap(jnp.diag)(sqrt_p) - p[:, :, None] * sqrt_p[:, None, :]
    if likelihood.name == "gaussian":
        _, var = likelihood.predict(outputs)
        return jnp.zeros((batch, k, 1), outputs.dtype).at[:, 0, 0].set(jax.lax.rsqrt(var))
    if likelihood.name == "heteroscedastic_gaussian":
        diag = jnp.zeros((batch, k), outputs.dtype)
        diag = diag.at[:, 0].set(jnp.exp(-outputs[:, 1])).at[:, 1].set(math.sqrt(2.0))
        return jax.vmap(jnp.diag)(diag)
    hessian = jax.vmap(jax.hessian(lambda f, t: -likelihood.log_prob(f[None], t[None])[0]))(outputs, y)
    eigvals, eigvecs = jnp.linalg.eigh(0.5 * (hessian + jnp.swapaxes(hessian, 1, 2)))
    return eigvecs * jnp.sqrt(jnp.maximum(eigvals, 0.0))[:, None, :]


def num_factor_columns(likelihood: Likelihood, num_outputs: int, curvature: str) -> int:
    """M, the number of columns of :func:`output_factors`."""
    if curvature == "ef" or likelihood.name == "gaussian":
        return 1
    return num_outputs


# --------------------------------------------------------------------------- #
# Sums over chunks
# --------------------------------------------------------------------------- #
def zeros(hessian: str, sub: Params) -> Curvature:
    """An empty curvature accumulator for the Bayesian parameters ``sub``."""
    if hessian == "diag":
        return DiagCurvature(jax.tree.map(jnp.zeros_like, sub))
    if hessian == "full":
        dim = num_params(sub)
        dtype = jnp.result_type(*jax.tree.leaves(sub))
        return FullCurvature(jnp.zeros((dim, dim), dtype))
    if hessian == "kfac":
        layers = jacobians.kfac_layers(sub)
        dtype = jnp.result_type(*jax.tree.leaves(sub))
        return KronCurvature({
            layer.key: KronFactor(jnp.zeros((layer.fan_in + 1,) * 2, dtype), jnp.zeros((layer.fan_out,) * 2, dtype))
            for layer in layers
        })
    raise ValueError(f"hessian must be one of {HESSIANS}, got {hessian!r}")


def chunk_curvature(
    hessian: str,
    curvature: str,
    apply: ApplyFn,
    likelihood: Likelihood,
    params: Params,
    names,
    layers,
    x: Array,
    y: Array,
    mask: Array,
    with_gradient: bool = False,
) -> tuple[Curvature, Array, Params | None]:
    """Curvature sum, log-likelihood sum and (``with_gradient``) its gradient of one chunk.

    Rows where ``mask`` is False add nothing. The gradient of the summed
    log-likelihood over the Bayesian weights shares the chunk's forward pass:
    on tapped layers it is one more output-space column, the residual
    ``r_i = d log p(y_i | f) / df`` (``sum_i J_i^T r_i``), and otherwise one VJP.
    """
    sub = subsets.select(params, names)
    weight = mask.astype(jnp.result_type(*jax.tree.leaves(sub)))

    def residuals(outputs):
        return jax.grad(lambda f: jnp.sum(weight * likelihood.log_prob(f, y)))(outputs)

    def factors(outputs):
        return output_factors(likelihood, outputs, y, curvature) * weight[:, None, None].astype(outputs.dtype)

    def columns(outputs):  # the factors, and the residual as one more column
        return jnp.concatenate([factors(outputs), residuals(outputs)[:, :, None]], axis=2)

    gradient = None
    if layers is not None:
        outputs, inputs, grads = jacobians.tapped_gradients(apply, params, x, layers,
                                                            columns if with_gradient else factors)
        if with_gradient:
            gradient = _tapped_gradient(layers, inputs, {key: g[-1] for key, g in grads.items()}, sub)
            grads = {key: g[:-1] for key, g in grads.items()}
        if hessian == "diag":
            diag: dict = {}
            for layer in layers:
                a, g = inputs[layer.key], grads[layer.key]  # [B, T, in], [M, B, T, out]
                if layer.num_locations == 1:
                    kernel = jnp.square(a[:, 0]).T @ jnp.sum(jnp.square(g[:, :, 0]), axis=0)
                else:
                    kernel = jnp.sum(jnp.square(jacobians.kernel_jacobians(a, g)), axis=(0, 1))
                set_path(diag, layer.path + ("kernel",), kernel.reshape(layer.kernel_shape))
                if layer.has_bias:
                    set_path(diag, layer.path + ("bias",), jnp.sum(jnp.square(jnp.sum(g, axis=2)), axis=(0, 1)))
            result = DiagCurvature(jax.tree.map(lambda d, s: d.astype(s.dtype), diag, sub))
        else:
            kron = {}
            for layer in layers:
                a, g = inputs[layer.key], grads[layer.key]
                ones = jnp.broadcast_to(weight.astype(a.dtype)[:, None, None], a.shape[:2] + (1,))
                a = jnp.concatenate([a * ones, ones], axis=2)  # [B, T, in + 1]
                kron[layer.key] = KronFactor(gram(a), gram(g) / layer.num_locations)
            result = KronCurvature(kron)
    else:
        outputs = apply(params, x)
        cotangents = jnp.swapaxes(factors(outputs), 1, 2)  # [B, M, K]
        products = jacobians.per_example_vjp(apply, params, names, x, cotangents)  # [B, M, *leaf]
        if hessian == "diag":
            result = DiagCurvature(jax.tree.map(lambda v: jnp.sum(jnp.square(v), axis=(0, 1)), products))
        elif hessian == "full":
            rows = jnp.concatenate([v.reshape(v.shape[0] * v.shape[1], -1) for v in jax.tree.leaves(products)], axis=1)
            result = FullCurvature(rows.T @ rows)
        else:
            raise ValueError("hessian='kfac' needs tapped dense / conv layers")
        if with_gradient:
            _, vjp_fn = jax.vjp(lambda s: apply(subsets.merge(s, params, names), x), sub)
            (gradient,) = vjp_fn(residuals(outputs).astype(outputs.dtype))
    log_likelihood = jnp.sum(jnp.where(mask, likelihood.log_prob(outputs, y), 0.0))
    return result, log_likelihood, gradient


def _tapped_gradient(layers, inputs: dict, residual_grads: dict, sub: Params) -> Params:
    """``sum_i J_i^T r_i`` over tapped layers: kernel ``sum_it a_it (x) g_it``, bias ``sum_it g_it``.

    ``residual_grads[key]``: the output gradients ``[B, T, out]`` of the residual column.
    """
    gradient: dict = {}
    for layer in layers:
        a, g = inputs[layer.key], residual_grads[layer.key]
        kernel = a.reshape(-1, a.shape[-1]).T @ g.reshape(-1, g.shape[-1])
        set_path(gradient, layer.path + ("kernel",), kernel.reshape(layer.kernel_shape))
        if layer.has_bias:
            set_path(gradient, layer.path + ("bias",), jnp.sum(g, axis=(0, 1)))
    return jax.tree.map(lambda d, s: d.astype(s.dtype), gradient, sub)


def gram(rows: Array) -> Array:
    """``R^T R`` for ``R = rows.reshape(-1, rows.shape[-1])``: one matrix product.

    On the CPU an ``einsum`` over several contracted axes ran at half the
    speed of this product (transposes around the dot).
    """
    rows = rows.reshape(-1, rows.shape[-1])
    return rows.T @ rows


class CurvaturePass(NamedTuple):
    """What :func:`accumulate` returns.

    Attributes:
      curvature: the updated curvature sum.
      log_likelihood: the summed log-likelihood of the data passed.
      gradient: its gradient over the Bayesian weights (``with_gradient``), else ``None``.
      chunk_size: the examples per chunk used.
    """

    curvature: Curvature
    log_likelihood: Array
    gradient: Params | None
    chunk_size: int


def accumulate(
    curvature_sum: Curvature,
    hessian: str,
    curvature: str,
    apply: ApplyFn,
    likelihood: Likelihood,
    params: Params,
    names,
    x: Array,
    y: Array,
    chunk_size: int | None = None,
    with_gradient: bool = False,
) -> CurvaturePass:
    """Adds the curvature of ``(x, y)`` at ``params`` to ``curvature_sum``, chunk by chunk.

    With ``with_gradient`` the same pass also sums the log-likelihood's
    gradient over the Bayesian weights (for the mode check of
    :func:`bayesjax.laplace`, without a second pass over the data).
    """
    layers = jacobians.tap_layers(hessian, apply, params, names, x)
    sub = subsets.select(params, names)

    def piece(xc, yc, mask):
        return chunk_curvature(hessian, curvature, apply, likelihood, params, names, layers, xc, yc, mask, with_gradient)

    if chunk_size is None:  # from the traced peak of one chunk (the network's own intermediates included)
        chunk_size = memory.input_chunk(lambda xc, yc: piece(xc, yc, jnp.ones(xc.shape[:1], bool)), x, y)

    def fold(carry, chunk_arrays, mask):
        total, log_likelihood, gradient = carry
        part, part_log_likelihood, part_gradient = piece(*chunk_arrays, mask)
        total = jax.tree.map(lambda t, p: t + p.astype(t.dtype), total, part)
        if with_gradient:
            gradient = jax.tree.map(lambda t, p: t + p, gradient, part_gradient)
        return total, log_likelihood + part_log_likelihood.astype(log_likelihood.dtype), gradient

    dtype = jnp.result_type(*jax.tree.leaves(sub))
    start = (curvature_sum, jnp.zeros((), dtype), jax.tree.map(jnp.zeros_like, sub) if with_gradient else None)
    total, log_likelihood, gradient = scan_chunks(fold, start, (x, y), chunk_size)
    return CurvaturePass(total, log_likelihood, gradient, chunk_size)


# --------------------------------------------------------------------------- #
# Matrix-free products
# --------------------------------------------------------------------------- #
def ggn_vector_product(
    log_joint: LogJoint,
    params: Params,
    data,
    *,
    curvature: str = "ggn",
    subset="all",
    chunk_size: int = 1024,
) -> Callable[[Params], Params]:
    """``v -> sum_i J_i^T L_i L_i^T J_i v``: the likelihood curvature times a vector, matrix-free.

    The untempered, unscaled sum over ``data`` (no prior term): one ``jvp``
    (via ``jax.linearize``) and one transposed ``vjp`` per chunk.

    Args:
      log_joint: supplies ``apply`` and ``likelihood``.
      params: where the curvature is taken (the MAP).
      data: ``(x, y)``.
      curvature: ``"ggn"`` or ``"ef"``.
      subset: ``"all"``, ``"last_layer"`` or top-level names; ``v`` has the
        subset's structure.
      chunk_size: examples per chunk.

    Returns:
      A jittable function of ``v``.

    Example:
      >>> gvp = bj.inference.laplace.ggn_vector_product(lj, params_map, (x, y))
      >>> product = gvp(jax.tree.map(jnp.ones_like, params_map))
      >>> jax.tree.structure(product) == jax.tree.structure(params_map)
      True
    """
    if curvature not in CURVATURES:
        raise ValueError(f"curvature must be one of {CURVATURES}, got {curvature!r}")
    names = subsets.resolve(subset, params)
    sub = subsets.select(params, names)
    x, y = (jnp.asarray(a) for a in data)
    apply, likelihood = log_joint.apply, log_joint.likelihood

    def gvp(v: Params) -> Params:
        def fold(total, chunk_arrays, mask):
            xc, yc = chunk_arrays
            f = lambda s: apply(subsets.merge(s, params, names), xc)  # noqa: E731
            outputs, jvp_fn = jax.linearize(f, sub)
            factors = output_factors(likelihood, outputs, yc, curvature) * mask[:, None, None]
            jv = jvp_fn(v)
            u = jnp.einsum("bkm,bm->bk", factors, jnp.einsum("bkm,bk->bm", factors, jv))
            (piece,) = jax.linear_transpose(jvp_fn, sub)(u.astype(outputs.dtype))
            return jax.tree.map(lambda t, p: t + p.astype(t.dtype), total, piece)

        return scan_chunks(fold, jax.tree.map(jnp.zeros_like, sub), (x, y), chunk_size)

    return gvp
