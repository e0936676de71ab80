"""Pytrees packed into one array per dtype.

A ``lax.scan`` stacks each output leaf with its own in-place update per step;
on XLA:CPU every such kernel costs about a microsecond, which is visible next
to a small model's step. Packing a step's diagnostics into one array per dtype
before they leave the loop body makes that one update.
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp


def ravel_by_dtype(tree, num_batch_axes: int = 0) -> tuple[tuple[jax.Array, ...], Callable]:
    """Concatenates the leaves of each dtype along one new last axis.

    Args:
      tree: a pytree of arrays sharing ``num_batch_axes`` leading axes.
      num_batch_axes: leading axes kept as they are (e.g. a chain axis).

    Returns:
      ``(packed, unravel)``: one array ``[*batch, k]`` per dtype (in order of
      first appearance), and the inverse, which also accepts the packed arrays
      with extra leading axes (e.g. stacked by a scan) and puts them in front
      of every leaf.
    """
    leaves, treedef = jax.tree.flatten(tree)
    groups: dict = {}
    for index, leaf in enumerate(leaves):
        groups.setdefault(jnp.result_type(leaf), []).append(index)
    shapes = [jnp.shape(leaf) for leaf in leaves]
    packed = tuple(
        jnp.concatenate([jnp.reshape(leaves[i], shapes[i][:num_batch_axes] + (-1,)) for i in members], axis=-1)
        for members in groups.values()
    )

    def unravel(arrays):
        out = [None] * len(leaves)
        for members, array in zip(groups.values(), arrays):
            extra = array.shape[: array.ndim - num_batch_axes - 1]
            offset = 0
            for i in members:
                size = math.prod(shapes[i][num_batch_axes:])
                out[i] = jnp.reshape(array[..., offset: offset + size], extra + shapes[i])
                offset += size
        return jax.tree.unflatten(treedef, out)

    return packed, unravel
