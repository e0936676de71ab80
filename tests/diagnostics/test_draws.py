"""Tests for bayesjax.diagnostics.draws: chains read back in time order, diverged and empty chains."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesjax import diagnostics
from bayesjax.driver.posterior import DivergenceError, DivergenceWarning
from tests.diagnostics.toy_chains import KEPT_STEPS, C, K, noise_like, run, toy_chain


def test_chain_samples_are_time_ordered(iid_posterior, counter_posterior):
    draws = diagnostics.chain_samples(iid_posterior)
    assert draws["w"].shape == (C, K, 3, 3) and draws["b"].shape == (C, K)
    np.testing.assert_array_equal(draws["w"], iid_posterior.state.buffer["w"])  # buffer never wrapped
    # A wrapped ring buffer keeps the latest draws, oldest first.
    np.testing.assert_array_equal(diagnostics.chain_samples(counter_posterior)["t"], KEPT_STEPS)


def test_diverged_chains_are_excluded_with_a_warning():
    # A chain whose starting point has a negative first entry turns NaN at step 50.
    diverging = toy_chain(lambda key, state, t: jax.tree.map(
        lambda a, z: jnp.where((t == 50) & (a[0] < 0), jnp.nan, z), state.anchor, noise_like(key, state.anchor)))
    with pytest.warns(DivergenceWarning):
        post = run(diverging, lambda key: {"w": jax.random.normal(key, (4,))}, num_chains=6)
    bad = np.flatnonzero(np.asarray(post.state.inner.anchor["w"][:, 0]) < 0)
    assert 0 < len(bad) < 6 and set(post.divergences) == set(bad.tolist())
    good = np.setdiff1d(np.arange(6), bad)
    with pytest.warns(DivergenceWarning, match=f"chain {bad[0]} diverged at step 50"):
        draws = diagnostics.chain_samples(post)
    np.testing.assert_array_equal(draws["w"], np.asarray(post.state.buffer["w"])[good])
    with pytest.warns(DivergenceWarning):
        result = diagnostics.summary(post)
    assert np.isfinite(result["rhat_max"]) and result["num_divergent_chains"] == len(bad)
    assert result["num_chains"] == len(good)
    every_chain = post._replace(state=post.state._replace(diverged_at=jnp.full((6,), 50)))
    with pytest.raises(DivergenceError):
        diagnostics.chain_samples(every_chain)


def test_non_chains_and_empty_buffers_are_rejected(iid_posterior):
    unbuffered = iid_posterior._replace(state=iid_posterior.state.inner)  # as a MAP/VI/Laplace state
    with pytest.raises(ValueError, match="Markov chain"):
        diagnostics.weight_space(unbuffered)
    # What a run whose algorithm never marks a step as a sample (info.is_sample False) leaves.
    empty = iid_posterior._replace(state=iid_posterior.state._replace(num_collected=jnp.zeros((C,), jnp.int32)))
    with pytest.raises(ValueError, match="no samples"):
        diagnostics.chain_samples(empty)
