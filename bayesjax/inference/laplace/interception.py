"""Intercepting the dense and convolution layer calls of a flax model, linen or nnx.

The tapped paths of :mod:`.layers` need to see, inside an opaque
``apply(params, x)``, each call of a dense or convolution layer: its inputs,
its module (for the convolution's settings) and its path in ``params``.
:func:`intercepting` hands every such call to one ``interceptor(call, inputs,
layer)`` whatever the flax API of the model:

* ``flax.linen``: ``nn.Dense`` and ``nn.Conv`` calls through
  ``nn.intercept_methods``; the layer's path is its module path;
* ``flax.nnx``: ``nnx.Linear`` and ``nnx.Conv`` calls. nnx has no method
  interception, so, as ``nnx.tabulate`` does, their ``__call__`` is replaced
  while an interception is active (in any thread; each thread sees only its
  own interceptor, others the original). An nnx layer's path is found from
  its kernel: the layer whose ``kernel`` is the very array at
  ``params[path]["kernel"]`` (``bj.models.from_nnx`` puts the arrays of
  ``params`` into the module it builds). A layer reading a transformed copy
  (e.g. inside ``nnx.vmap`` or ``nnx.scan``) is not intercepted.
"""
from __future__ import annotations

import contextlib
import math
import threading
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

from bayesjax.types import Array, Params

NNX_LAYERS = {nnx.Linear: "dense", nnx.Conv: "conv"}
"""The nnx layer classes intercepted, and their kind."""


class LayerCall(NamedTuple):
    """One call of a dense or convolution layer.

    Attributes:
      kind: ``"dense"`` (linen ``Dense``, nnx ``Linear``) or ``"conv"`` (``Conv``).
      path: the keys of the layer's ``{"kernel", "bias"}`` dict in ``params``.
      module: the layer (a ``flax.linen`` or ``flax.nnx`` module).
    """

    kind: str
    path: tuple
    module: nn.Module | nnx.Module


Interceptor = Callable[[Callable[[Array], Array], Array, LayerCall], Array]
"""``(call, inputs, layer) -> outputs``, where ``call(inputs)`` runs the layer."""


def path_key(path: tuple) -> str:
    """A layer's path as one string, ``"Dense_0"`` or ``"layers/1"``."""
    return "/".join(str(name) for name in path)


def _linen_kind(context) -> str | None:
    if context.method_name != "__call__" or context.module.is_initializing():
        return None
    if isinstance(context.module, nn.Dense):
        return "dense"
    if isinstance(context.module, nn.Conv):
        return "conv"
    return None


class _Active(threading.local):
    """This thread's interceptors (innermost last), each with its ``id(kernel) -> path`` map."""

    def __init__(self):
        self.stack: list[tuple[Interceptor, dict[int, tuple]]] = []


class _Installation:
    """The nnx wrappers, installed while any thread intercepts."""

    def __init__(self):
        self.lock, self.users, self.originals = threading.Lock(), 0, {}

    def enter(self) -> None:
        with self.lock:
            if self.users == 0:
                for cls, kind in NNX_LAYERS.items():
                    self.originals[cls] = cls.__call__
                    cls.__call__ = _nnx_wrapper(cls.__call__, kind)
            self.users += 1

    def exit(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users == 0:
                for cls, original in self.originals.items():
                    cls.__call__ = original


_ACTIVE, _INSTALLATION = _Active(), _Installation()


def _nnx_wrapper(original, kind: str):
    def __call__(self, inputs, *args, **kwargs):
        if not _ACTIVE.stack:
            return original(self, inputs, *args, **kwargs)
        interceptor, paths = _ACTIVE.stack[-1]
        path = paths.get(id(self.kernel.get_value()))
        if path is None:
            return original(self, inputs, *args, **kwargs)
        return interceptor(lambda a: original(self, a, *args, **kwargs), inputs, LayerCall(kind, path, self))

    return __call__


def _kernel_paths(params: Params) -> dict[int, tuple]:
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    keys = [(tuple(getattr(entry, "key", entry) for entry in path), leaf) for path, leaf in leaves]
    return {id(leaf): path[:-1] for path, leaf in keys if path and path[-1] == "kernel"}


@contextlib.contextmanager
def intercepting(interceptor: Interceptor, params: Params):
    """Within the block, every dense / conv layer call of a model applied to ``params`` goes to ``interceptor``.

    Args:
      interceptor: ``(call, inputs, layer) -> outputs``; ``call(inputs)`` runs
        the layer (on the same or other inputs).
      params: the parameters the model is applied to in the block, the very
        arrays (nnx layers are found by their kernel).
    """

    def linen_interceptor(next_fun, args, kwargs, context):
        kind = _linen_kind(context)
        if kind is None or not args:
            return next_fun(*args, **kwargs)
        layer = LayerCall(kind, tuple(context.module.path), context.module)
        return interceptor(lambda a: next_fun(a, *args[1:], **kwargs), args[0], layer)

    _INSTALLATION.enter()
    _ACTIVE.stack.append((interceptor, _kernel_paths(params)))
    try:
        with nn.intercept_methods(linen_interceptor):
            yield
    finally:
        _ACTIVE.stack.pop()
        _INSTALLATION.exit()


def conv_patches(module: nn.Conv | nnx.Conv, inputs: Array) -> Array:
    """The im2col patches of a flax ``Conv`` call: ``[B, *out_spatial, prod(window) c_in]``.

    ``module`` applied with an identity kernel (``prod(window) c_in`` output
    features, no bias, ``Precision.HIGHEST`` so nothing is rounded): patch
    entry ``k`` is the input under kernel entry ``k`` of ``kernel.reshape(-1,
    c_out)``, for exactly the padding, strides and dilations of the layer.
    """
    size = module.kernel_size
    window = ((size,) if isinstance(size, int) else tuple(size)) + (inputs.shape[-1],)
    size = math.prod(window)
    identity = jnp.eye(size, dtype=inputs.dtype).reshape(window + (size,))
    if isinstance(module, nn.Conv):
        extractor = module.clone(parent=None, features=size, use_bias=False, mask=None,
                                 precision=jax.lax.Precision.HIGHEST)
        return extractor.apply({"params": {"kernel": identity}}, inputs)
    extractor = nnx.Conv(
        inputs.shape[-1], size, module.kernel_size, module.strides, padding=module.padding,
        input_dilation=module.input_dilation, kernel_dilation=module.kernel_dilation, use_bias=False,
        dtype=module.dtype, param_dtype=inputs.dtype, precision=jax.lax.Precision.HIGHEST,
        conv_general_dilated=module.conv_general_dilated, promote_dtype=module.promote_dtype,
        kernel_init=lambda *_: identity, rngs=nnx.Rngs(0),
    )
    return extractor(inputs)  # its kernel is not in params: not intercepted
