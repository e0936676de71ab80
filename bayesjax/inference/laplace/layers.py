"""Dense and convolution layers of a flax model: finding them, and tapping their inputs and output gradients.

Kronecker-factored curvature (KFAC) and the fast diagonal / GLM paths need,
for every layer, its inputs and the gradient of the model outputs with respect
to its pre-activations. A dense layer computes ``z = a W + b`` once per
example; a convolution computes it at every output location ``t``,

    z_t = a_t W + b,    a_t = the input patch under the window at t (im2col),

with the kernel ``[*window, c_in, c_out]`` read as a matrix
``W [prod(window) c_in, c_out]`` (Grosse & Martens 2016, "A Kronecker-factored
approximate Fisher matrix for convolution layers"). Both are handled as
``T`` locations per example (``T = 1`` for a dense layer).

JAX has no hooks, so inputs and output gradients are read by intercepting the
layer calls (:func:`~.interception.intercepting`: ``flax.linen`` ``Dense`` and
``Conv``, ``flax.nnx`` ``Linear`` and ``Conv``): the patches are returned as
an auxiliary output and a zero perturbation ``e`` is added to ``z``, so that
``d f / d e`` is the output gradient of every example and location at once
(each example's perturbation only reaches its own outputs). The patches of a
convolution come from the module itself, called with an identity kernel of
``prod(window) c_in`` output features, so every flax padding mode, stride and
dilation is honoured exactly.

Supported, in either flax API: dense layers (linen ``Dense``, nnx ``Linear``:
``kernel [in, out]``, optional ``bias [out]``) called on 2-D inputs
``[B, in]``, and convolutions (``Conv``: ``kernel [*window, c_in, c_out]``,
optional ``bias [c_out]``, ``feature_group_count = 1``, no mask) called on
inputs ``[B, *spatial, c_in]``, each called exactly once per forward pass, as
in ``bj.models.mlp`` and ``bj.models.cnn`` or their nnx counterparts through
``bj.models.from_flax``. Anything else (weight sharing, ``DenseGeneral`` /
``LinearGeneral``, ``Einsum``, custom layers, grouped or masked convolutions,
dense layers on sequences) raises :class:`NotTappable` from
:func:`check_calls`, naming the layer, and the callers fall back to the
generic per-example-Jacobian path (diag, full) or raise (KFAC).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from bayesjax.inference.laplace.interception import LayerCall, conv_patches, intercepting, path_key
from bayesjax.types import ApplyFn, Array, Params


class Layer(NamedTuple):
    """A dense or convolution layer found in a parameter tree.

    Attributes:
      path: the keys of its parameters (``params[path[0]][path[1]]...``
        holds ``kernel`` and ``bias``): the linen module path, or the nnx
        attribute names (integers for the items of an ``nnx.List``).
      kernel_shape: ``[in, out]`` (dense) or ``[*window, c_in, c_out]`` (conv).
      has_bias: whether the layer has a ``bias`` leaf.
      output_shape: the spatial shape of a convolution's output for one
        example (set by :func:`check_calls`; ``()`` for dense layers).
    """

    path: tuple
    kernel_shape: tuple[int, ...]
    has_bias: bool
    output_shape: tuple[int, ...] = ()

    @property
    def key(self) -> str:
        return path_key(self.path)

    @property
    def fan_in(self) -> int:
        """Rows of the kernel as a matrix: ``in``, or ``prod(window) c_in``."""
        return math.prod(self.kernel_shape[:-1])

    @property
    def fan_out(self) -> int:
        return self.kernel_shape[-1]

    @property
    def is_conv(self) -> bool:
        return len(self.kernel_shape) > 2

    @property
    def num_locations(self) -> int:
        """T, the output locations per example (1 for a dense layer)."""
        return math.prod(self.output_shape)


class NotTappable(ValueError):
    """The model's layers cannot be tapped; the message says why."""


