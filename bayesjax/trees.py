"""Small pytree utilities shared by the methods: sizes, copies, finiteness, dtypes."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from bayesjax.types import Array, Params


def num_params(tree) -> int:
    """Scalar entries over every leaf of ``tree`` (arrays or ``jax.ShapeDtypeStruct``s)."""
    return sum(math.prod(jnp.shape(leaf)) for leaf in jax.tree.leaves(tree))


def repeat_params(params: Params, num_samples: int) -> Params:
    """``num_samples`` copies of ``params`` stacked on a new leading axis."""
    return jax.tree.map(
        lambda leaf: jnp.broadcast_to(leaf, (num_samples,) + jnp.shape(leaf)), params
    )


def all_finite(tree) -> Array:
    """Whether every entry of every leaf of ``tree`` is finite (a scalar bool).

    One reduction over the concatenated leaves, which XLA fuses into one
    kernel instead of one per leaf.
    """
    return jnp.all(jnp.isfinite(jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)])))


def cast_like(tree, like):
    """``tree`` with each leaf cast to the dtype of the matching leaf of ``like``, strongly typed.

    A scan carry must keep its type from step to step; values that come back
    from library code (blackjax's kernels) weakly typed or promoted are cast
    back with this. ``cast_like(tree, tree)`` only drops weak types.
    """
    return jax.tree.map(lambda leaf, ref: jnp.asarray(leaf).astype(jnp.result_type(ref)), tree, like)
