"""Standard normal noise shaped like a pytree, at half the cost of ``jax.random.normal`` on a CPU.

Every SG-MCMC step draws one N(0, 1) variate per weight, and on a CPU that
draw costs as much as the minibatch gradient of a small network: XLA:CPU
hashes about one 32-bit word every 4-5 ns, and ``jax.random.normal`` (under
``jax_threefry_partitionable``, JAX's default since 0.5) spends one
Threefry-2x32 evaluation, i.e. two words, on each variate (it keeps
``w0 ^ w1``). :func:`normal_like` keeps both words of each evaluation, as
JAX's original (non-partitionable) scheme did: for a leaf of n entries it
hashes the counter pairs (i, i + n/2), i < n/2, under the leaf's key
(Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3", the
Threefry-2x32-20 hash that JAX uses), turns each word into a uniform u in
(-1, 1) from its top 23 bits and returns sqrt(2) erfinv(u), the transform of
``jax.random.normal``.

Measured on the Fashion-MNIST MLP (89,610 weights, 8 vmapped SGLD chains on
2 CPU cores; benchmarks/README.md, "noise"): 1,960 chain-steps/s against
1,360 with ``jax.random.normal``; without any noise 3,330.

Draws are a pure function of the key (exact under ``jax.vmap`` over keys).
Other key implementations (``rbg``, ``unsafe_rbg``) and float64 leaves go
through ``jax.random.normal`` itself.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.extend.random import threefry_2x32

from bayesjax.types import PRNGKey

_FAST_DTYPES = (jnp.float32, jnp.bfloat16, jnp.float16)


def _typed(key: PRNGKey) -> PRNGKey:
    return key if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else jax.random.wrap_key_data(key)


def threefry_normal(key: PRNGKey, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """``shape`` standard normal variates of ``dtype`` from a Threefry key, both words of each hash used.

    Args:
      key: a typed or raw key of the ``threefry2x32`` implementation.
      shape: the output shape. dtype: float32, bfloat16 or float16 (computed in float32).

    Example:
      >>> z = threefry_normal(jax.random.key(0), (100_000,))
      >>> bool(abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01)
      True
    """
    bits = threefry_2x32(jax.random.key_data(_typed(key)), jax.lax.iota(jnp.uint32, math.prod(shape)))
    # 23 random mantissa bits under exponent 0: a float in [1, 2), minus 1: u in [0, 1) on a 2^-23 grid.
    unit = jax.lax.bitcast_convert_type((bits >> 9) | jnp.uint32(0x3F800000), jnp.float32) - 1.0
    low = jnp.nextafter(jnp.float32(-1.0), jnp.float32(0.0))  # erfinv(-1) = -inf is never reached
    uniform = jnp.maximum(low, unit * (1.0 - low) + low)
    return (jnp.sqrt(jnp.float32(2.0)) * jax.lax.erf_inv(uniform)).reshape(shape).astype(dtype)


def normal_like(key: PRNGKey, tree):
    """A tree of independent N(0, 1) draws with ``tree``'s structure, shapes and dtypes.

    Leaf i draws from ``split(key, num_leaves)[i]`` (the key layout of
    ``optax.tree_utils.tree_random_like``), by :func:`threefry_normal` for a
    Threefry key and a 32-bit or narrower float leaf, else by
    ``jax.random.normal``.

    Example:
      >>> noise = normal_like(jax.random.key(0), {"w": jnp.zeros((3, 2)), "b": jnp.zeros(2)})
      >>> jax.tree.map(jnp.shape, noise)
      {'b': (2,), 'w': (3, 2)}
    """
    key = _typed(key)
    fast = jax.random.key_impl(key) == "threefry2x32"
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))

    def draw(leaf_key, leaf):
        if fast and leaf.dtype in _FAST_DTYPES:
            return threefry_normal(leaf_key, leaf.shape, leaf.dtype)
        return jax.random.normal(leaf_key, leaf.shape, leaf.dtype)

    return jax.tree.unflatten(treedef, [draw(k, leaf) for k, leaf in zip(keys, leaves)])


@jax.custom_batching.custom_vmap
def normal_like_where(active, key: PRNGKey, tree):
    """``normal_like(key, tree)`` where ``active``, zeros elsewhere, with no draw when nothing is active.

    Cyclical SG-MCMC injects no noise in its exploration phases (Zhang et al.
    2020: half of every cycle by default), so its step skips the draw there:
    a ``lax.cond`` on ``active``. Under ``jax.vmap`` over chains a cond with a
    batched predicate would compute both branches; here the chains draw
    (their own noise, zeroed where inactive) when any chain is active and
    skip the draw when none is, which keeps the saving for chains that share
    a schedule. Under a second, outer vmap the cond becomes a select again:
    the draws are then always made, with the same values.

    Example:
      >>> tree = {"w": jnp.zeros(3)}
      >>> normal_like_where(jnp.array(False), jax.random.key(0), tree)["w"]
      Array([0., 0., 0.], dtype=float32)
    """
    return jax.lax.cond(active, lambda: normal_like(key, tree), lambda: jax.tree.map(jnp.zeros_like, tree))


@normal_like_where.def_vmap
def _normal_like_where_vmap(axis_size: int, in_batched, active, key, tree):
    active_batched, key_batched, tree_batched = in_batched
    active = active if active_batched else jnp.broadcast_to(active, (axis_size,))
    tree_axes = jax.tree.map(lambda batched: 0 if batched else None, tree_batched)

    def draw():
        noise = jax.vmap(normal_like, (0 if key_batched else None, tree_axes), axis_size=axis_size)(key, tree)
        return jax.tree.map(lambda n: jnp.where(active.reshape((-1,) + (1,) * (n.ndim - 1)), n, 0), noise)

    def zeros():
        return jax.tree.map(lambda leaf, batched: jnp.zeros(leaf.shape if batched else (axis_size, *leaf.shape),
                                                            leaf.dtype), tree, tree_batched)

    out = jax.lax.cond(jnp.any(active), draw, zeros)
    return out, jax.tree.map(lambda _: True, out)
