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

JAX has no hooks, so inputs and output gradients are read by intercepting
``flax.linen.Dense.__call__`` and ``flax.linen.Conv.__call__``
(``nn.intercept_methods``): the patches are returned as an auxiliary output
and a zero perturbation ``e`` is added to ``z``, so that ``d f / d e`` is the
output gradient of every example and location at once (each example's
perturbation only reaches its own outputs). The patches of a convolution come
from the module itself, cloned with an identity kernel of
``prod(window) c_in`` output features, so every flax padding mode, stride and
dilation is honoured exactly.

Supported: ``flax.linen.Dense`` layers (``kernel [in, out]``, optional
``bias [out]``) called on 2-D inputs ``[B, in]``, and ``flax.linen.Conv``
layers (``kernel [*window, c_in, c_out]``, optional ``bias [c_out]``,
``feature_group_count = 1``, no mask) called on inputs ``[B, *spatial, c_in]``,
each called exactly once per forward pass, as in ``bj.models.mlp`` and
``bj.models.cnn``. Anything else (weight sharing, ``DenseGeneral``, grouped or
masked convolutions, dense layers on sequences) raises :class:`NotTappable`
from :func:`check_calls`, and the callers fall back to the generic
per-example-Jacobian path (diag, full) or raise (KFAC).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from bayesjax.types import ApplyFn, Array, Params


class Layer(NamedTuple):
    """A dense or convolution layer found in a parameter tree.

    Attributes:
      path: the module path, equal to the path of its parameters
        (``params[path[0]][path[1]]...`` holds ``kernel`` and ``bias``).
      kernel_shape: ``[in, out]`` (dense) or ``[*window, c_in, c_out]`` (conv).
      has_bias: whether the layer has a ``bias`` leaf.
      output_shape: the spatial shape of a convolution's output for one
        example (set by :func:`check_calls`; ``()`` for dense layers).
    """

    path: tuple[str, ...]
    kernel_shape: tuple[int, ...]
    has_bias: bool
    output_shape: tuple[int, ...] = ()

    @property
    def key(self) -> str:
        return "/".join(self.path)

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
                walk(node[name], path + (str(name),))
        else:
            covered = False

    walk(params, ())
    return tuple(layers), covered


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


def _tapped_kind(context) -> str | None:
    """``"dense"`` or ``"conv"`` for a call that may be tapped, else ``None``."""
    if context.method_name != "__call__" or context.module.is_initializing():
        return None
    if isinstance(context.module, nn.Dense):
        return "dense"
    if isinstance(context.module, nn.Conv):
        return "conv"
    return None


def _conv_problem(module: nn.Conv, input_shape: tuple[int, ...], layer: Layer) -> str | None:
    if module.feature_group_count != 1:
        return f"Conv layer {layer.key!r} is grouped (feature_group_count={module.feature_group_count})"
    if module.mask is not None:
        return f"Conv layer {layer.key!r} is masked"
    if len(input_shape) != len(layer.kernel_shape):
        return f"Conv layer {layer.key!r} sees inputs of shape {input_shape}, not [batch, *spatial, channels]"
    return None


def check_calls(apply: ApplyFn, params: Params, x: Array, layers: tuple[Layer, ...]) -> tuple[Layer, ...]:
    """``layers`` with their output shapes, after checking that each can be tapped.

    Traces ``apply`` abstractly (``jax.eval_shape``: no computation) and checks
    that every layer is a flax ``Dense`` on 2-D inputs or a supported flax
    ``Conv`` (see the module docstring), called once.

    Raises:
      NotTappable: naming the first layer that is not, and why.
    """
    calls: dict[tuple[str, ...], list[tuple[str, tuple[int, ...], tuple[int, ...], nn.Module]]] = {}

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        kind = _tapped_kind(context)
        if kind is not None:
            calls.setdefault(tuple(context.module.path), []).append(
                (kind, tuple(jnp.shape(args[0])), tuple(jnp.shape(out)), context.module))
        return out

    def fresh(p, xx):  # a new function each call: eval_shape caches traces by function
        return apply(p, xx)

    spec = jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x))
    try:
        with nn.intercept_methods(interceptor):
            jax.eval_shape(fresh, params, spec)
    except Exception as error:  # noqa: BLE001 - any failure means "not tappable"
        raise NotTappable(f"tracing the model under flax interception failed ({type(error).__name__}: {error})")
    checked = []
    for layer in layers:
        found = calls.get(layer.path)
        if not found:
            raise NotTappable(f"parameters {layer.key!r} are not used by a flax.linen.Dense or Conv layer of that name")
        if len(found) > 1:
            raise NotTappable(f"layer {layer.key!r} is called {len(found)} times (shared weights)")
        kind, input_shape, output_shape, module = found[0]
        if kind != ("conv" if layer.is_conv else "dense"):
            raise NotTappable(f"parameters {layer.key!r} of shape {layer.kernel_shape} belong to a flax {kind} layer")
        if kind == "dense" and len(input_shape) != 2:
            raise NotTappable(f"Dense layer {layer.key!r} sees inputs of shape {input_shape}, not [batch, features]")
        if kind == "conv":
            problem = _conv_problem(module, input_shape, layer)
            if problem:
                raise NotTappable(problem)
        checked.append(layer._replace(output_shape=output_shape[1:-1]))
    return tuple(checked)


def conv_patches(module: nn.Conv, inputs: Array) -> Array:
    """The im2col patches of a flax ``Conv`` call: ``[B, *out_spatial, prod(window) c_in]``.

    ``module`` applied with an identity kernel (``prod(window) c_in`` output
    features, no bias, ``Precision.HIGHEST`` so nothing is rounded): patch
    entry ``k`` is the input under kernel entry ``k`` of ``kernel.reshape(-1,
    c_out)``, for exactly the padding, strides and dilations of the layer.
    """
    window = tuple(module.kernel_size) if not isinstance(module.kernel_size, int) else (module.kernel_size,)
    window = window + (inputs.shape[-1],)
    size = math.prod(window)
    identity = jnp.eye(size, dtype=inputs.dtype).reshape(window + (size,))
    extractor = module.clone(parent=None, features=size, use_bias=False, mask=None,
                             precision=jax.lax.Precision.HIGHEST)
    return extractor.apply({"params": {"kernel": identity}}, inputs)


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

    def interceptor(next_fun, args, kwargs, context):
        nonlocal extracting
        kind = _tapped_kind(context)
        key = "/".join(context.module.path)
        if extracting or kind is None or key not in perturbations:
            return next_fun(*args, **kwargs)
        a = args[0]
        if kind == "conv":
            extracting = True  # the patch extractor is a Conv too: let it through
            a = conv_patches(context.module, a)
            extracting = False
        inputs[key] = a.reshape(a.shape[0], -1, a.shape[-1])
        out = next_fun(*args, **kwargs)
        return out + perturbations[key].astype(out.dtype)

    with nn.intercept_methods(interceptor):
        outputs = apply(params, x)
    missing = sorted(set(perturbations) - set(inputs))
    if missing:
        raise ValueError(f"layers {missing} were not called by the model")
    return outputs, inputs
