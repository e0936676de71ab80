"""The networks bayesjax ships: :func:`mlp`, :func:`cnn` and Fortuin et al.'s :func:`fortuin_cnn`."""
from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax

from bayesjax.checks import check_int
from bayesjax.models.layers import POOLS, Conv
from bayesjax.models.linen import from_linen
from bayesjax.models.model import Model
from bayesjax.types import Array


class _MLP(nn.Module):
    hidden: tuple[int, ...]
    num_outputs: int
    activation: Callable[[Array], Array]
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        x = x.reshape((x.shape[0], -1))
        for width in self.hidden:
            x = self.activation(nn.Dense(width)(x))
            if self.dropout:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_outputs)(x)


class _CNN(nn.Module):
    num_outputs: int
    channels: tuple[int, ...]
    kernel_size: tuple[int, int]
    hidden: int | None
    activation: Callable[[Array], Array]
    pool: str
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        if x.ndim == 3:
            x = x[..., None]
        for features in self.channels:
            x = Conv(features, self.kernel_size, padding="SAME")(x)
            x = POOLS[self.pool](self.activation(x))
        x = x.reshape((x.shape[0], -1))
        if self.hidden is not None:
            x = self.activation(nn.Dense(self.hidden)(x))
        if self.dropout:
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_outputs)(x)


def _with_dropout(module: nn.Module, dropout: float) -> Model:
    """The module as a Model; without dropout it has no training mode (training = evaluation)."""
    model = from_linen(module)
    return model if dropout else model._replace(train_apply=None)


def _check_dropout(dropout: float) -> float:
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a rate in [0, 1), got {dropout}")
    return float(dropout)


def mlp(
    hidden: Sequence[int],
    num_outputs: int,
    activation: Callable[[Array], Array] = jax.nn.relu,
    dropout: float = 0.0,
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
      dropout: the rate of a dropout layer after each hidden activation (in
        training, and at prediction for :func:`bayesjax.mc_dropout`'s
        samples); 0 leaves it out, and the model has no training mode.

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
    dropout = _check_dropout(dropout)
    return _with_dropout(_MLP(hidden=hidden, num_outputs=num_outputs, activation=activation, dropout=dropout), dropout)


def cnn(
    num_outputs: int,
    channels: Sequence[int] = (16, 32),
    kernel_size: int | Sequence[int] = 3,
    hidden: int | None = 64,
    activation: Callable[[Array], Array] = jax.nn.relu,
    pool: str = "avg",
    dropout: float = 0.0,
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
      pool: ``"avg"`` or ``"max"`` 2x2 pooling with stride 2 (:data:`~bayesjax.models.layers.POOLS`).
      dropout: the rate of a dropout layer before the output layer (for
        :func:`bayesjax.mc_dropout`); 0 leaves it out.

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
        dropout=_check_dropout(dropout),
    )
    return _with_dropout(module, dropout)


def fortuin_cnn(num_outputs: int = 10, width: int = 64, dropout: float = 0.0) -> Model:
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
      dropout: the rate of a dropout layer before the head (for :func:`bayesjax.mc_dropout`; not in the paper).

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
    return cnn(num_outputs, channels=(width, width), kernel_size=3, hidden=None, pool="max", dropout=dropout)
