"""The shared statistical harness: Monte Carlo checks with ESS-based standard errors."""
import blackjax.diagnostics
import jax
import numpy as np

import bayesjax as bj


def chain_draws(posterior, leaf=lambda p: p["w"]):
    """Time-ordered buffered draws of one leaf, ``[C, K, D]`` (all chains must be full)."""
    samples, filled = jax.vmap(bj.base.ordered_samples)(posterior.state)
    filled = np.asarray(filled)
    assert np.all(filled == filled[0]) and filled[0] > 1, f"chains collected {filled}"
    return np.asarray(leaf(samples))[:, : filled[0]]


def assert_gaussian_moments(draws, mean, cov, num_se=3.0):
    """Pooled mean and covariance of ``draws [C, K, D]`` within ``num_se`` Monte Carlo SEs.

    SE(mean_i) = sqrt(S_ii / ESS_i); SE(S_ij) = sqrt((S_ii S_jj + S_ij^2) / min(ESS_i, ESS_j)),
    the large-sample standard error of a Gaussian sample covariance with ESS effective draws.
    """
    draws = np.asarray(draws, np.float64)
    num_chains, num_draws, dim = draws.shape
    ess = np.asarray(blackjax.diagnostics.effective_sample_size(draws, chain_axis=0, sample_axis=1))
    pooled = draws.reshape(-1, dim)
    sample_mean, sample_cov = pooled.mean(0), np.cov(pooled.T)
    mean, cov = np.asarray(mean, np.float64), np.asarray(cov, np.float64)
    se_mean = np.sqrt(np.diag(cov) / ess)
    ess_pair = np.minimum(ess[:, None], ess[None, :])
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / ess_pair)
    z_mean = (sample_mean - mean) / se_mean
    z_cov = (sample_cov - cov) / se_cov
    report = f"ESS {np.round(ess)}, z(mean) {np.round(z_mean, 2)}, z(cov) {np.round(z_cov, 2)}"
    assert np.all(np.abs(z_mean) < num_se), report
    assert np.all(np.abs(z_cov) < num_se), report
    return ess
