"""Full-rank Gaussian VI recovers the exact (tempered) posterior of Bayesian linear regression."""
import numpy as np
import pytest

from tests.helpers.vi_problem import TEMPERED, assert_converged, exact, fitted


@pytest.mark.parametrize("temperature,tempering", TEMPERED)
def test_recovers_the_exact_tempered_posterior(temperature, tempering):
    mean, cov = exact(temperature, tempering)
    means, covs = fitted("fullrank", temperature, tempering)
    sd = np.sqrt(np.diag(cov))
    assert_converged((means - mean) / sd)
    assert_converged((covs - cov) / np.outer(sd, sd))
