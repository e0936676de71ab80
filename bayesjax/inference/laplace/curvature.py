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
) -> tuple[Curvature, Array]:
    """Curvature sum and log-likelihood sum of one chunk (rows where ``mask`` is False add nothing)."""
    sub = subsets.select(params, names)

    def factors(outputs):
        return output_factors(likelihood, outputs, y, curvature) * mask[:, None, None].astype(outputs.dtype)

    if layers is not None:
        outputs, inputs, grads = jacobians.tapped_gradients(apply, params, x, layers, factors)
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
                weight = jnp.broadcast_to(mask.astype(a.dtype)[:, None, None], a.shape[:2] + (1,))
                a = jnp.concatenate([a * weight, weight], axis=2)  # [B, T, in + 1]
                g_sum = jnp.einsum("mbti,mbtj->ij", g, g)
                kron[layer.key] = KronFactor(jnp.einsum("bti,btj->ij", a, a), g_sum / layer.num_locations)
            result = KronCurvature(kron)
    else:
        outputs = apply(params, x)
        cotangents = jnp.swapaxes(factors(outputs), 1, 2)  # [B, M, K]
        products = jacobians.per_example_vjp(apply, params, names, x, cotangents)
        if hessian == "diag":
            result = DiagCurvature(jax.tree.map(lambda v: jnp.sum(jnp.square(v), axis=(0, 1)), products))
        elif hessian == "full":
            rows = jnp.concatenate([v.reshape(v.shape[0] * v.shape[1], -1) for v in jax.tree.leaves(products)], axis=1)
            result = FullCurvature(rows.T @ rows)
        else:
            raise ValueError("hessian='kfac' needs tapped dense / conv layers")
    log_likelihood = jnp.sum(jnp.where(mask, likelihood.log_prob(outputs, y), 0.0))
    return result, log_likelihood


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
) -> tuple[Curvature, Array, int]:
    """Adds the curvature of ``(x, y)`` at ``params`` to ``curvature_sum``, chunk by chunk.

    Returns:
      ``(curvature_sum, log_likelihood_sum, chunk_size)``: the updated sum, the
      summed log-likelihood of ``(x, y)`` and the chunk size used.
    """
    layers = jacobians.tap_layers(hessian, apply, params, names, x)
    sub = subsets.select(params, names)
    if chunk_size is None:  # from the traced peak of one chunk (the network's own intermediates included)
        chunk_size = memory.input_chunk(lambda xc, yc: chunk_curvature(
            hessian, curvature, apply, likelihood, params, names, layers, xc, yc, jnp.ones(xc.shape[:1], bool)), x, y)

    def fold(carry, chunk_arrays, mask):
        total, log_likelihood = carry
        xc, yc = chunk_arrays
        piece, piece_log_likelihood = chunk_curvature(
            hessian, curvature, apply, likelihood, params, names, layers, xc, yc, mask
        )
        total = jax.tree.map(lambda t, p: t + p.astype(t.dtype), total, piece)
        return total, log_likelihood + piece_log_likelihood.astype(log_likelihood.dtype)

    dtype = jnp.result_type(*jax.tree.leaves(sub))
    total, log_likelihood = scan_chunks(fold, (curvature_sum, jnp.zeros((), dtype)), (x, y), chunk_size)
    return total, log_likelihood, chunk_size


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
