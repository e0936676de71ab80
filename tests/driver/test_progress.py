"""Progress bars fed from inside jit (bayesjax/driver/progress.py)."""
import jax
import jax.numpy as jnp

from bayesjax.driver import progress


def test_a_compiled_loop_advances_its_bar():
    with progress.bar(True, 10, "test") as bar:
        def body(step, carry):
            progress.report(bar.id, step + 1, 5)
            return carry + 1

        jax.block_until_ready(jax.jit(lambda: jax.lax.fori_loop(0, 10, body, jnp.zeros(())))())
        jax.effects_barrier()
        assert bar.bar.n == 10


def test_a_disabled_bar_ignores_reports():
    with progress.bar(False, 10, "test") as bar:
        assert bar.id == -1 and bar.bar is None
        progress.report(bar.id, jnp.asarray(5), 5)
        jax.effects_barrier()
