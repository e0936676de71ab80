"""Data augmentation inside jit: ``(key, x_batch) -> x_batch``.

The cold-posterior effect depends on augmentation (Wenzel et al. 2020;
Izmailov et al. 2021; Kapoor et al. 2022), so sweeps run with it on and off.
Pass one of these to ``bj.run(..., augment=...)``: it transforms each
chain's minibatch of inputs inside the compiled loop and leaves the labels
as they are.

The standard augmentation of 28x28 and 32x32 image benchmarks (Wenzel et al.
2020; Izmailov et al. 2021), a random crop after padding by 2 pixels and a
left-right flip with probability 1/2 (torchvision's ``RandomCrop(28,
padding=2)`` and ``RandomHorizontalFlip()``), is :func:`standard_image`.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from bayesjax.checks import check_int
from bayesjax.types import Array, PRNGKey

Augment = Callable[[PRNGKey, Array], Array]


def random_shift(max_shift: int = 1, fill: float = 0.0) -> Augment:
    """A random crop after padding by ``max_shift``: each image shifted by up to ``max_shift`` pixels per axis.

    Each example is padded with ``fill`` by ``max_shift`` on both sides of
    every spatial axis, then cropped back to its size at an offset drawn
    uniformly from ``{0, ..., 2 max_shift}`` per axis, independently per
    example: ``out[i] = x[i + o - max_shift]`` (``fill`` outside ``x``).
    This is torchvision's ``RandomCrop(size, padding=max_shift)``.

    Works on images ``[B, H, W, C]`` and ``[B, H, W]``, and on 1-D signals
    ``[B, L]`` (shifted along L). The default ``fill`` 0 is the training mean
    after bayesjax's standardization; torchvision pads raw pixels with black,
    which after standardization is ``-mean / std`` (the training minimum for
    images with black pixels, as Fashion-MNIST).

    Args:
      max_shift: padding and largest shift, in pixels.
      fill: value of the padding.

    Example:
      >>> x = jnp.arange(5.0)[None].repeat(3, 0)
      >>> random_shift(1, fill=-1.0)(jax.random.key(0), x).shape
      (3, 5)
    """
    max_shift = check_int("max_shift", max_shift, minimum=0)
    fill = float(fill)

    def shift_one(key, x):
        spatial = x.ndim - 1 if x.ndim == 3 else x.ndim  # [H, W, C] -> 2 spatial axes; [L] -> 1
        offsets = jax.random.randint(key, (spatial,), 0, 2 * max_shift + 1)
        pad = [(max_shift, max_shift)] * spatial + [(0, 0)] * (x.ndim - spatial)
        start = tuple(offsets) + (0,) * (x.ndim - spatial)
        return jax.lax.dynamic_slice(jnp.pad(x, pad, constant_values=fill), start, x.shape)

    def augment(key: PRNGKey, x: Array) -> Array:
        return jax.vmap(shift_one)(jax.random.split(key, x.shape[0]), x)

    return augment


def random_flip() -> Augment:
    """Mirrors each image left-right (along W) with probability 1/2, independently per example.

    For images ``[B, H, W, C]`` or ``[B, H, W]``. This is torchvision's
    ``RandomHorizontalFlip()``.
    """

    def augment(key: PRNGKey, x: Array) -> Array:
        flip = jax.random.bernoulli(key, 0.5, (x.shape[0],) + (1,) * (x.ndim - 1))
        return jnp.where(flip, jnp.flip(x, axis=2), x)

    return augment


def compose(*augments: Augment) -> Augment:
    """Applies ``augments`` in order, each with its own key."""

    def augment(key: PRNGKey, x: Array) -> Array:
        for k, fn in zip(jax.random.split(key, len(augments)), augments):
            x = fn(k, x)
        return x

    return augment


def standard_image(padding: int = 2, fill: float = 0.0) -> Augment:
    """The standard image augmentation: a random crop after padding, then a random left-right flip.

    ``compose(random_shift(padding, fill), random_flip())``: torchvision's
    ``RandomCrop(size, padding=padding)`` followed by
    ``RandomHorizontalFlip()``, the augmentation of the cold-posterior
    experiments (Wenzel et al. 2020, "How Good is the Bayes Posterior in
    Deep Neural Networks Really?"; Izmailov et al. 2021).

    Args:
      padding: pixels of padding (and largest shift) per side; 2 for 28x28 images.
      fill: value of the padding (see :func:`random_shift`).

    Example:
      >>> x = jax.random.normal(jax.random.key(0), (4, 28, 28, 1))
      >>> jax.jit(standard_image(2))(jax.random.key(1), x).shape
      (4, 28, 28, 1)
    """
    return compose(random_shift(padding, fill), random_flip())
