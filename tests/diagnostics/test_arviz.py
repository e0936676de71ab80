"""Tests for bayesjax.diagnostics.arviz: draws and per-step info exported to ArviZ, aligned step by step."""
import jax
import numpy as np
import pytest

import bayesjax as bj
from bayesjax import diagnostics
from tests.diagnostics.toy_chains import KEPT_STEPS, C, K, linear


def test_to_arviz(arviz, counter_posterior):
    post = counter_posterior
    idata = diagnostics.to_arviz(post, burnin=10, thin=2)
    assert set(idata.posterior.data_vars) == {"t", "w"}
    assert idata.posterior["w"].shape == (C, 8, 20)  # the default subset: first 20 entries per leaf
    np.testing.assert_array_equal(idata.posterior["t"].values, KEPT_STEPS)
    np.testing.assert_array_equal(idata.sample_stats["step"].values, KEPT_STEPS)  # stats aligned with draws
    assert {"acceptance_rate", "step_size"} <= set(idata.sample_stats.data_vars)
    everything = diagnostics.to_arviz(post, select=lambda p: p, burnin=10, thin=2)
    assert everything.posterior["w"].shape == (C, 8, 30)
    with pytest.warns(UserWarning, match="sample_stats left out"):
        assert not hasattr(diagnostics.to_arviz(post), "sample_stats")


def test_to_arviz_exports_the_probe_predictions(arviz, iid_posterior):
    probes = jax.random.normal(jax.random.key(1), (4, 3))
    lik = bj.likelihoods.gaussian(1.0)
    idata = diagnostics.to_arviz(iid_posterior, linear, probes, lik)
    draws = diagnostics.chain_samples(iid_posterior)
    expected = np.einsum("nd,ckd->ckn", np.asarray(probes), np.asarray(draws["w"][..., :, 0]))
    np.testing.assert_allclose(idata.posterior["predictions"].values, expected, rtol=1e-5, atol=1e-5)
    assert idata.posterior["predictions"].shape == (C, K, 4)
    # arviz reads them like any variable, and its rank R-hat is function_space's.
    ours = diagnostics.function_space(iid_posterior, linear, probes, lik)["rank_rhat"]
    theirs = [arviz.rhat(idata.posterior["predictions"].values[..., n], method="rank") for n in range(4)]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    with pytest.raises(ValueError, match="apply, x_probe and likelihood"):
        diagnostics.to_arviz(iid_posterior, linear, probes)
    with pytest.raises(ValueError, match="named 'predictions'"):
        diagnostics.to_arviz(iid_posterior, linear, probes, lik, select=lambda p: {"predictions": p["b"]})


def test_to_arviz_without_arviz_says_how_to_install(monkeypatch, iid_posterior):
    import builtins

    real_import = builtins.__import__

    def no_arviz(name, *args, **kwargs):
        if name == "arviz":
            raise ImportError("No module named 'arviz'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_arviz)
    with pytest.raises(ImportError, match=r"pip install 'bayesjax\[arviz\]'"):
        diagnostics.to_arviz(iid_posterior)
