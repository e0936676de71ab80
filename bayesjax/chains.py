"""Many independent chains of one method as one :class:`~bayesjax.base.Algorithm`.

``bj.run(..., num_chains=C)`` vmaps chains itself (with a minibatch stream per
chain, so it refuses an algorithm wrapped here: its ``num_chains`` is declared); :func:`vmap_chains` is the
same wrapper for loops a user writes, and :func:`pooled_sample` the draw from
stacked chains that both share.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from bayesjax.base import Algorithm
from bayesjax.checks import check_int
from bayesjax.types import Batch, Info, Params, PRNGKey, State


def pooled_sample(algorithm: Algorithm, key: PRNGKey, state: State, num_samples: int) -> Params:
    """Draws from chains stacked on a leading axis (jittable; no divergence handling).

    Stratified over chains: draw i comes from chain order[i % C], so chains
    share the draws evenly.
    """
    num_chains = jax.tree.leaves(state)[0].shape[0]
    order_key, draw_key = jax.random.split(key)
    per_chain = -(-num_samples // num_chains)
    draws = jax.vmap(algorithm.sample, (0, 0, None))(jax.random.split(draw_key, num_chains), state, per_chain)
    draw = jnp.arange(num_samples)
    chain = jax.random.permutation(order_key, num_chains)[draw % num_chains]
    return jax.tree.map(lambda d: d[chain, draw // num_chains], draws)


@functools.lru_cache(maxsize=256)
def vmap_chains(algorithm: Algorithm, num_chains: int) -> Algorithm:
    """``num_chains`` independent chains of ``algorithm``, as one :class:`Algorithm`.

    The state's and info's leaves gain a leading chain axis. Chain ``c``
    draws its randomness from ``fold_in(key, c)`` in ``init`` and ``step``,
    so it depends on its index alone, and every chain steps on the same
    batch. ``sample`` pools the chains (:func:`pooled_sample`: draws spread
    evenly over them). To keep samples, buffer each chain, then vmap:
    ``vmap_chains(with_sample_buffer(algorithm, capacity), num_chains)``.

    Args:
      algorithm: any method.
      num_chains: the number of chains ``C`` (>= 1).

    Returns:
      The wrapped :class:`Algorithm`; the same object for the same arguments,
      so jitted functions taking it as a static argument compile once.

    Example:
      >>> algo = bj.vmap_chains(bj.with_sample_buffer(bj.sgld(lj, 0.1), 100), 8)
      >>> state = algo.init(key, params)
      >>> step = jax.jit(algo.step)
      >>> batches = [(x[i:i + 50], y[i:i + 50]) for i in range(0, len(x), 50)]
      >>> for t, batch in enumerate(batches):
      ...     state, info = step(jax.random.fold_in(key, t), state, batch)
      >>> samples = algo.sample(key, state, 64)   # 8 per chain, over the 4 steps kept
      >>> samples["Dense_0"]["bias"].shape
      (64, 16)
    """
    num_chains = check_int("num_chains", num_chains)

    def chain_keys(key: PRNGKey) -> PRNGKey:
        return jax.vmap(lambda c: jax.random.fold_in(key, c))(jnp.arange(num_chains))

    def init(key: PRNGKey, params: Params) -> State:
        return jax.vmap(algorithm.init, (0, None))(chain_keys(key), params)

    def step(key: PRNGKey, state: State, batch: Batch) -> tuple[State, Info]:
        return jax.vmap(algorithm.step, (0, 0, None))(chain_keys(key), state, batch)

    def sample(key: PRNGKey, state: State, num_samples: int) -> Params:
        return pooled_sample(algorithm, key, state, num_samples)

    return Algorithm(init, step, sample, log_joint=algorithm.log_joint, num_chains=num_chains,
                     markov_chain=algorithm.markov_chain)
