"""Tests for bayesjax.diagnostics.convergence: split R-hat and bulk ESS on toy chains with known mixing.

Tolerances come from the estimators' own sampling variability, measured once
by simulating 400 independent replicates of each setting (fixed keys) with the
same estimators:

* i.i.d. N(0, 1), C=4 chains x K=500 draws: bulk ESS / CK has mean 0.990 and
  standard deviation 0.055; split R-hat has mean 1.000, sd 0.001, max 1.005.
* AR(1) with rho=0.9, C=4 x K=5000: ESS / CK has mean 0.0524 (theory
  (1 - rho) / (1 + rho) = 0.0526) and sd 0.0043, i.e. 8.2% relative.
"""
import blackjax.diagnostics
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesjax import diagnostics
from tests.diagnostics.toy_chains import C, K, run, toy_chain


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
