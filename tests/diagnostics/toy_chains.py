"""Toy Markov chains with known mixing for the diagnostics tests, and the run they share."""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import bayesjax as bj
from bayesjax.trees import repeat_params


class ToyState(NamedTuple):
    position: dict
    anchor: dict  # the chain's initial params
    t: jax.Array  # steps taken


class ToyInfo(NamedTuple):
    acceptance_rate: jax.Array
    step_size: jax.Array
    step: jax.Array
    is_sample: jax.Array


def toy_chain(update):
    """A Markov chain whose next position is ``update(key, state, t)`` (t counted from 1)."""

    def init(key, params):
        return ToyState(params, params, jnp.zeros((), jnp.int32))

    def step(key, state, batch):
        t = state.t + 1
        info = ToyInfo(jnp.where(t <= 10, 0.0, 0.8), 1.0 / t, t.astype(jnp.float32), jnp.asarray(True))
        return ToyState(update(key, state, t), state.anchor, t), info

    def sample(key, state, n):
        return repeat_params(state.position, n)

    return bj.Algorithm(init, step, sample)


def noise_like(key, tree):
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return treedef.unflatten([jax.random.normal(k, leaf.shape, leaf.dtype) for k, leaf in zip(keys, leaves)])


def iid():
    return toy_chain(lambda key, state, t: noise_like(key, state.position))


def ar1(rho):
    scale = np.sqrt(1 - rho**2)
    return toy_chain(lambda key, state, t: jax.tree.map(
        lambda p, z: rho * p + scale * z, state.position, noise_like(key, state.position)))


DATA = (np.zeros((4, 1), np.float32), np.zeros(4, np.float32))
PARAMS = {"w": jnp.zeros((3, 3)), "b": jnp.zeros(())}
C, K = 4, 500
KEPT_STEPS = np.tile(np.arange(26, 41, 2), (C, 1))  # counter chain: the last 8 of steps 12, 14, ..., 40


def run(algo, params=PARAMS, num_steps=K, num_chains=C, **kwargs):
    return bj.run(jax.random.key(0), algo, params, DATA, num_steps=num_steps, num_chains=num_chains,
                  progress=False, **kwargs)


def linear(params, x):
    return x @ params["w"][:, :1]


def logistic(params, x):
    f = linear(params, x)
    return jnp.concatenate([jnp.zeros_like(f), f], axis=-1)
