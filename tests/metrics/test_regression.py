"""Tests for bayesjax.metrics.regression (and the mixture NLL) against SciPy, in original units."""
import numpy as np
import pytest
from scipy import stats

from bayesjax import metrics
from tests.metrics.predictives import ATOL, random_reg


@pytest.mark.parametrize("y_std", [1.0, 3.7])
def test_regression_metrics_in_original_units(y_std):
    pred, mu, var, y = random_reg()
    y_mean = -2.0
    # everything mapped back to the original units, where no y_std appears
    y_orig = y * y_std + y_mean
    mu_orig, sd_orig = mu * y_std + y_mean, np.sqrt(var) * y_std
    mixture_mean = mu_orig.mean(0)
    mixture_var = var.mean(0) * y_std**2 + mu_orig.var(0)

    expected_rmse = np.sqrt(np.mean((mixture_mean - y_orig) ** 2))
    expected_nll = -np.mean(np.log(np.mean(stats.norm.pdf(y_orig, mu_orig, sd_orig), axis=0)))
    expected_gnll = -np.mean(stats.norm.logpdf(y_orig, mixture_mean, np.sqrt(mixture_var)))

    assert float(metrics.rmse(pred, y, y_std)) == pytest.approx(expected_rmse, rel=1e-5)
    assert float(metrics.nll(pred, y, y_std)) == pytest.approx(expected_nll, abs=ATOL)
    assert float(metrics.gaussian_nll(pred, y, y_std)) == pytest.approx(expected_gnll, abs=ATOL)


def test_gaussian_nll_equals_nll_for_one_component():
    pred, _, _, y = random_reg(s=1)
    assert float(metrics.gaussian_nll(pred, y)) == pytest.approx(float(metrics.nll(pred, y)), abs=ATOL)
