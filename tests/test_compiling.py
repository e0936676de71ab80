"""Compile-time twins (bayesjax/compiling.py): which twin a call picks, and the work estimate."""
import jax
import jax.numpy as jnp
import numpy as np

from bayesjax import compiling


def test_small_work_on_cpu_picks_the_fast_compiling_twin_and_both_agree():
    twins = compiling.jit(lambda x: jnp.sin(x) * 2)
    x = jnp.linspace(0, 1, 5)
    assert twins.pick(compiling.SMALL_WORK / 10, x) is twins.fast
    assert twins.pick(compiling.SMALL_WORK, x) is twins.optimized
    np.testing.assert_allclose(twins.fast(x), twins.optimized(x), rtol=1e-6)


def test_inside_a_trace_the_optimized_twin_is_used():
    twins = compiling.jit(lambda x: x + 1)
    picked = []
    jax.jit(lambda x: picked.append(twins.pick(0.0, x)) or x)(jnp.ones(2))
    assert picked == [twins.optimized]


def test_forward_macs_counts_a_dense_network_exactly_and_bounds_a_convolution():
    dense = {"w1": jnp.zeros((64, 50)), "b1": jnp.zeros(50), "w2": jnp.zeros((50, 10))}
    assert compiling.forward_macs(dense, (1, 64)) == 64 * 50 + 50 + 50 * 10
    conv = {"kernel": jnp.zeros((3, 3, 1, 8))}
    assert compiling.forward_macs(conv, (1, 28, 28, 1)) == 3 * 3 * 8 * 28 * 28


def test_normal_draws_the_numbers_of_jax_random():
    key = jax.random.key(1)
    # the same function, compiled at another optimization level: equal to the last bit or two
    np.testing.assert_allclose(compiling.normal(key, (3, 2), jnp.float32), jax.random.normal(key, (3, 2)), rtol=1e-6)
