"""Per-example Jacobians of one chunk: tapped layers where the model allows, per-example VJPs otherwise.

Both the curvature sums (:mod:`.curvature`) and the functional covariance
(:mod:`.glm`) need, per example i, products of the output Jacobian
``J_i = df_i/dtheta`` (``[K, P]``) with output-space vectors. Two paths:

* tapped dense and conv layers (:mod:`.layers`): one forward pass and one
  backward pass per output-space column give each example's layer inputs
  ``a_t`` (conv: patches) and output gradients ``g_t`` at the layer's T output
  locations (T = 1 for a dense layer); a kernel's per-example gradient is
  ``sum_t a_t (x) g_t`` (:func:`kernel_jacobians`), never formed for dense layers;
* any other model: per-example vector-Jacobian products ``J_i^T c``
  (:func:`per_example_vjp`).

:func:`tap_layers` decides at trace time, from static shapes, which applies.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from bayesjax.inference.laplace import subsets
from bayesjax.inference.laplace.layers import Layer, NotTappable, check_calls, find_layers, tapped_forward
from bayesjax.types import ApplyFn, Array, Params


def one_example(x: Array) -> jax.ShapeDtypeStruct:
    """The shape of ``x[:1]``, without slicing (eagerly, a slice compiles a kernel; traced, it adds an op)."""
    return jax.ShapeDtypeStruct((1,) + tuple(jnp.shape(x)[1:]), jnp.result_type(x))


def num_outputs(apply: ApplyFn, params: Params, x: Array) -> int:
    """K, the model's outputs per example (from shapes alone)."""
    return jax.eval_shape(apply, params, one_example(x)).shape[-1]


def kfac_layers(sub: Params) -> tuple[Layer, ...]:
    """The dense / conv layers of the Bayesian parameters, or a ValueError naming what KFAC cannot factor."""
    layers, covered = find_layers(sub)
    if not layers or not covered:
        raise ValueError(
            "hessian='kfac' supports flax linen Dense / Conv and nnx Linear / Conv layers only (kernel [in, out] "
            "or [*window, c_in, c_out], bias [out], as in bj.models.mlp and bj.models.cnn); the Bayesian "
            "parameters contain other leaves (e.g. a custom apply, or normalization scales: leave those out "
            "with subset=). Use hessian='diag' or 'full', or subset='last_layer'."
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
