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


def ar1_draws(key, rho, shape):
    """Stationary AR(1) draws ``[C, K, E]`` with unit marginal variance: x_t = rho x_{t-1} + sqrt(1 - rho^2) z_t."""
    start_key, noise_key = jax.random.split(key)
    noise = jnp.moveaxis(jax.random.normal(noise_key, shape), 1, 0)

    def step(x, z):
        x = rho * x + np.sqrt(1 - rho**2) * z
        return x, x

    _, xs = jax.lax.scan(step, jax.random.normal(start_key, (shape[0],) + shape[2:]), noise)
    return jnp.moveaxis(xs, 0, 1)


def volatility_draws(key, rho, shape):
    """x_t = exp(h_t) z_t, h an AR(1) (sd 1) mixing slowly, z i.i.d. N(0, 1): heavy tails visited slowly.

    The sign and the rank of x decorrelate at once (z is independent and
    symmetric), so the bulk mixes like i.i.d. draws; whether x is in a tail
    depends on h, which keeps its value for about (1 + rho) / (1 - rho) steps.
    """
    scale_key, noise_key = jax.random.split(key)
    return jnp.exp(ar1_draws(scale_key, rho, shape)) * jax.random.normal(noise_key, shape)
