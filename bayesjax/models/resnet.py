"""ResNet-20 for 28x28 and 32x32 images (He et al. 2016's CIFAR network) with BatchNorm or filter response normalization."""
from __future__ import annotations

import flax.linen as nn
import jax

from bayesjax.checks import check_int
from bayesjax.models.flax_adapter import from_flax
from bayesjax.models.layers import Conv
from bayesjax.models.model import Model
from bayesjax.models.normalization import FilterResponseNorm
from bayesjax.types import Array

NORMS = ("frn", "batch")
"""The normalizations of :func:`resnet20`: filter response normalization (with TLU) or BatchNorm."""

BATCH_NORM_MOMENTUM = 0.9
"""Decay of BatchNorm's running averages, as in Izmailov et al. (2021)'s ResNet-20 (flax's default is 0.99)."""

BATCH_NORM_EPSILON = 1e-5
"""BatchNorm's epsilon, as in Izmailov et al. (2021) and flax's default."""

_HE_NORMAL = nn.initializers.he_normal()  # truncated normal, variance 2 / fan_in, as the references


def _normalize(norm: str, x: Array, train: bool) -> Array:
    if norm == "frn":
        return FilterResponseNorm()(x)
    return nn.BatchNorm(use_running_average=not train, momentum=BATCH_NORM_MOMENTUM,
                        epsilon=BATCH_NORM_EPSILON)(x)


class _ConvNorm(nn.Module):
    """``Conv(SAME, bias) -> normalization``: the unit every convolution of the network sits in."""

    features: int
    kernel: int
    stride: int
    norm: str

    @nn.compact
    def __call__(self, x: Array, train: bool) -> Array:
        x = Conv(self.features, (self.kernel, self.kernel), strides=self.stride, padding="SAME",
                 kernel_init=_HE_NORMAL)(x)
        return _normalize(self.norm, x, train)


class _BasicBlock(nn.Module):
    """``relu(shortcut(x) + ConvNorm(relu(ConvNorm(x))))``; the shortcut projects (1x1 conv + norm) when it strides."""

    features: int
    stride: int
    norm: str

    @nn.compact
    def __call__(self, x: Array, train: bool) -> Array:
        y = jax.nn.relu(_ConvNorm(self.features, 3, self.stride, self.norm, name="ConvNorm_0")(x, train))
        y = _ConvNorm(self.features, 3, 1, self.norm, name="ConvNorm_1")(y, train)
        if self.stride != 1:
            x = _ConvNorm(self.features, 1, self.stride, self.norm, name="Shortcut")(x, train)
        return jax.nn.relu(x + y)


def _resnet20(x: Array, num_outputs: int, width: int, norm: str, train: bool) -> Array:
    """The forward pass, inside the ``nn.compact`` ``__call__`` of the module that owns its layers."""
    if x.ndim == 3:
        x = x[..., None]
    x = jax.nn.relu(_ConvNorm(width, 3, 1, norm, name="Stem")(x, train))
    for stage in range(3):
        for block in range(3):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _BasicBlock(width * 2**stage, stride, norm, name=f"Block_{stage + 1}_{block}")(x, train)
    x = x.mean(axis=(1, 2))  # global average pooling
    return nn.Dense(num_outputs, kernel_init=_HE_NORMAL, name="Dense_0")(x)


class ResNet20FRN(nn.Module):
    """The linen module of ``resnet20(norm="frn")``: ``__call__(x)``, weights only.

    Attributes:
      num_outputs: width of the linear head.
      width: channels of the first stage (the second and third have 2x and 4x).
    """

    num_outputs: int = 10
    width: int = 16

    @nn.compact
    def __call__(self, x: Array) -> Array:
        return _resnet20(x, self.num_outputs, self.width, "frn", train=False)


class ResNet20BatchNorm(nn.Module):
    """The linen module of ``resnet20(norm="batch")``: ``__call__(x, train=False)``.

    ``train=True`` normalizes with the batch's statistics and updates the
    running averages in the ``batch_stats`` collection (which ``apply`` must
    mark mutable); ``train=False`` normalizes with the running averages.

    Attributes:
      num_outputs: width of the linear head.
      width: channels of the first stage (the second and third have 2x and 4x).
    """

    num_outputs: int = 10
    width: int = 16

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        return _resnet20(x, self.num_outputs, self.width, "batch", train)


def resnet20(num_outputs: int = 10, norm: str = "frn", width: int = 16) -> Model:
    """ResNet-20 (He et al. 2016, "Deep residual learning for image recognition", Sec. 4.2) for images ``[B, H, W, C]``.

    A 3x3 convolution of ``width`` channels, then three stages of three basic
    blocks with ``width``, ``2 width`` and ``4 width`` channels (16/32/64 by
    default), global average pooling and a linear ``Dense(num_outputs)``:
    19 convolutions and one dense layer on the main path. Each convolution
    (3x3, SAME padding, with bias, He-normal initialization) is followed by
    the normalization; a block computes ``relu(s(x) + N(W2 relu(N(W1 x))))``.
    The first block of stages 2 and 3 halves the resolution (stride 2) and
    its shortcut ``s`` is a projection, a strided 1x1 convolution followed by
    the normalization, as in the ResNet-20 of Wenzel et al. (2020)'s and
    Izmailov et al. (2021)'s code (He et al.'s option B; their own CIFAR
    networks padded the identity with zeros, option A); otherwise ``s`` is
    the identity. On 28x28
    images the stages see 28, 14 and 7 pixels, on 32x32 images 32, 16 and 8.
    Inputs ``[B, H, W]`` gain a channel axis.

    With ``norm="frn"`` each normalization is :class:`FilterResponseNorm`
    (FRN + TLU) and the model is a pure function of its parameters: every
    method runs on it; this is Izmailov et al.'s ResNet-20-FRN. With
    ``norm="batch"`` it is ``nn.BatchNorm`` (momentum 0.9, epsilon 1e-5) and
    the module carries ``batch_stats``.

    Parameters: ``Stem`` (``Conv_0``, then ``FilterResponseNorm_0`` or
    ``BatchNorm_0``), ``Block_<stage>_<block>`` for stages 1-3 and blocks 0-2
    (``ConvNorm_0``, ``ConvNorm_1`` and, where the block strides,
    ``Shortcut``), and the head ``Dense_0``. With ``width=16`` on 32x32x3
    images: 273,258 weights with BatchNorm (He et al.'s "0.27M"; plus 1,568
    running statistics), 274,042 with FRN (its extra ``tau`` per channel).

    Args:
      num_outputs: classes.
      norm: ``"frn"`` or ``"batch"``.
      width: channels of the first stage.

    Returns:
      The :class:`~bayesjax.models.model.Model` of :class:`ResNet20FRN` or
      :class:`ResNet20BatchNorm` (:func:`~bayesjax.models.flax_adapter.from_flax`).

    Raises:
      ValueError: an unknown ``norm``, non-positive sizes.

    Example:
      >>> model = resnet20(num_outputs=10, width=4)
      >>> params = jax.eval_shape(model.init, key, jnp.zeros((1, 28, 28, 1)))   # shapes only: no compile
      >>> params["Block_3_0"]["Shortcut"]["Conv_0"]["kernel"].shape   # 1x1, 8 -> 16 channels
      (1, 1, 8, 16)
      >>> jax.eval_shape(model.apply, params, jnp.zeros((5, 28, 28))).shape
      (5, 10)
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}.")
    module = (ResNet20FRN if norm == "frn" else ResNet20BatchNorm)(
        num_outputs=check_int("num_outputs", num_outputs), width=check_int("width", width))
    return from_flax(module)
