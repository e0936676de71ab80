"""Dense layers of a flax model: finding them, and tapping their inputs and output gradients.

Kronecker-factored curvature (KFAC) and the fast diagonal / GLM paths need, for
every dense layer ``z = a W + b``, its input ``a`` and the gradient of the model
outputs with respect to its pre-activation ``z``. JAX has no hooks, so both are
read by intercepting ``flax.linen.Dense.__call__`` (``nn.intercept_methods``):
the input is returned as an auxiliary output and a zero perturbation ``e`` is
added to ``z``, so that ``d f / d e`` is the output gradient of every example
at once (each example's perturbation only reaches its own outputs).

Supported: ``flax.linen.Dense`` layers (``kernel [in, out]``, optional
``bias [out]``) each called exactly once per forward pass on 2-D inputs
``[B, in]``, as in ``bj.models.mlp`` and the dense head of ``bj.models.cnn``.
Anything else (convolutions, weight sharing, ``DenseGeneral``, dense layers on
sequences) is reported by :func:`check_dense_calls`, and the callers fall back
to the generic per-example-Jacobian path (diag, full) or raise (KFAC).
"""
from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from bayesjax.types import ApplyFn, Array, Params


class DenseLayer(NamedTuple):
    """A dense layer found in a parameter tree.

    Attributes:
      path: the module path, equal to the path of its parameters
        (``params[path[0]][path[1]]...`` holds ``kernel`` and ``bias``).
      fan_in: input width.
      fan_out: output width.
      has_bias: whether the layer has a ``bias`` leaf.
    """

    path: tuple[str, ...]
    fan_in: int
    fan_out: int
    has_bias: bool

    @property
    def key(self) -> str:
        return "/".join(self.path)


def dense_layers(params: Params) -> tuple[tuple[DenseLayer, ...], bool]:
    """Candidate dense layers of a nested-dict parameter tree.

    A candidate is a dict holding a 2-D ``kernel`` (and optionally a 1-D
    ``bias`` and nothing else).

    Returns:
      ``(layers, covered)``: the candidates in tree order, and whether every
      leaf of ``params`` belongs to one of them.
    """
    layers: list[DenseLayer] = []
    covered = True

    def walk(node, path):
        nonlocal covered
        if isinstance(node, dict):
            kernel = node.get("kernel")
            if kernel is not None and jnp.ndim(kernel) == 2 and set(node) <= {"kernel", "bias"}:
                bias = node.get("bias")
                if bias is None or jnp.shape(bias) == (jnp.shape(kernel)[1],):
                    layers.append(DenseLayer(path, *jnp.shape(kernel), bias is not None))
                    return
            for name in sorted(node):  # the order jax.tree.leaves uses
                walk(node[name], path + (str(name),))
        else:
            covered = False

    walk(params, ())
    return tuple(layers), covered


def _is_dense_call(context) -> bool:
    return (
        isinstance(context.module, nn.Dense)
        and context.method_name == "__call__"
        and not context.module.is_initializing()
    )


def check_dense_calls(apply: ApplyFn, params: Params, x: Array, layers: tuple[DenseLayer, ...]) -> str | None:
    """Whether ``layers`` are flax ``Dense`` layers called once each on 2-D inputs.

    Traces ``apply`` abstractly (``jax.eval_shape``: no computation).

    Returns:
      ``None`` when they are, else the reason they are not (for error messages).
    """
    calls: dict[tuple[str, ...], list[tuple[int, ...]]] = {}

    def interceptor(next_fun, args, kwargs, context):
        if _is_dense_call(context):
            calls.setdefault(tuple(context.module.path), []).append(tuple(jnp.shape(args[0])))
        return next_fun(*args, **kwargs)

    def fresh(p, xx):  # a new function each call: eval_shape caches traces by function
        return apply(p, xx)

    spec = jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x))
    try:
        with nn.intercept_methods(interceptor):
            jax.eval_shape(fresh, params, spec)
    except Exception as error:  # noqa: BLE001 - any failure means "not tappable"
        return f"tracing the model under flax interception failed ({type(error).__name__}: {error})"
    for layer in layers:
        shapes = calls.get(layer.path)
        if not shapes:
            return f"parameters {layer.key!r} are not used by a flax.linen.Dense layer of that name"
        if len(shapes) > 1:
            return f"Dense layer {layer.key!r} is called {len(shapes)} times (shared weights)"
        if len(shapes[0]) != 2:
            return f"Dense layer {layer.key!r} sees inputs of shape {shapes[0]}, not [batch, features]"
    return None


def tapped_forward(
    apply: ApplyFn, params: Params, x: Array, perturbations: dict[str, Array]
) -> tuple[Array, dict[str, Array]]:
    """``apply(params, x)`` with ``perturbations[key]`` added to each tapped layer's output.

    Args:
      apply: the model.
      params: full parameters.
      x: inputs ``[B, ...]``.
      perturbations: layer key -> ``[B, fan_out]`` (zeros: the output is unchanged).

    Returns:
      ``(outputs, inputs)`` with ``inputs[key]`` the ``[B, fan_in]`` input of each
      tapped layer. Differentiate with respect to ``perturbations`` to get the
      per-example output gradients with respect to each layer's pre-activation.
    """
    inputs: dict[str, Array] = {}

    def interceptor(next_fun, args, kwargs, context):
        if not _is_dense_call(context):
            return next_fun(*args, **kwargs)
        key = "/".join(context.module.path)
        if key not in perturbations:
            return next_fun(*args, **kwargs)
        inputs[key] = args[0]
        out = next_fun(*args, **kwargs)
        return out + perturbations[key].astype(out.dtype)

    with nn.intercept_methods(interceptor):
        outputs = apply(params, x)
    missing = sorted(set(perturbations) - set(inputs))
    if missing:
        raise ValueError(f"Dense layers {missing} were not called by the model")
    return outputs, inputs
