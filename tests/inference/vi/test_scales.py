"""Positive scales from unconstrained parameters: inverse maps and a log that does not underflow."""
import numpy as np
import pytest

from bayesjax.inference.vi import scales


@pytest.mark.parametrize("parametrization", scales.SCALE_PARAMETRIZATIONS)
def test_unconstrained_inverts_positive(parametrization):
    sigma = np.array([1e-6, 1e-2, 0.5, 1.0, 30.0], np.float32)
    raw = scales.unconstrained(sigma, parametrization)
    np.testing.assert_allclose(scales.positive(raw, parametrization), sigma, rtol=1e-5)
    np.testing.assert_allclose(scales.log_positive(raw, parametrization), np.log(sigma), rtol=1e-5, atol=1e-6)


def test_log_softplus_stays_finite_where_softplus_underflows():
    raw = np.array([-200.0, -20.0], np.float32)
    np.testing.assert_allclose(scales.log_positive(raw, "softplus"), raw, rtol=1e-6)
    assert scales.positive(raw[:1], "softplus")[0] == 0.0  # float32 softplus underflows: its log would be -inf


def test_unknown_parametrization_is_refused():
    assert scales.check("log") == "log"
    with pytest.raises(ValueError, match="parametrization"):
        scales.check("exp")
