"""Layers that flax models may use: :class:`Conv` on bayesjax's convolution, 2x2 pooling as reshapes."""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax.numpy as jnp

from bayesjax.convolution import conv_general_dilated
from bayesjax.types import Array

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
"""The 2x2 pooling after each convolution of :func:`bayesjax.models.cnn`, by name."""


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


