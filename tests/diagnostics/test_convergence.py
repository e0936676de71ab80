"""Tests for bayesjax.diagnostics.convergence: R-hat (split, rank-normalized), bulk and tail ESS on toy chains.

Tolerances come from the estimators' own sampling variability, measured once
by simulating 400 independent replicates of each setting (fixed keys) with the
same estimators:

* i.i.d. N(0, 1), C=4 chains x K=500 draws: bulk ESS / CK has mean 0.990 and
  standard deviation 0.055; split R-hat has mean 1.000, sd 0.001, max 1.005.
* AR(1) with rho=0.9, C=4 x K=5000: ESS / CK has mean 0.0524 (theory
  (1 - rho) / (1 + rho) = 0.0526) and sd 0.0043, i.e. 8.2% relative.

and, for the rank-normalized statistics (400 replicates, C=4 x K=500, keys 1-3):

* i.i.d.: rank R-hat mean 1.0006, sd 0.0010, max 1.0046; tail ESS / CK mean
  0.956 (the indicator's variance is estimated: slightly below 1), sd 0.054.
* three i.i.d. chains and a fourth stuck at 0 (the posterior's center): rank
  R-hat min 1.52, split R-hat max 1.0065; the fourth chain three times wider
  instead: rank R-hat min 1.099, split R-hat max 1.0088.
* :func:`~tests.diagnostics.toy_chains.volatility_draws` with rho=0.99:
  bulk ESS / CK mean 0.984, sd 0.085; tail ESS / bulk ESS mean 0.079, sd
  0.058, max 0.293.
"""
import blackjax.diagnostics
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesjax import diagnostics
from tests.diagnostics.toy_chains import C, K, run, toy_chain, volatility_draws


def numpy_split_rhat(x):
    """BDA3 eq. (11.4) on split chains, float64, elementwise over trailing axes."""
    x = np.asarray(x, np.float64)
    half = x.shape[1] // 2
    x = np.concatenate([x[:, :half], x[:, -half:]])
    n = x.shape[1]
    w = x.var(axis=1, ddof=1).mean(axis=0)
    b = n * x.mean(axis=1).var(axis=0, ddof=1)
    return np.sqrt(((n - 1) / n * w + b / n) / w)


def test_iid_chains_have_rhat_one_and_full_ess(iid_posterior):
    draws = diagnostics.chain_samples(iid_posterior)
    rhat, ess = diagnostics.split_rhat(draws), diagnostics.ess(draws)
    assert jax.tree.map(jnp.shape, rhat) == {"w": (3, 3), "b": ()}
    for name in draws:
        np.testing.assert_allclose(rhat[name], numpy_split_rhat(draws[name]), rtol=1e-5)
    rhat = np.concatenate([np.ravel(r) for r in jax.tree.leaves(rhat)])
    relative = np.concatenate([np.ravel(e) for e in jax.tree.leaves(ess)]) / (C * K)
    assert np.all((rhat > 0.99) & (rhat < 1.02)), rhat  # sd 0.001: > 10 sd either way
    # Each of the 10 independent elements within 4 sd (0.22) of 1; their mean within 3 sd / sqrt(10).
    assert np.all(np.abs(relative - 1) < 4 * 0.055), relative
    assert abs(relative.mean() - 1) < 3 * 0.055 / np.sqrt(relative.size), relative.mean()


def test_ess_of_ar1_chains_matches_the_integrated_autocorrelation_time(ar1_posterior):
    rho, num_draws, post = 0.9, 5000, ar1_posterior
    relative = np.asarray(diagnostics.ess(diagnostics.chain_samples(post))["w"]) / (C * num_draws)
    expected = (1 - rho) / (1 + rho)
    # Relative sd 8.2% per element: each within 30% (3.6 sd), the mean of 8 within 10% (3.5 sd / sqrt(8)).
    np.testing.assert_allclose(relative, expected, rtol=0.30)
    np.testing.assert_allclose(relative.mean(), expected, rtol=0.10)
    # Stationary chains: with tau = (1 + rho) / (1 - rho) = 19 and N = 2500 draws per half-chain,
    # split R-hat ~ 1 + (tau chi2_7 / 7 - 1) / 2N (mean 1.0036, as simulated); P(R > 1.02) = P(chi2_7 > 37) ~ 4e-6.
    assert np.all(np.asarray(diagnostics.split_rhat(diagnostics.chain_samples(post))["w"]) < 1.02)


def test_split_rhat_catches_a_shared_trend_that_plain_rhat_misses():
    trend = toy_chain(lambda key, state, t: {"w": 3.0 * t / K + jax.random.normal(key, (4,))})
    post = run(trend, {"w": jnp.zeros(4)})
    draws = diagnostics.chain_samples(post)["w"]
    plain = blackjax.diagnostics.potential_scale_reduction(draws)
    split = diagnostics.split_rhat(draws)
    # Halves differ in mean by 1.5 against a within-half sd of ~1.1: expected split R-hat ~1.24.
    assert np.all(np.asarray(plain) < 1.05), plain
    assert np.all(np.asarray(split) > 1.1), split


