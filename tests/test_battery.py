"""One battery over every exported Algorithm: the protocol's promises, under jit."""
import blackjax
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from tests.helpers.algorithms import BUILDERS, FULL_BATCH, USER_LOOP_ONLY, problem

BATCH = 16
NUM_WEIGHTS = bj.trees.num_params(problem()[1])

BLACKJAX = {  # bj.from_blackjax on blackjax's own kernels: full batch (mala, hmc) and SG-MCMC (raw-position states)
    "from_blackjax_mala": lambda lj: bj.from_blackjax(lj, blackjax.mala, step_size=1e-3),
    "from_blackjax_hmc": lambda lj: bj.from_blackjax(lj, blackjax.hmc, step_size=0.05, num_integration_steps=5,
                                                     inverse_mass_matrix=jnp.ones(NUM_WEIGHTS)),
    "from_blackjax_sgld": lambda lj: bj.from_blackjax(lj, blackjax.sgld, step_size=3e-3),
    "from_blackjax_sghmc": lambda lj: bj.from_blackjax(lj, blackjax.sghmc, step_size=0.05, num_integration_steps=3),
    "from_blackjax_sgnht": lambda lj: bj.from_blackjax(lj, blackjax.sgnht, step_size=3e-3),
}
ALGORITHMS = {**BUILDERS, **BLACKJAX}
FULL = FULL_BATCH | {"from_blackjax_mala", "from_blackjax_hmc"}


@pytest.fixture(scope="module")
def setup():
    return problem()


def batch(data, i, full=False):
    if full:
        return data
    x, y = data
    return x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]


def weights(samples):
    """The weights of samples: MC dropout's are bj.models.Variables that also carry their masks' keys."""
    return samples.params if isinstance(samples, bj.models.Variables) else samples


def types_of(tree):
    return jax.tree.map(lambda leaf: str(jax.typeof(leaf)), tree)


def run_steps(algo, step, params, data, key, num_steps=3, full=False):
    state = jax.jit(algo.init)(key, params)
    states, infos = [state], []
    for i, k in enumerate(jax.random.split(key, num_steps)):
        state, info = step(k, state, batch(data, i % 2, full))
        states.append(state)
        infos.append(info)
    return states, infos


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_protocol(setup, name):
    lj, params, data = setup
    algo = ALGORITHMS[name](lj)
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(key, state, batch):
        return algo.step(key, state, batch)

    full = name in FULL
    states, infos = run_steps(algo, step, params, data, jax.random.key(0), full=full)

    # State type and structure are stable across steps (and no retrace: checked by assert_max_traces).
    for state in states[1:]:
        assert jax.tree.structure(state) == jax.tree.structure(states[0])
        assert types_of(state) == types_of(states[0])
    for leaf in jax.tree.leaves((states[-1], infos)):
        assert np.all(np.isfinite(np.asarray(leaf, np.float64))), f"{name}: non-finite output"

    samples = weights(jax.jit(algo.sample, static_argnums=2)(jax.random.key(1), states[-1], 4))
    assert jax.tree.structure(samples) == jax.tree.structure(params)
    for s, p in zip(jax.tree.leaves(samples), jax.tree.leaves(params)):
        assert s.shape == (4,) + p.shape and s.dtype == p.dtype

    # The state moved, and the same key reproduces it bit for bit.
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(states[0]), jax.tree.leaves(states[-1])))
    again, _ = run_steps(algo, step, params, data, jax.random.key(0), full=full)
    for a, b in zip(jax.tree.leaves(states[-1]), jax.tree.leaves(again[-1])):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_runs_in_the_driver(setup, name):
    lj, params, data = setup
    if name in USER_LOOP_ONLY:
        with pytest.raises(ValueError, match="vmaps chains itself"):
            bj.run(jax.random.key(2), BUILDERS[name](lj), params, data, num_steps=4, progress=False)
        return
    post = bj.run(jax.random.key(2), ALGORITHMS[name](lj), params, data, num_steps=4,
                  batch_size=None if name in FULL else BATCH, num_chains=2, progress=False)
    samples = post.sample(jax.random.key(3), 3)
    assert all(leaf.shape[0] == 3 for leaf in jax.tree.leaves(samples))
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(weights(samples)))
