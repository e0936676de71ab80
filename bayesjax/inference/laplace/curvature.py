"""Curvature of the log-likelihood: GGN and empirical Fisher, matrix-free and chunked.

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

Nothing of size ``N x K x P`` is ever built. The data are processed in chunks
by a ``lax.scan`` that gathers one chunk at a time (the last one masked), so
memory is that of one chunk whatever ``N``. Per chunk:

* diag / KFAC of dense and conv layers (:mod:`.layers`): one forward pass and
  M backward passes give each example's layer inputs ``a_t`` (conv: patches)
  and output gradients ``g_t`` at the layer's T output locations (T = 1 for
  a dense layer). The Kronecker factors are (Martens & Grosse 2015; Botev et
  al. 2017; for T > 1 the KFC factors of Grosse & Martens 2016, which assume
  spatially homogeneous, spatially uncorrelated output gradients)

      A = sum_i sum_t [a_it; 1][a_it; 1]^T,     G = (1 / T) sum_i sum_m sum_t g_itm g_itm^T,

  with the kernel block ``A_aa (x) G / m`` and the bias block ``A_11 G / m``
  (m examples): exact for one example when T = 1. The diagonal is exact for
  any T: ``diag(W) = sum_i sum_m (sum_t a_it (x) g_itm)^2``, which for T = 1
  is ``(a^2)^T sum_m g_m^2`` without per-example gradients;
* any other model (diag, full): per-example vector-Jacobian products
  ``J_i^T L_i`` (``[chunk, M, P]``), squared and summed (diag) or as ``V^T V``
  (full);
* :func:`ggn_vector_product`: ``jvp`` then ``vjp``, one chunk at a time.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from bayesjax.base import num_params
from bayesjax.inference.laplace import subset as subsets
from bayesjax.inference.laplace.layers import Layer, NotTappable, check_calls, find_layers, tapped_forward
from bayesjax.likelihoods import Likelihood
from bayesjax.logjoint import LogJoint
from bayesjax.types import ApplyFn, Array, Params

HESSIANS = ("full", "diag", "kfac")
CURVATURES = ("ggn", "ef")
DEFAULT_MEMORY_BUDGET = 64 * 2**20  # bytes of per-chunk intermediates
MAX_CHUNK = 4096


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
# Chunking
# --------------------------------------------------------------------------- #
def one_example(x: Array) -> jax.ShapeDtypeStruct:
    """The shape of ``x[:1]``, without slicing (eagerly, a slice compiles a kernel; traced, it adds an op)."""
    return jax.ShapeDtypeStruct((1,) + tuple(jnp.shape(x)[1:]), jnp.result_type(x))


def num_outputs(apply: ApplyFn, params: Params, x: Array) -> int:
    """K, the model's outputs per example (from shapes alone)."""
    return jax.eval_shape(apply, params, one_example(x)).shape[-1]