def test_too_few_or_unequal_draws_are_rejected():
    with pytest.raises(ValueError, match="at least 4 draws"):
        diagnostics.split_rhat({"w": jnp.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"same \[chains, draws\]"):
        diagnostics.ess({"a": jnp.zeros((2, 8)), "b": jnp.zeros((2, 6))})


def test_estimators_agree_with_arviz(arviz, iid_posterior, ar1_posterior):
    for posterior in (iid_posterior, ar1_posterior):
        draws = diagnostics.chain_samples(posterior)
        rhat, ess = diagnostics.split_rhat(draws), diagnostics.ess(draws)
        for name, leaf in draws.items():
            x = np.asarray(leaf, np.float64).reshape(leaf.shape[:2] + (-1,))  # arviz takes one element at a time
            expected_rhat = [arviz.rhat(x[..., e], method="split") for e in range(x.shape[-1])]
            expected_ess = [arviz.ess(x[..., e], method="bulk") for e in range(x.shape[-1])]
            np.testing.assert_allclose(np.ravel(rhat[name]), expected_rhat, rtol=1e-4)
            np.testing.assert_allclose(np.ravel(ess[name]), expected_ess, rtol=1e-3)


def test_rank_rhat_flags_a_stuck_or_wider_chain_that_split_rhat_misses():
    draws = jax.random.normal(jax.random.key(3), (C, K, 10))
    rank, split = diagnostics.rank_rhat(draws), diagnostics.split_rhat(draws)
    assert np.all(np.asarray(rank) < 1.01), rank  # 5 sd above the i.i.d. mean
    stuck = draws.at[3].set(0.0)  # one chain that never moves, at the center of the others
    wider = draws.at[3].multiply(3.0)  # one chain in another mode of scale
    shifted = draws.at[3].add(1.0)  # one chain stuck elsewhere
    for bad in (stuck, wider):
        # The classic statistic compares means only, and these chains agree on the mean.
        assert np.all(np.asarray(diagnostics.split_rhat(bad)) < 1.01)
        assert np.all(np.asarray(diagnostics.rank_rhat(bad)) > 1.05), diagnostics.rank_rhat(bad)
    assert np.all(np.asarray(diagnostics.split_rhat(shifted)) > 1.05)
    assert np.all(np.asarray(diagnostics.rank_rhat(shifted)) > 1.05)
    assert np.all(np.asarray(rank) >= np.asarray(split) - 0.01)  # max(bulk, tail) and bulk ~ split here


def test_tail_ess_of_iid_draws_is_about_the_number_of_draws():
    draws = jax.random.normal(jax.random.key(1), (C, K, 10))
    relative = np.asarray(diagnostics.tail_ess({"w": draws})["w"]) / (C * K)
    # Mean 0.956, sd 0.054 per element: each within 4 sd, the mean of 10 within 3 sd / sqrt(10).
    assert np.all(np.abs(relative - 0.956) < 4 * 0.054), relative
    assert abs(relative.mean() - 0.956) < 3 * 0.054 / np.sqrt(10), relative.mean()


def test_a_heavy_tail_visited_slowly_has_a_lower_tail_ess_than_bulk_ess():
    draws = volatility_draws(jax.random.key(2), 0.99, (C, K, 10))
    bulk, tail = np.asarray(diagnostics.ess(draws)), np.asarray(diagnostics.tail_ess(draws))
    # Bulk ESS / CK mean 0.984, sd 0.085 (mean of 10 above 0.85: 5 sd); tail / bulk max 0.29 in 400 replicates.
    assert (bulk / (C * K)).mean() > 0.85, bulk
    assert np.all(tail < 0.5 * bulk), tail / bulk


def test_rank_rhat_runs_under_jit_and_tail_ess_checks_its_levels():
    draws = {"a": jax.random.normal(jax.random.key(0), (2, 40, 3)), "b": jax.random.normal(jax.random.key(1), (2, 40))}
    jitted, eager = jax.jit(diagnostics.rank_rhat)(draws), diagnostics.rank_rhat(draws)
    assert jax.tree.map(jnp.shape, eager) == {"a": (3,), "b": ()}
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), jitted, eager)
    for probs in ((0.05,), (0.0, 0.95), (0.05, 1.2)):
        with pytest.raises(ValueError, match="tail_ess"):
            diagnostics.tail_ess(draws, probs)
    with pytest.raises(ValueError, match="at least 4 draws"):
        diagnostics.rank_rhat({"w": jnp.zeros((2, 3))})
