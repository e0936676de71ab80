"""Tests for bayesjax.diagnostics.arviz: draws and per-step info exported to ArviZ, aligned step by step."""
import numpy as np
import pytest

from bayesjax import diagnostics
from tests.diagnostics.toy_chains import KEPT_STEPS, C


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
