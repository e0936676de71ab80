"""Tests for bayesjax.diagnostics.kernels: every estimator equals ArviZ's, element by element.

ArviZ computes in float64 and these kernels in float32, on the same float32
draws. The rank R-hat agrees to float32 rounding. The ESS-based numbers
agree as closely except where Geyer's truncation meets a lag pair whose
autocorrelation sum is within rounding of 0: float32 may then stop one pair
earlier or later, which moves the ESS by that near-zero pair's share (0.3%
at most here), and the MCSE of a quantile, two order statistics picked by an
index computed from that ESS, by one order statistic (0.9% at most here). So
their median agreement is held to 1e-5 and the worst to 2e-2.
"""
import jax
import jax.numpy as jnp
import numpy as np

from bayesjax import diagnostics
from tests.diagnostics.toy_chains import ar1_draws

C, K, E = 4, 301, 5  # odd K: the middle draw is dropped when splitting


def reference_draws():
    keys = jax.random.split(jax.random.key(7), 3)
    return {
        "iid": jax.random.normal(keys[0], (C, K, E)),
        "ar1": ar1_draws(keys[1], 0.9, (C, K, E)),
        "cauchy": jax.random.cauchy(keys[2], (C, K, E)),
        "stuck (ties)": jax.random.normal(keys[0], (C, K, E)).at[3].set(0.0),
    }


def test_every_estimator_agrees_with_arviz(arviz):
    estimators = {  # name: (ours, arviz's, rounding-level agreement for every element)
        "rank_rhat": (diagnostics.rank_rhat, lambda a: arviz.rhat(a, method="rank"), True),
        "mcse_quantile 0.05": (lambda d: diagnostics.mcse_quantile(d, 0.05),
                               lambda a: arviz.mcse(a, method="quantile", prob=0.05), False),
        "mcse_quantile 0.5": (lambda d: diagnostics.mcse_quantile(d, 0.5),
                              lambda a: arviz.mcse(a, method="quantile", prob=0.5), False),
        "ess": (diagnostics.ess, lambda a: arviz.ess(a, method="bulk"), False),
        "tail_ess": (diagnostics.tail_ess, lambda a: arviz.ess(a, method="tail"), False),
        "mcse_mean": (diagnostics.mcse_mean, lambda a: arviz.mcse(a, method="mean"), False),
    }
    for name, (ours, reference, exact) in estimators.items():
        errors = []
        for case, draws in reference_draws().items():
            x = np.asarray(draws, np.float64)
            expected = np.array([reference(x[..., e]) for e in range(E)])
            error = np.abs(np.asarray(ours(draws), np.float64) - expected)
            errors.append(error / np.where(error == 0, 1.0, np.abs(expected)))  # both 0: a tied quantile
        errors = np.concatenate(errors)
        if exact:
            assert errors.max() < 1e-4, (name, errors)
        else:
            assert np.median(errors) < 1e-5 and errors.max() < 2e-2, (name, errors)


def test_a_nan_draw_makes_only_its_element_nan():
    draws = reference_draws()["iid"].at[1, 5, 1].set(jnp.nan)
    for statistic in (diagnostics.split_rhat, diagnostics.rank_rhat, diagnostics.ess, diagnostics.tail_ess,
                      diagnostics.mcse_mean):
        values = np.asarray(statistic(draws))
        assert np.isnan(values[1]) and np.all(np.isfinite(values[[0, 2, 3, 4]])), (statistic.__name__, values)


def test_a_leaf_without_elements_keeps_its_shape():
    draws = {"empty": jnp.zeros((C, K, 0)), "w": jnp.ones((C, K, E))}
    assert jax.tree.map(jnp.shape, diagnostics.rank_rhat(draws)) == {"empty": (0,), "w": (E,)}
    assert jax.tree.map(jnp.shape, diagnostics.ess({"empty": draws["empty"]})) == {"empty": (0,)}
