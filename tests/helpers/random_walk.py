"""A toy Markov chain whose positions count its steps, and the small regression data it runs on."""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import bayesjax as bj


class WalkState(NamedTuple):
    position: dict


def random_walk(scale=1.0):
    """A toy Markov chain: position <- position + scale * noise + 1 (a step counter when scale=0)."""

    def init(key, params):
        return WalkState(params)

    def step(key, state, batch):
        noise = jax.random.normal(key, state.position["w"].shape)
        return WalkState({"w": state.position["w"] + 1.0 + scale * noise}), jnp.mean(batch[1])

    def sample(key, state, n):
        return bj.trees.repeat_params(state.position, n)

    return bj.Algorithm(init, step, sample)


def walk_data():
    """40 two-feature examples with a linear target."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2)).astype(np.float32)
    return x, (x @ np.array([2.0, -1.0])).astype(np.float32)
