"""Convolution as patches times a matrix on the CPU, XLA's convolution elsewhere.

:func:`conv_general_dilated` has the signature of
:func:`jax.lax.conv_general_dilated` and returns the same numbers (to float
rounding). On the CPU it gathers each output position's receptive field with
strided slices into a patch matrix ``[N, *out_spatial, K * C]`` (im2col) and
multiplies it by the kernel reshaped to ``[K * C, O]``:

    y[n, p, o] = sum_{k, c} x_pad[n, s * p + d * k, c] * w[k, c, o]

with ``s`` the strides, ``d`` the kernel dilation and ``K`` the window size.
Its gradients are slices, pads and matrix products too, and a ``vmap`` over
the kernel (one network per sweep cell or chain) is a batched matrix product,
where XLA turns a vmapped convolution into a grouped one. XLA:CPU's own
convolution is much slower inside a compiled loop (``lax.scan``, as in every
sampler); benchmarks/README.md keeps the figures. On every other platform
(GPU, TPU) XLA's convolution is the fast one and is used unchanged.

The choice is made with :func:`jax.lax.platform_dependent`, so it is taken
when the program is lowered for the platform it will run on, not from the
default backend at trace time: a program jitted onto CPU arrays while a GPU
is the default backend, or exported for another platform, gets the right
branch, and the compiled program holds only that branch (no conditional).

flax picks the function up through its hook: ``flax.linen.Conv`` and
``flax.nnx.Conv`` both take ``conv_general_dilated=``; :class:`bayesjax.models.Conv`
is ``flax.linen.Conv`` with it set.
"""
from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["conv_general_dilated", "patches_conv"]


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                         precision=None, preferred_element_type=None, out_sharding=None):
    """:func:`jax.lax.conv_general_dilated`, as :func:`patches_conv` on the CPU.

    Same arguments, same result (to float rounding), differentiable and
    vmappable. On the CPU it is :func:`patches_conv`; on other platforms,
    and wherever ``batch_group_count > 1`` or an ``out_sharding`` is given,
    it is XLA's convolution. The platform is resolved at lowering time
    (:func:`jax.lax.platform_dependent`).

    Example:
      >>> x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
      >>> w = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
      >>> dn = ("NHWC", "HWIO", "NHWC")
      >>> y = conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn)
      >>> ref = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn)
      >>> y.shape, bool(jnp.allclose(y, ref, atol=1e-5))
      ((2, 8, 8, 4), True)
    """
    args = (lhs, rhs, window_strides, padding)
    kwargs = dict(lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                  feature_group_count=feature_group_count, batch_group_count=batch_group_count,
                  precision=precision, preferred_element_type=preferred_element_type)

    def xla(lhs, rhs):
        return lax.conv_general_dilated(lhs, rhs, *args[2:], **kwargs, out_sharding=out_sharding)

    if batch_group_count != 1 or out_sharding is not None:
        return xla(lhs, rhs)
    kwargs.pop("batch_group_count")
    return lax.platform_dependent(lhs, rhs, cpu=lambda lhs, rhs: patches_conv(lhs, rhs, *args[2:], **kwargs),
                                  default=xla)


def patches_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                 dimension_numbers=None, feature_group_count=1, precision=None, preferred_element_type=None):
    """A convolution as strided slices into a patch matrix times the reshaped kernel (im2col).

    Arguments as :func:`jax.lax.conv_general_dilated` (without
    ``batch_group_count``), on any platform. ``feature_group_count = G``
    splits the ``K * C`` contraction into G groups (a batched product).

    Example:
      >>> x = jax.random.normal(jax.random.key(0), (2, 3, 9, 9))   # NCHW
      >>> w = jax.random.normal(jax.random.key(1), (6, 3, 3, 3))   # OIHW
      >>> y = patches_conv(x, w, (2, 2), "VALID")
      >>> ref = jax.lax.conv_general_dilated(x, w, (2, 2), "VALID")
      >>> y.shape, bool(jnp.allclose(y, ref, atol=1e-4))
      ((2, 6, 4, 4), True)
    """
    dn = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    x = jnp.transpose(lhs, (dn.lhs_spec[0], *dn.lhs_spec[2:], dn.lhs_spec[1]))  # [N, *S, C]
    w = jnp.transpose(rhs, (*dn.rhs_spec[2:], dn.rhs_spec[1], dn.rhs_spec[0]))  # [*K, C / G, O]
    ndim = x.ndim - 2
    window = w.shape[:ndim]
    lhs_dilation = tuple(lhs_dilation or (1,) * ndim)
    rhs_dilation = tuple(rhs_dilation or (1,) * ndim)
    extent = [(k - 1) * d + 1 for k, d in zip(window, rhs_dilation)]
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(x.shape[1:-1], extent, window_strides, padding)
    x = lax.pad(x, jnp.zeros((), x.dtype),
                [(0, 0, 0)] + [(lo, hi, ld - 1) for (lo, hi), ld in zip(padding, lhs_dilation)] + [(0, 0, 0)])
    out = [(size - e) // s + 1 for size, e, s in zip(x.shape[1:-1], extent, window_strides)]
    columns = []
    for offset in itertools.product(*(range(k) for k in window)):
        start = [o * d for o, d in zip(offset, rhs_dilation)]
        limit = [b + (n - 1) * s + 1 for b, n, s in zip(start, out, window_strides)]
        columns.append(lax.slice(x, (0, *start, 0), (x.shape[0], *limit, x.shape[-1]), (1, *window_strides, 1)))
    patches = jnp.concatenate(columns, axis=-1)  # [N, *out, K * C], offset-major
    groups, num_out = feature_group_count, w.shape[-1]
    if groups == 1:
        y = jnp.matmul(patches, w.reshape(-1, num_out), precision=precision,
                       preferred_element_type=preferred_element_type)
    else:
        patches = patches.reshape(*patches.shape[:-1], math.prod(window), groups, -1)
        w = w.reshape(math.prod(window), w.shape[-2], groups, num_out // groups)
        y = jnp.einsum("...kgc,kcgo->...go", patches, w, precision=precision,
                       preferred_element_type=preferred_element_type).reshape(*patches.shape[:-3], num_out)
    source = (dn.out_spec[0], *dn.out_spec[2:], dn.out_spec[1])  # y's axes, as axes of the output
    return jnp.transpose(y, tuple(int(a) for a in np.argsort(source)))