def chunking(num_examples: int, chunk_size: int) -> tuple[int, int]:
    """``(chunk, num_chunks)`` for ``num_examples`` split into chunks of at most ``chunk_size``."""
    chunk = max(1, min(int(chunk_size), num_examples))
    return chunk, -(-num_examples // chunk)


def auto_chunk_size(num_examples: int, bytes_per_example: float, budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """The largest chunk whose intermediates fit ``budget`` bytes (at least 1, at most 4096)."""
    return int(max(1, min(num_examples, MAX_CHUNK, budget // max(1.0, bytes_per_example))))


def _take_chunk(arrays, index: Array, chunk: int, num_examples: int):
    rows = index * chunk + jnp.arange(chunk)
    mask = rows < num_examples
    rows = jnp.minimum(rows, num_examples - 1)
    return jax.tree.map(lambda a: jnp.take(a, rows, axis=0), arrays), mask


def scan_chunks(fn: Callable, init, arrays, chunk_size: int):
    """``fn(carry, chunk_arrays, mask) -> carry`` folded over chunks of ``arrays`` (leading axis).

    One chunk is gathered at a time inside a ``lax.scan``: no padded copy of
    the data is made. ``mask`` marks the real rows of the (last) chunk.
    """
    num_examples = jax.tree.leaves(arrays)[0].shape[0]
    chunk, num_chunks = chunking(num_examples, chunk_size)
    if num_chunks == 1 and chunk == num_examples:
        return fn(init, arrays, jnp.ones((num_examples,), bool))

    def body(carry, index):
        chunk_arrays, mask = _take_chunk(arrays, index, chunk, num_examples)
        return fn(carry, chunk_arrays, mask), None

    carry, _ = jax.lax.scan(body, init, jnp.arange(num_chunks))
    return carry


def map_chunks(fn: Callable, arrays, chunk_size: int):
    """``fn(chunk_arrays) -> outputs`` (leading axis = chunk) over chunks, concatenated."""
    num_examples = jax.tree.leaves(arrays)[0].shape[0]
    chunk, num_chunks = chunking(num_examples, chunk_size)
    if num_chunks == 1 and chunk == num_examples:
        return fn(arrays)
    outputs = jax.lax.map(lambda index: fn(_take_chunk(arrays, index, chunk, num_examples)[0]),
                          jnp.arange(num_chunks))
    return jax.tree.map(lambda o: o.reshape((num_chunks * chunk,) + o.shape[2:])[:num_examples], outputs)


# --------------------------------------------------------------------------- #
# Which path
# --------------------------------------------------------------------------- #
def kfac_layers(sub: Params) -> tuple[Layer, ...]:
    """The dense / conv layers of the Bayesian parameters, or a ValueError naming what KFAC cannot factor."""
    layers, covered = find_layers(sub)
    if not layers or not covered:
        raise ValueError(
            "hessian='kfac' supports flax Dense and Conv layers only (kernel [in, out] or [*window, c_in, c_out], "
            "bias [out], as in bj.models.mlp and bj.models.cnn); the Bayesian parameters contain other leaves "
            "(e.g. a custom apply). Use hessian='diag' or 'full', or subset='last_layer'."
        )
    return layers


def tap_layers(hessian: str, apply: ApplyFn, params: Params, names, x: Array) -> tuple[Layer, ...] | None:
    """Layers to tap for ``hessian`` (with their output shapes), or ``None`` for the generic per-example path.

    Decided at trace time from static shapes. KFAC raises when the model
    cannot be tapped; diag falls back to per-example Jacobians.
    """
    if hessian == "full":
        return None
    sub = subsets.select(params, names)
    if hessian == "kfac":
        layers = kfac_layers(sub)
    else:
        layers, covered = find_layers(sub)
        if not layers or not covered:
            return None
    try:
        return check_calls(apply, params, one_example(x), layers)
    except NotTappable as reason:
        if hessian == "kfac":
            raise ValueError(f"hessian='kfac' cannot factor this model: {reason}. Use hessian='diag' or 'full'.")
        return None


def bytes_per_example(layers, sub: Params, num_columns: int, x: Array) -> float:
    """A rough size of one example's intermediates, to pick a chunk size."""
    itemsize = max(leaf.dtype.itemsize for leaf in jax.tree.leaves(sub))
    row = math.prod(x.shape[1:]) * x.dtype.itemsize
    if layers is None:
        return 3.0 * num_columns * num_params(sub) * itemsize + row
    width = sum(layer.num_locations * (layer.fan_in + layer.fan_out) for layer in layers)
    jacobians = sum(layer.fan_in * layer.fan_out for layer in layers if layer.num_locations > 1)
    return ((num_columns + 4) * width + 2 * num_columns * jacobians) * itemsize + 4 * row


# --------------------------------------------------------------------------- #
# Per-chunk curvature
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
        layers = kfac_layers(sub)
        dtype = jnp.result_type(*jax.tree.leaves(sub))
        return KronCurvature({
            layer.key: KronFactor(jnp.zeros((layer.fan_in + 1,) * 2, dtype), jnp.zeros((layer.fan_out,) * 2, dtype))
            for layer in layers
        })
    raise ValueError(f"hessian must be one of {HESSIANS}, got {hessian!r}")


def get_path(tree, path: tuple[str, ...]):
    """The node of nested dicts ``tree`` at the key sequence ``path`` (a layer's path in flax params)."""
    for name in path:
        tree = tree[name]
    return tree


def set_path(tree: dict, path: tuple[str, ...], value) -> None:
    """Puts ``value`` at ``path`` in nested dicts ``tree``, creating the dicts on the way (in place)."""
    for name in path[:-1]:
        tree = tree.setdefault(name, {})
    tree[path[-1]] = value


def tapped_gradients(apply, params, x, layers, cotangent_fn):
    """Layer inputs and output gradients of one chunk, at each layer's T output locations.

    Args:
      cotangent_fn: ``outputs [B, K] -> cotangents [B, K, M]``.

    Returns:
      ``(outputs, inputs, grads)``: ``inputs[key] [B, T, fan_in]``,
      ``grads[key] [M, B, T, fan_out]``.
    """
    batch = x.shape[0]
    dtype = jnp.result_type(*jax.tree.leaves(params))
    perturbations = {layer.key: jnp.zeros((batch,) + layer.output_shape + (layer.fan_out,), dtype)
                     for layer in layers}
    outputs, vjp_fn, inputs = jax.vjp(lambda e: tapped_forward(apply, params, x, e), perturbations, has_aux=True)
    cotangents = cotangent_fn(outputs)
    grads = jax.vmap(lambda c: vjp_fn(c)[0], in_axes=2)(cotangents.astype(outputs.dtype))
    grads = {key: g.reshape(g.shape[:2] + (-1, g.shape[-1])) for key, g in grads.items()}
    return outputs, inputs, grads


def kernel_jacobians(a: Array, g: Array) -> Array:
    """Per-example kernel gradients ``sum_t a_bt (x) g_mbt``: ``[M, B, fan_in, fan_out]``.

    Args:
      a: layer inputs ``[B, T, fan_in]``.
      g: output gradients ``[M, B, T, fan_out]``.
    """
    return jnp.einsum("bti,mbtj->mbij", a, g)


def per_example_vjp(apply, params, names, x: Array, cotangents: Array) -> Params:
    """``J_i^T c_im`` for every example i and column m: leaves ``[B, M, *leaf]``.

    Args:
      cotangents: ``[B, M, K]``.
    """
    sub = subsets.select(params, names)

    def one(xi, ci):
        _, vjp_fn = jax.vjp(lambda s: apply(subsets.merge(s, params, names), xi[None])[0], sub)
        return jax.vmap(lambda c: vjp_fn(c)[0])(ci)

    return jax.vmap(one)(x, cotangents)


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
        outputs, inputs, grads = tapped_gradients(apply, params, x, layers, factors)
        if hessian == "diag":
            diag: dict = {}
            for layer in layers:
                a, g = inputs[layer.key], grads[layer.key]  # [B, T, in], [M, B, T, out]
                if layer.num_locations == 1:
                    kernel = jnp.square(a[:, 0]).T @ jnp.sum(jnp.square(g[:, :, 0]), axis=0)
                else:
                    kernel = jnp.sum(jnp.square(kernel_jacobians(a, g)), axis=(0, 1))
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
        products = per_example_vjp(apply, params, names, x, cotangents)
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
    layers = tap_layers(hessian, apply, params, names, x)
    sub = subsets.select(params, names)
    if chunk_size is None:
        columns = num_factor_columns(likelihood, num_outputs(apply, params, x), curvature)
        chunk_size = auto_chunk_size(x.shape[0], bytes_per_example(layers, sub, columns, x))

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
      >>> gvp = ggn_vector_product(lj, params_map, (x, y))
      >>> gvp(jax.tree.map(jnp.ones_like, params_map))
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
