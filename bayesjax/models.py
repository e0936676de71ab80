"""Models as pairs of pure functions.

A :class:`Model` is ``init(key, x_example) -> params`` and
``apply(params, x) -> outputs``, where ``params`` is a plain nested ``dict`` of
arrays (no flax ``FrozenDict``, no ``{"params": ...}`` wrapper) so priors,
samplers and optimizers see the weights directly. ``apply`` is pure: it jits,
and it vmaps over a leading sample axis of stacked parameters::

    model = bj.models.mlp([50, 50], num_outputs=10)
    params = model.init(key, x[:1])
    outputs = jax.vmap(model.apply, (0, None))(samples, x)   # [S, B, 10]

Convolutions run through :func:`bayesjax.convolution.conv_general_dilated`
(patches times a matrix on the CPU, XLA's convolution elsewhere); use
:class:`Conv` in place of ``flax.linen.Conv`` to give a model of your own the
same (``flax.nnx.Conv`` takes the function as ``conv_general_dilated=``).

``apply`` checks, at trace time and so at no run-time cost under ``jit``, that
the parameters have the structure and shapes the model expects for ``x``; a
mismatch raises a ``ValueError`` that names the offending leaf.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from bayesjax.checks import check_int
from bayesjax.convolution import conv_general_dilated
from bayesjax.types import Array, Params, PRNGKey

__all__ = ["Conv", "Model", "avg_pool_2x2", "cnn", "fortuin_cnn", "from_flax", "max_pool_2x2", "mlp"]


def _windows_2x2(x: Array) -> Array:
    """``[B, H, W, C] -> [B, H // 2, 2, W // 2, 2, C]``: the 2x2 windows of stride 2 (a last odd row or column dropped)."""
    b, h, w, c = x.shape
    return x[:, : h // 2 * 2, : w // 2 * 2].reshape(b, h // 2, 2, w // 2, 2, c)


def max_pool_2x2(x: Array) -> Array:
    """2x2 max-pooling with stride 2 of images ``[B, H, W, C]`` as a reshape and a max.

    Equals ``flax.linen.max_pool(x, (2, 2), strides=(2, 2))`` (VALID). Its
    gradient is a reshape and a select, where the gradient of flax's
    ``reduce_window`` is a select-and-scatter, slower on the CPU
    (benchmarks/README.md). Where a window ties, the gradient is shared among
    the tied entries rather than given to the first; after a ReLU the tied
    entries are zeros, whose ReLU gradient is 0 either way.

    Example:
      >>> x = jax.random.normal(jax.random.key(0), (2, 6, 5, 3))
      >>> bool(jnp.array_equal(max_pool_2x2(x), nn.max_pool(x, (2, 2), strides=(2, 2))))
      True
    """
    return jnp.max(_windows_2x2(x), axis=(2, 4))


def avg_pool_2x2(x: Array) -> Array:
    """2x2 average-pooling with stride 2 of images ``[B, H, W, C]`` as a reshape and a mean.

    Equals ``flax.linen.avg_pool(x, (2, 2), strides=(2, 2))`` (VALID) to float
    rounding; its gradient is a broadcast.

    Example:
      >>> x = jax.random.normal(jax.random.key(0), (2, 6, 5, 3))
      >>> bool(jnp.allclose(avg_pool_2x2(x), nn.avg_pool(x, (2, 2), strides=(2, 2)), atol=1e-6))
      True
    """
    return jnp.mean(_windows_2x2(x), axis=(2, 4))


POOLS = {"avg": avg_pool_2x2, "max": max_pool_2x2}
"""The 2x2 pooling after each convolution of :func:`cnn`, by name."""


class Conv(nn.Conv):
    """``flax.linen.Conv`` computed by :func:`bayesjax.convolution.conv_general_dilated`.

    A drop-in for ``nn.Conv`` (same fields, parameters and outputs to float
    rounding) whose convolution is patches times a matrix on the CPU and
    XLA's convolution on other platforms. Layers are auto-named ``Conv_0,
    Conv_1, ...`` as with ``nn.Conv``.

    Example:
      >>> layer = Conv(4, (3, 3))
      >>> x = jnp.ones((2, 8, 8, 1))
      >>> variables = layer.init(jax.random.key(0), x)
      >>> ref = nn.Conv(4, (3, 3)).apply(variables, x)
      >>> bool(jnp.allclose(layer.apply(variables, x), ref, atol=1e-5))
      True
    """

    conv_general_dilated: Callable[..., Array] | None = conv_general_dilated


class Model(NamedTuple):
    """A neural network as two pure functions.

    Attributes:
      init: ``(key, x_example) -> params``; ``x_example`` is a batch of inputs
        ``[B, ...]`` (one example suffices) fixing the input feature shape.
      apply: ``(params, x) -> outputs`` of shape ``[B, num_outputs]``.

    Example:
      >>> model = mlp([8], num_outputs=2)
      >>> params = model.init(jax.random.key(0), jnp.zeros((1, 3)))
      >>> model.apply(params, jnp.zeros((5, 3))).shape
      (5, 2)
    """

    init: Callable[[PRNGKey, Array], Params]
    apply: Callable[[Params, Array], Array]


def from_flax(module: nn.Module) -> Model:
    """Wraps a ``flax.linen`` module as a :class:`Model`.

    ``init`` returns ``module.init(key, x)["params"]`` as a plain nested dict,
    and ``apply(params, x)`` is ``module.apply({"params": params}, x)``. Only
    modules whose sole variable collection is ``"params"`` are supported
    (no ``batch_stats``: a Bayesian posterior over weights needs a pure
    function of the weights).

    Args:
      module: a linen module mapping a batch ``x`` to outputs.

    Returns:
      The :class:`Model`.

    Raises:
      ValueError: from ``init`` if the module creates collections other than
        ``"params"``; from ``apply`` if ``params`` do not match the structure
        or shapes the module expects for ``x`` (the message names the leaf).

    Example:
      >>> class Affine(nn.Module):
      ...     @nn.compact
      ...     def __call__(self, x):
      ...         return nn.Dense(1)(x)
      >>> model = from_flax(Affine())
      >>> params = model.init(jax.random.key(0), jnp.zeros((1, 4)))
      >>> params["Dense_0"]["kernel"].shape
      (4, 1)
    """
    expected_cache: dict[Any, Params] = {}

    def init(key: PRNGKey, x: Array) -> Params:
        variables = module.init(key, jnp.asarray(x))
        extra = sorted(set(variables) - {"params"})
        if extra:
            raise ValueError(
                f"from_flax supports modules whose only variable collection is "
                f"'params'; {type(module).__name__} also creates {extra}."
            )
        return _to_dict(variables.get("params", {}))

    def expected_params(x: Array) -> Params:
        cache_key = (tuple(x.shape), jnp.dtype(x.dtype).name)
        if cache_key not in expected_cache:
            spec = jax.ShapeDtypeStruct(x.shape, x.dtype)
            expected_cache[cache_key] = jax.eval_shape(
                lambda x_: module.init(jax.random.key(0), x_).get("params", {}), spec
            )
        return expected_cache[cache_key]

    def apply(params: Params, x: Array) -> Array:
        x = jnp.asarray(x)
        _check_params(expected_params(x), params, x.shape)
        return module.apply({"params": params}, x)

    return Model(init=init, apply=apply)


class _MLP(nn.Module):
    hidden: tuple[int, ...]
    num_outputs: int
    activation: Callable[[Array], Array]

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = x.reshape((x.shape[0], -1))
        for width in self.hidden:
            x = self.activation(nn.Dense(width)(x))
        return nn.Dense(self.num_outputs)(x)


class _CNN(nn.Module):
    num_outputs: int
    channels: tuple[int, ...]
    kernel_size: tuple[int, int]
    hidden: int | None
    activation: Callable[[Array], Array]
    pool: str

    @nn.compact
    def __call__(self, x: Array) -> Array:
        if x.ndim == 3:
            x = x[..., None]
        for features in self.channels:
            x = Conv(features, self.kernel_size, padding="SAME")(x)
            x = POOLS[self.pool](self.activation(x))
        x = x.reshape((x.shape[0], -1))
        if self.hidden is not None:
            x = self.activation(nn.Dense(self.hidden)(x))
        return nn.Dense(self.num_outputs)(x)


def mlp(
    hidden: Sequence[int],
    num_outputs: int,
    activation: Callable[[Array], Array] = jax.nn.relu,
) -> Model:
    """A fully connected network.

    Inputs ``[B, ...]`` are flattened to ``[B, D]``, then pass through
    ``Dense -> activation`` for each hidden width and a final linear
    ``Dense(num_outputs)``. Layers are named ``Dense_0, Dense_1, ...``, each
    with ``kernel [fan_in, fan_out]`` and ``bias [fan_out]``.

    Args:
      hidden: widths of the hidden layers (may be empty: a linear model).
      num_outputs: width of the output layer (classes, or regression outputs).
      activation: elementwise nonlinearity after each hidden layer.

    Returns:
      The :class:`Model`.

    Example:
      >>> model = mlp([50, 50], num_outputs=10)
      >>> params = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
      >>> params["Dense_0"]["kernel"].shape
      (64, 50)
    """
    hidden = tuple(check_int("hidden width", h) for h in hidden)
    num_outputs = check_int("num_outputs", num_outputs)
    return from_flax(_MLP(hidden=hidden, num_outputs=num_outputs, activation=activation))


def cnn(
    num_outputs: int,
    channels: Sequence[int] = (16, 32),
    kernel_size: int | Sequence[int] = 3,
    hidden: int | None = 64,
    activation: Callable[[Array], Array] = jax.nn.relu,
    pool: str = "avg",
) -> Model:
    """A small convolutional network for images ``[B, H, W, C]``.

    Each entry of ``channels`` adds ``Conv(kernel_size, SAME) -> activation ->
    pool 2x2`` (8x8 digits: 8 -> 4 -> 2; 28x28 images: 28 -> 14 -> 7),
    followed by flatten, ``Dense(hidden) -> activation`` unless ``hidden`` is
    None, and a linear ``Dense(num_outputs)``. Inputs ``[B, H, W]`` gain a
    channel axis. Layers are ``Conv_0, Conv_1, ...`` (:class:`Conv`,
    ``kernel [kh, kw, cin, cout]``) and ``Dense_0`` (and ``Dense_1`` with a
    hidden layer).

    Args:
      num_outputs: width of the output layer.
      channels: output channels of each convolution.
      kernel_size: an int ``k`` (a ``k x k`` window) or a pair ``(kh, kw)``.
      hidden: width of the dense hidden layer, or None for a linear head on
        the flattened features.
      activation: elementwise nonlinearity.
      pool: ``"avg"`` or ``"max"`` 2x2 pooling with stride 2 (:data:`POOLS`).

    Returns:
      The :class:`Model`.

    Raises:
      ValueError: non-positive sizes, a kernel that is not 2-D, an unknown ``pool``.

    Example:
      >>> model = cnn(num_outputs=10)
      >>> params = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
      >>> params["Dense_0"]["kernel"].shape   # 2 * 2 * 32
      (128, 64)
    """
    if isinstance(kernel_size, int):
        kernel_size = (kernel_size, kernel_size)
    kernel_size = tuple(check_int("kernel_size", k) for k in kernel_size)
    if len(kernel_size) != 2:
        raise ValueError(f"kernel_size must be an int or a pair, got {kernel_size}.")
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {sorted(POOLS)}, got {pool!r}.")
    module = _CNN(
        num_outputs=check_int("num_outputs", num_outputs),
        channels=tuple(check_int("channels", c) for c in channels),
        kernel_size=kernel_size,
        hidden=None if hidden is None else check_int("hidden", hidden),
        activation=activation,
        pool=pool,
    )
    return from_flax(module)


def fortuin_cnn(num_outputs: int = 10, width: int = 64) -> Model:
    """The convolutional network of Fortuin et al. 2021's MNIST and Fashion-MNIST experiments.

    Two ``3 x 3`` convolutions of ``width`` channels (zero padding 1, i.e.
    SAME), each followed by ReLU and ``2 x 2`` max-pooling, then a linear
    layer on the flattened features: on 28x28 images ``28 -> 14 -> 7``, a
    head of ``7 * 7 * width -> num_outputs``. This is
    ``cnn(num_outputs, channels=(width, width), kernel_size=3, hidden=None,
    pool="max")``; it is ``ClassificationConvNet`` with ``depth=3`` and
    ``width=64`` of ratschlab/bnn_priors (Fortuin, Garriga-Alonso, Ober,
    Wenzel, Ratsch, Turner, van der Wilk & Aitchison 2021, "Bayesian Neural
    Network Priors Revisited", ICLR 2022). 68,938 weights on 28x28x1 inputs; one
    forward pass costs about 15 MFLOP per 28x28 example.

    Args:
      num_outputs: classes.
      width: channels of both convolutions.

    Returns:
      The :class:`Model`, layers ``Conv_0 [3, 3, C, width]``,
      ``Conv_1 [3, 3, width, width]`` and ``Dense_0``.

    Example:
      >>> model = fortuin_cnn(10)
      >>> params = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
      >>> params["Dense_0"]["kernel"].shape   # 7 * 7 * 64
      (3136, 10)
    """
    width = check_int("width", width)
    return cnn(num_outputs, channels=(width, width), kernel_size=3, hidden=None, pool="max")


def _to_dict(tree: Any) -> Any:
    """Plain nested dicts from any (possibly frozen) mapping."""
    if isinstance(tree, Mapping):
        return {k: _to_dict(v) for k, v in tree.items()}
    return tree


def _path_str(path: tuple) -> str:
    parts = []
    for entry in path:
        for attr in ("key", "name", "idx"):
            if hasattr(entry, attr):
                parts.append(str(getattr(entry, attr)))
                break
        else:
            parts.append(str(entry))
    return "/".join(parts)


def _shapes_by_path(tree: Params) -> dict[str, tuple[int, ...]]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {_path_str(path): tuple(jnp.shape(leaf)) for path, leaf in leaves}


def _check_params(expected: Params, given: Params, x_shape: tuple[int, ...]) -> None:
    """Raises ValueError naming the first leaf whose path or shape differs.

    Runs in Python on static shapes, so it costs nothing inside ``jit``; under
    ``vmap`` the shapes seen are per-sample, so stacked parameters pass.
    """
    want, got = _shapes_by_path(expected), _shapes_by_path(given)
    missing = [p for p in want if p not in got]
    unexpected = [p for p in got if p not in want]
    if missing or unexpected:
        hint = ""
        if any(p.startswith("params/") for p in unexpected):
            hint = " Pass the inner dict, not flax's {'params': ...} wrapper."
        raise ValueError(
            f"params do not match the model for inputs of shape {tuple(x_shape)}: "
            f"missing leaves {missing}, unexpected leaves {unexpected}.{hint}"
        )
    for path, shape in want.items():
        if got[path] != shape:
            raise ValueError(
                f"params leaf {path!r} has shape {got[path]} but the model expects "
                f"{shape} for inputs of shape {tuple(x_shape)}."
            )