def find_layers(params: Params) -> tuple[tuple[Layer, ...], bool]:
    """Candidate dense / conv layers of a nested-dict parameter tree.

    A candidate is a dict holding a ``kernel`` with ``ndim >= 2`` (and
    optionally a ``bias`` of shape ``[kernel.shape[-1]]``, and nothing else).

    Returns:
      ``(layers, covered)``: the candidates in tree order, and whether every
      leaf of ``params`` belongs to one of them.
    """
    layers: list[Layer] = []
    covered = True

    def walk(node, path):
        nonlocal covered
        if isinstance(node, dict):
            kernel = node.get("kernel")
            if kernel is not None and jnp.ndim(kernel) >= 2 and set(node) <= {"kernel", "bias"}:
                bias = node.get("bias")
                if bias is None or jnp.shape(bias) == (jnp.shape(kernel)[-1],):
                    layers.append(Layer(path, tuple(jnp.shape(kernel)), bias is not None))
                    return
            for name in sorted(node):  # the order jax.tree.leaves uses
                walk(node[name], path + (name,))
        else:
            covered = False

    walk(params, ())
    return tuple(layers), covered


def get_path(tree, path: tuple):
    """The node of nested dicts ``tree`` at the key sequence ``path`` (a layer's path in flax params)."""
    for name in path:
        tree = tree[name]
    return tree


def set_path(tree: dict, path: tuple, value) -> None:
    """Puts ``value`` at ``path`` in nested dicts ``tree``, creating the dicts on the way (in place)."""
    for name in path[:-1]:
        tree = tree.setdefault(name, {})
    tree[path[-1]] = value


def _conv_problem(module, input_shape: tuple[int, ...], layer: Layer) -> str | None:
    if module.feature_group_count != 1:
        return f"Conv layer {layer.key!r} is grouped (feature_group_count={module.feature_group_count})"
    if module.mask is not None:
        return f"Conv layer {layer.key!r} is masked"
    if len(input_shape) != len(layer.kernel_shape):
        return f"Conv layer {layer.key!r} sees inputs of shape {input_shape}, not [batch, *spatial, channels]"
    return None


class Trace(NamedTuple):
    """The dense / conv layer calls of one forward pass (:func:`trace_calls`).

    Attributes:
      calls: ``(layer, input_shape, output_shape)`` of every call, in order.
      output_layer: the layer whose output the model returns as its own, or
        ``None`` when the model's output is not a layer's output.
    """

    calls: list[tuple[LayerCall, tuple[int, ...], tuple[int, ...]]]
    output_layer: LayerCall | None


def trace_calls(apply: ApplyFn, params: Params, x: Array) -> Trace:
    """The dense / conv layer calls of ``apply(params, x)``.

    Traces ``apply`` abstractly (``jax.eval_shape``: no computation) under
    :func:`~.interception.intercepting`.
    """
    calls, produced, output_layer = [], [], None

    def interceptor(call, inputs, layer: LayerCall):
        out = call(inputs)
        calls.append((layer, tuple(jnp.shape(inputs)), tuple(jnp.shape(out))))
        produced.append((out, layer))
        return out

    def fresh(p, xx):  # a new function each call: eval_shape caches traces by function
        nonlocal output_layer
        with intercepting(interceptor, p):
            outputs = apply(p, xx)
        output_layer = next((layer for out, layer in produced if out is outputs), None)
        return outputs

    jax.eval_shape(fresh, params, jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)))
    return Trace(calls, output_layer)


