"""Tests for bayesjax.diagnostics.mcse: the standard errors predict the spread of estimates over replicated runs.

Each test treats E independent elements as E replicated runs: the sd of
their estimates (sample mean, sample median) across elements is the true
Monte Carlo error, which the average MCSE must match. Measured once with
2,000 replicates (C=4 x K=1000, key 4): sd of the means / mean MCSE = 0.996
(i.i.d.) and 0.990 (AR(1), rho=0.9, where the MCSE averages 0.0694 against
the theoretical sqrt((1 + rho) / (1 - rho) / CK) = 0.0689); sd of the
medians / mean median MCSE = 0.972 (i.i.d.) and 0.999 (AR(1)). With E=400
the sd across elements is itself uncertain by 1 / sqrt(2E) = 3.5%.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesjax import diagnostics
from tests.diagnostics.toy_chains import ar1_draws

C, K, E = 4, 1000, 400


def test_mcse_of_the_mean_predicts_the_error_of_an_ar1_chain_mean():
    rho = 0.9
    draws = ar1_draws(jax.random.key(5), rho, (C, K, E))
    mcse = np.asarray(diagnostics.mcse_mean(draws))
    spread = np.asarray(draws.mean(axis=(0, 1))).std()
    # 0.990 measured; 4 sd of the spread's own error (3.5%) either way.
    assert abs(spread / mcse.mean() - 1) < 0.15, spread / mcse.mean()
    theory = np.sqrt((1 + rho) / (1 - rho) / (C * K))
    assert abs(mcse.mean() / theory - 1) < 0.05, mcse.mean() / theory  # 1.008 measured, sd of the mean 0.6%


def test_mcse_of_the_median_predicts_its_error():
    draws = jax.random.normal(jax.random.key(6), (C, K, E))
    mcse = np.asarray(diagnostics.mcse_quantile(draws, 0.5))
    spread = np.asarray(jnp.median(draws.reshape(C * K, E), axis=0)).std()
    assert abs(spread / mcse.mean() - 1) < 0.15, spread / mcse.mean()  # 0.972 measured
    # and both near the i.i.d. theory sqrt(pi / 2 / CK) = 0.0198
    assert abs(mcse.mean() / np.sqrt(np.pi / 2 / (C * K)) - 1) < 0.1, mcse.mean()


def test_degenerate_chains_and_bad_levels():
    steady = jnp.ones((4, 10))
    apart = jnp.repeat(jnp.arange(4.0)[:, None], 10, axis=1)  # each chain constant, at its own value
    assert float(diagnostics.mcse_mean(steady)) == 0.0
    assert float(diagnostics.mcse_mean(apart)) == np.inf
    for prob in (0.0, 1.0, -0.5, np.nan):
        with pytest.raises(ValueError, match="mcse_quantile: prob"):
            diagnostics.mcse_quantile(steady, prob)
