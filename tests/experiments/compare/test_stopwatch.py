"""``Stopwatch``: compilation apart from the rest."""
import time

import jax
import jax.numpy as jnp

from bayesjax.experiments import compare


def test_stopwatch_splits_compilation_from_the_rest():
    @jax.jit
    def f(x):
        return jnp.sin(x) @ jnp.cos(x).T

    x = jnp.ones((50, 50))
    with compare.Stopwatch() as first:
        jax.block_until_ready(f(x))  # traced and compiled here
        time.sleep(0.2)
    with compare.Stopwatch() as again:
        jax.block_until_ready(f(x))  # cached
    assert first.compile_seconds > 0 and first.seconds >= 0.2
    assert again.compile_seconds == 0
