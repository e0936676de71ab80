"""Low-rank-plus-diagonal VI of rank D - 1 (which can represent any D x D covariance) recovers the exact posterior."""
import numpy as np
import pytest

from tests.helpers.vi_problem import CASES, assert_converged, exact, fitted


@pytest.mark.parametrize("temperature", CASES["posterior"])
def test_recovers_the_exact_tempered_posterior(temperature):
    tempering = "posterior"
    mean, cov = exact(temperature, tempering)
    means, covs = fitted("lowrank2", temperature, tempering)
    sd = np.sqrt(np.diag(cov))
    assert_converged((means - mean) / sd)
    assert_converged((covs - cov) / np.outer(sd, sd))
