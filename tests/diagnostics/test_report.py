"""Tests for bayesjax.diagnostics.report: the worst-case numbers and the per-step info statistics."""
import jax
import jax.numpy as jnp
import pytest

import bayesjax as bj
from bayesjax import diagnostics
from tests.diagnostics.toy_chains import C, K, linear


def test_summary_keys_and_info_statistics(iid_posterior):
    probes = jax.random.normal(jax.random.key(1), (4, 3))
    result = diagnostics.summary(iid_posterior, linear, probes, bj.likelihoods.gaussian(1.0),
                                 select=lambda p: jnp.append(p["w"][0], p["b"]), burnin=10)
    assert set(result) == {"rhat_max", "ess_min", "function_rhat_max", "function_ess_min", "num_chains",
                           "num_draws", "num_divergent_chains", "acceptance_rate", "step_size"}
    assert all(isinstance(v, float) for v in result.values())
    assert 0.99 < result["rhat_max"] < 1.02 and result["ess_min"] > 0.7 * C * K
    assert result["acceptance_rate"] == pytest.approx(0.8)  # 0 during the first 10 steps
    assert result["step_size"] == pytest.approx(1 / K)  # the last step's
    assert (result["num_chains"], result["num_draws"], result["num_divergent_chains"]) == (C, K, 0)
    assert diagnostics.summary(iid_posterior)["acceptance_rate"] == pytest.approx(0.8 * (K - 10) / K)
    with pytest.raises(ValueError, match="apply, x_probe and likelihood"):
        diagnostics.summary(iid_posterior, linear)
