"""Data augmentation inside jit: ``(key, x_batch) -> x_batch``.

The cold-posterior effect depends on augmentation (Wenzel et al. 2020;
Izmailov et al. 2021; Kapoor et al. 2022), so sweeps run with it on and off.
Pass one of these to ``bj.run(..., augment=...)``.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from bayesjax.checks import check_int
from bayesjax.types import Array, PRNGKey

Augment = Callable[[PRNGKey, Array], Array]


def random_shift(max_shift: int = 1) -> Augment:
    """Shifts each image by up to ``max_shift`` pixels per spatial axis, filling with zeros.

    Works on images ``[B, H, W, C]`` and on 1-D signals ``[B, L]`` (shifted along L).
    Zero is the training mean after bayesjax's standardization.
    """
    max_shift = check_int("max_shift", max_shift, minimum=0)

    def shift_one(key, x):
        spatial = x.ndim - 1 if x.ndim == 3 else x.ndim  # [H, W, C] -> 2 spatial axes; [L] -> 1
        offsets = jax.random.randint(key, (spatial,), 0, 2 * max_shift + 1)
        pad = [(max_shift, max_shift)] * spatial + [(0, 0)] * (x.ndim - spatial)
        start = tuple(offsets) + (0,) * (x.ndim - spatial)
        return jax.lax.dynamic_slice(jnp.pad(x, pad), start, x.shape)

    def augment(key: PRNGKey, x: Array) -> Array:
        return jax.vmap(shift_one)(jax.random.split(key, x.shape[0]), x)

    return augment


def random_flip() -> Augment:
    """Mirrors each image left-right with probability 1/2 (images ``[B, H, W, C]``)."""

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
