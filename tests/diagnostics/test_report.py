"""Tests for bayesjax.diagnostics.report: the worst-case numbers and the per-step info statistics."""
import inspect

import jax
import jax.numpy as jnp
import pytest

import bayesjax as bj
from bayesjax import diagnostics
from tests.diagnostics.toy_chains import C, K, iid, linear, run


def test_summary_keys_and_info_statistics(iid_posterior):
    probes = jax.random.normal(jax.random.key(1), (4, 3))
    with pytest.warns(UserWarning, match="burnin=10, thin=1 do not reproduce"):  # the run had no burn-in
        result = diagnostics.summary(iid_posterior, linear, probes, bj.likelihoods.gaussian(1.0),
                                     select=lambda p: jnp.append(p["w"][0], p["b"]), burnin=10)
    worst = {"rhat_max", "rank_rhat_max", "ess_min", "tail_ess_min"}
    assert set(result) == worst | {"function_" + k for k in worst} | {
        "num_chains", "num_draws", "num_divergent_chains", "acceptance_rate", "step_size"}
    assert all(isinstance(v, float) for v in result.values())
    assert 0.99 < result["rhat_max"] <= result["rank_rhat_max"] < 1.02  # i.i.d. chains: both near 1
    assert result["ess_min"] > 0.7 * C * K and result["tail_ess_min"] > 0.7 * C * K
    assert result["acceptance_rate"] == pytest.approx(0.8)  # 0 during the first 10 steps
    assert result["step_size"] == pytest.approx(1 / K)  # the last step's
    assert (result["num_chains"], result["num_draws"], result["num_divergent_chains"]) == (C, K, 0)
    assert diagnostics.summary(iid_posterior)["acceptance_rate"] == pytest.approx(0.8 * (K - 10) / K)
    with pytest.raises(ValueError, match="apply, x_probe and likelihood"):
        diagnostics.summary(iid_posterior, linear)
    for bad in ({"burnin": -1}, {"thin": 0}, {"thin": 1.5}):
        with pytest.raises(ValueError, match="burnin|thin"):
            diagnostics.summary(iid_posterior, **bad)


def test_summary_and_to_arviz_take_the_same_arguments():
    assert inspect.signature(diagnostics.summary).parameters == inspect.signature(diagnostics.to_arviz).parameters


def test_info_kept_every_few_steps_cannot_be_matched_to_the_draws():
    post = run(iid(), num_steps=40, info_every=4)
    with pytest.warns(UserWarning, match="the info has 10 rows for 40 steps"):
        diagnostics.summary(post)
