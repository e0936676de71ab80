"""bayesjax.memory: peak bytes from the jaxpr's liveness, per-example costs, and chunk sizes within the budget."""
import jax
import jax.numpy as jnp
import pytest

import bayesjax as bj
from bayesjax import memory


def f32(*shape):
    return jax.ShapeDtypeStruct(shape, jnp.float32)


def test_peak_counts_live_values_and_frees_them_after_their_last_use():
    # exp(x) dies once exp(x) * 2 exists; the peak holds x, exp(x) and its double, then the scalar sum.
    assert memory.peak_bytes(lambda x: jnp.sum(jnp.exp(x) * 2.0), f32(1000)) == 3 * 4000
    # A chain of 5 elementwise maps still holds 3 arrays at once, not 6.
    chain = lambda x: jnp.sin(jnp.cos(jnp.sin(jnp.cos(jnp.sin(x)))))  # noqa: E731
    assert memory.peak_bytes(chain, f32(1000)) == 3 * 4000
    # Values inside a nested jit count while it runs.
    nested = lambda x: jax.jit(lambda z: jnp.sum(jnp.exp(z) * 2.0))(x)  # noqa: E731
    assert memory.peak_bytes(nested, f32(1000)) == 3 * 4000


def test_example_cost_of_a_dense_layer():
    """tanh(x @ w) on [B, 3] x [3, 5]: per example the input row, x @ w and its tanh; w is the fixed part."""
    per_example, fixed = memory.example_cost(lambda w, x: jnp.tanh(x @ w), f32(3, 5), jnp.zeros((10, 3)))
    assert per_example == 4 * (3 + 5 + 5)
    assert fixed == 4 * 3 * 5


def test_example_cost_grows_with_the_activations_of_a_cnn():
    model = bj.models.cnn(10, channels=(4,))
    params = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
    per_example, _ = memory.example_cost(model.apply, params, jnp.zeros((2, 8, 8, 1)))
    wide = bj.models.cnn(10, channels=(16,))
    wide_per_example, _ = memory.example_cost(wide.apply, wide.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1))),
                                              jnp.zeros((2, 8, 8, 1)))
    assert per_example >= 2 * 8 * 8 * 4 * 4  # the convolution's output and its activation
    assert wide_per_example >= per_example + (16 - 4) * 8 * 8 * 4  # 12 more channels of output


def test_chunk_sizes_fit_the_budget():
    per_example, fixed = 1000.0, 500.0
    for budget in (10_000, 200_000, 10**6, 10**8):
        k, b = memory.chunk_sizes(20, 10_000, per_example, fixed, budget=budget)
        assert 1 <= k <= 20 and 1 <= b <= 10_000
        if budget >= 128 * per_example + fixed:
            assert k * (b * per_example + fixed) <= budget
    assert memory.chunk_sizes(20, 10_000, per_example, fixed, budget=10**12) == (20, 10_000)  # all at once
    # More samples per chunk only while chunks keep at least 128 inputs.
    assert memory.chunk_sizes(20, 10_000, per_example, 0.0, budget=4 * 128 * 1000) == (4, 128)
    assert memory.chunk_sizes(20, 10_000, per_example, 0.0, budget=10**8) == (20, 5000)


def test_chunk_sizes_keep_explicit_sizes_and_device_multiples():
    assert memory.chunk_sizes(20, 100, 1e9, budget=1, sample_chunk=3, input_chunk=7) == (3, 7)
    assert memory.chunk_sizes(20, 100, 1.0, budget=10**9, sample_chunk=50, input_chunk=500) == (20, 100)
    assert memory.chunk_sizes(16, 1000, 1000.0, budget=5 * 128 * 1000, sample_multiple=4)[0] == 4
    assert memory.chunk_sizes(16, 1000, 1000.0, budget=1, sample_multiple=4)[0] == 4  # never below the devices


@pytest.mark.parametrize("kwargs", [dict(budget=0), dict(sample_chunk=0), dict(input_chunk=-1)])
def test_chunk_sizes_refuse_bad_sizes(kwargs):
    with pytest.raises(ValueError):
        memory.chunk_sizes(4, 10, 1.0, **kwargs)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU's chunk rule")
def test_input_chunk_on_the_cpu_stays_cache_sized_above_a_floor_and_within_the_budget():
    """What 64 MiB allows, but never under 128 inputs (small chunks waste the matmul units) nor over 512 MiB's."""
    def summed_exp(x):  # holds x, exp(x) and the sum: 8 bytes per float of an example, plus 4
        return jnp.sum(jnp.exp(x), axis=1)

    light = f32(60_000, 1_000)  # 8 KB per example
    assert memory.input_chunk(summed_exp, light) == memory.CPU_STREAM_BUDGET // 8_004
    medium = f32(60_000, 250_000)  # 2 MB: 64 MiB allows 33, 512 MiB 268
    assert memory.input_chunk(summed_exp, medium) == memory.MIN_INPUT_CHUNK
    heavy = f32(60_000, 2_000_000)  # 16 MB: 64 MiB allows 4, 512 MiB 33
    assert memory.input_chunk(summed_exp, heavy) == memory.DEFAULT_BUDGET // 16_000_004
    assert memory.input_chunk(summed_exp, heavy, budget=2**30) == 2**30 // 16_000_004  # an explicit budget rules
