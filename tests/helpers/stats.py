"""The shared statistical harness: Monte Carlo checks with ESS-based standard errors."""
import blackjax.diagnostics
import jax
import numpy as np

import bayesjax as bj


def chain_draws(posterior, leaf=lambda p: p["w"]):
    """Time-ordered buffered draws of one leaf, ``[C, K, D]`` (all chains must be full)."""
    samples, filled = jax.vmap(bj.buffer.ordered_samples)(posterior.state)
    filled = np.asarray(filled)
    assert np.all(filled == filled[0]) and filled[0] > 1, f"chains collected {filled}"
    return np.asarray(leaf(samples))[:, : filled[0]]


def assert_gaussian_moments(draws, mean, cov, num_se=3.0):
    """Every mean and covariance entry of ``draws [C, K, D]`` within ``num_se`` Monte Carlo SEs.

    The standard errors use blackjax's multi-chain ESS: for the mean of
    coordinate i, ``sd_i / sqrt(ess_i)``; for covariance entry (i, j),
    ``sqrt((S_ii S_jj + S_ij^2) / ess_ij)`` (the Gaussian variance of a sample
    covariance) with ``ess_ij`` the ESS of the series
    ``(w_i - mean_i)(w_j - mean_j)`` (not of the means: anticorrelated HMC
    draws can have a mean-ESS above the number of draws, products cannot).
    """
    draws = np.asarray(draws, np.float64)
    mean, cov = np.asarray(mean, np.float64), np.asarray(cov, np.float64)
    flat = draws.reshape(-1, draws.shape[-1])
    sample_mean, sample_cov = flat.mean(0), np.cov(flat.T)
    ess = np.asarray(blackjax.diagnostics.effective_sample_size(draws))
    centered = draws - sample_mean
    products = centered[..., :, None] * centered[..., None, :]
    ess_cov = np.asarray(blackjax.diagnostics.effective_sample_size(products))
    se_mean = np.sqrt(np.diag(sample_cov) / ess)
    se_cov = np.sqrt((np.outer(np.diag(sample_cov), np.diag(sample_cov)) + sample_cov**2) / ess_cov)
    z_mean = (sample_mean - mean) / se_mean
    z_cov = (sample_cov - cov) / se_cov
    assert np.all(np.isfinite(ess)) and np.all(ess > 50), f"ESS too small: {ess}"
    assert np.all(np.abs(z_mean) < num_se), f"mean off by {np.round(z_mean, 2)} SE (ESS {np.round(ess)})"
    assert np.all(np.abs(z_cov) < num_se), f"covariance off by\n{np.round(z_cov, 2)}\nSE (ESS\n{np.round(ess_cov)})"
    return ess
