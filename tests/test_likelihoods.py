"""Observation models (bayesjax/likelihoods.py) against scipy's densities, and target checks."""
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import bayesjax as bj

RNG = np.random.default_rng(0)
OUTPUTS = RNG.normal(size=(6, 4)).astype(np.float32)


def test_gaussian_is_the_normal_density_around_the_first_output():
    y = RNG.normal(size=6).astype(np.float32)
    lik = bj.likelihoods.gaussian(0.5)
    expected = stats.norm(OUTPUTS[:, 0], 0.5).logpdf(y)
    np.testing.assert_allclose(lik.log_prob(jnp.asarray(OUTPUTS[:, :1]), y), expected, rtol=1e-5)
    mean, var = lik.predict(jnp.asarray(OUTPUTS[:, :1]))
    np.testing.assert_allclose(var, 0.25)


def test_heteroscedastic_gaussian_reads_mean_and_log_scale():
    y = RNG.normal(size=6).astype(np.float32)
    expected = stats.norm(OUTPUTS[:, 0], np.exp(OUTPUTS[:, 1])).logpdf(y)
    log_prob = bj.likelihoods.heteroscedastic_gaussian().log_prob(jnp.asarray(OUTPUTS[:, :2]), y)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-5)


def test_categorical_is_the_log_softmax_of_the_label():
    y = np.array([0, 1, 2, 3, 0, 1])
    log_softmax = OUTPUTS - np.log(np.exp(OUTPUTS).sum(1, keepdims=True))
    log_prob = bj.likelihoods.categorical().log_prob(jnp.asarray(OUTPUTS), y)
    np.testing.assert_allclose(log_prob, log_softmax[np.arange(6), y], rtol=1e-5)


def test_noisy_dirichlet_regresses_the_logits_on_lognormal_targets():
    y, eps = np.array([0, 1, 2, 3, 0, 1]), 0.01
    alpha = np.eye(4)[y] + eps
    var = np.log1p(1 / alpha)
    expected = stats.norm(OUTPUTS, np.sqrt(var)).logpdf(np.log(alpha) - var / 2).sum(1)
    log_prob = bj.likelihoods.noisy_dirichlet(eps).log_prob(jnp.asarray(OUTPUTS), y)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-5)


@pytest.mark.parametrize("likelihood, y, outputs, message", [
    (bj.likelihoods.categorical(), np.array([0, 4]), 4, "out of range"),
    (bj.likelihoods.categorical(), np.array([0.0, 1.0]), 4, "integer labels"),
    (bj.likelihoods.categorical(), np.zeros((2, 1), int), 4, r"shape \[N\]"),
    (bj.likelihoods.gaussian(1.0), np.zeros(2), 2, "reads 1 model output"),
])
def test_targets_that_do_not_fit_are_refused(likelihood, y, outputs, message):
    with pytest.raises(ValueError, match=message):
        bj.likelihoods.check_targets(likelihood, y, outputs)


def test_a_non_positive_noise_is_refused():
    with pytest.raises(ValueError, match="noise_std"):
        bj.likelihoods.gaussian(0.0)