def check_calls(apply: ApplyFn, params: Params, x: Array, layers: tuple[Layer, ...]) -> tuple[Layer, ...]:
    """``layers`` with their output shapes, after checking that each can be tapped.

    Traces ``apply`` abstractly (:func:`trace_calls`) and checks that every
    layer is a flax dense layer (linen ``Dense``, nnx ``Linear``) on 2-D
    inputs or a supported flax ``Conv`` (see the module docstring), called once.

    Raises:
      NotTappable: naming the first layer that is not, and why.
    """
    try:
        traced = trace_calls(apply, params, x).calls
    except Exception as error:  # noqa: BLE001 - any failure means "not tappable"
        raise NotTappable(f"tracing the model under flax interception failed ({type(error).__name__}: {error})")
    calls: dict[tuple, list[tuple[LayerCall, tuple, tuple]]] = {}
    for found in traced:
        calls.setdefault(found[0].path, []).append(found)
    checked = []
    for layer in layers:
        found = calls.get(layer.path)
        if not found:
            raise NotTappable(
                f"parameters {layer.key!r} are not used by a flax dense or convolution layer (linen Dense / Conv, "
                f"nnx Linear / Conv) of that name; an nnx layer is found by its kernel, so it must read the "
                f"array passed in params, not a transformed copy")
        if len(found) > 1:
            raise NotTappable(f"layer {layer.key!r} is called {len(found)} times (shared weights)")
        call, input_shape, output_shape = found[0]
        if call.kind != ("conv" if layer.is_conv else "dense"):
            raise NotTappable(
                f"parameters {layer.key!r} of shape {layer.kernel_shape} belong to a flax {call.kind} layer")
        if call.kind == "dense" and len(input_shape) != 2:
            raise NotTappable(f"dense layer {layer.key!r} sees inputs of shape {input_shape}, not [batch, features]")
        if call.kind == "conv":
            problem = _conv_problem(call.module, input_shape, layer)
            if problem:
                raise NotTappable(problem)
        checked.append(layer._replace(output_shape=output_shape[1:-1]))
    return tuple(checked)


def tapped_forward(
    apply: ApplyFn, params: Params, x: Array, perturbations: dict[str, Array]
) -> tuple[Array, dict[str, Array]]:
    """``apply(params, x)`` with ``perturbations[key]`` added to each tapped layer's output.

    Args:
      apply: the model.
      params: full parameters.
      x: inputs ``[B, ...]``.
      perturbations: layer key -> ``[B, *output_shape, fan_out]`` (zeros: the
        output is unchanged).

    Returns:
      ``(outputs, inputs)`` with ``inputs[key]`` the ``[B, T, fan_in]`` inputs
      (patches) of each tapped layer at its T output locations.
      Differentiate with respect to ``perturbations`` to get the output
      gradients with respect to each layer's pre-activations.
    """
    inputs: dict[str, Array] = {}
    extracting = False

    def interceptor(call, a, layer: LayerCall):
        nonlocal extracting
        key = path_key(layer.path)
        if extracting or key not in perturbations:
            return call(a)
        patches = a
        if layer.kind == "conv":
            extracting = True  # a linen patch extractor is a Conv too: let it through
            patches = conv_patches(layer.module, a)
            extracting = False
        inputs[key] = patches.reshape(patches.shape[0], -1, patches.shape[-1])
        out = call(a)
        return out + perturbations[key].astype(out.dtype)

    with intercepting(interceptor, params):
        outputs = apply(params, x)
    missing = sorted(set(perturbations) - set(inputs))
    if missing:
        raise ValueError(f"layers {missing} were not called by the model")
    return outputs, inputs


def last_layer(apply: ApplyFn, params: Params, x: Array) -> tuple[str]:
    """The top-level name of the model's output layer: the dense or conv layer whose output the model returns.

    Found by tracing ``apply`` abstractly (:func:`trace_calls`), so it works
    for linen and nnx models whatever their layers are named (linen
    ``Dense_2``, nnx ``out``).

    Raises:
      ValueError: when the model's output is not the output of a flax dense
        or conv layer (e.g. a custom layer, or an operation after the last
        layer), or that layer is not a top-level entry of ``params`` (e.g.
        an item of an ``nnx.List``).

    Example:
      >>> from bayesjax.inference.laplace.layers import last_layer
      >>> last_layer(model.apply, params, x_train[:1])
      ('Dense_1',)
    """
    layer = trace_calls(apply, params, x).output_layer
    if layer is None:
        raise ValueError("subset='last_layer' needs a model that returns the output of a flax dense or convolution "
                         "layer (linen Dense / Conv, nnx Linear / Conv); this one returns something else (a custom "
                         "layer, or an operation after its last layer): pass subset=('<name>',) with top-level names")
    if len(layer.path) != 1:
        raise ValueError(f"the model's last layer {path_key(layer.path)!r} is not a top-level entry of params, and a "
                         f"subset is top-level names; pass subset=('<name>',)")
    return (str(layer.path[0]),)
