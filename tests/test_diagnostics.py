"""Convergence diagnostics on toy Markov chains with known mixing.

Tolerances come from the estimators' own sampling variability, measured once
by simulating 400 independent replicates of each setting (fixed keys) with the
same estimators:

* i.i.d. N(0, 1), C=4 chains x K=500 draws: bulk ESS / CK has mean 0.990 and
  standard deviation 0.055; split R-hat has mean 1.000, sd 0.001, max 1.005.
* AR(1) with rho=0.9, C=4 x K=5000: ESS / CK has mean 0.0524 (theory
  (1 - rho) / (1 + rho) = 0.0526) and sd 0.0043, i.e. 8.2% relative.
"""
import warnings
from typing import NamedTuple

import blackjax.diagnostics
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from bayesjax import diagnostics
from bayesjax.run import DivergenceError, DivergenceWarning


class ToyState(NamedTuple):
    position: dict
    anchor: dict  # the chain's initial params
    t: jax.Array  # steps taken


class ToyInfo(NamedTuple):
    acceptance_rate: jax.Array
    step_size: jax.Array
    step: jax.Array
    is_sample: jax.Array


def toy_chain(update):
    """A Markov chain whose next position is ``update(key, state, t)`` (t counted from 1)."""

    def init(key, params):
        return ToyState(params, params, jnp.zeros((), jnp.int32))

    def step(key, state, batch):
        t = state.t + 1
        info = ToyInfo(jnp.where(t <= 10, 0.0, 0.8), 1.0 / t, t.astype(jnp.float32), jnp.asarray(True))
        return ToyState(update(key, state, t), state.anchor, t), info

    def sample(key, state, n):
        return bj.base.repeat_params(state.position, n)

    return bj.Algorithm(init, step, sample)


def noise_like(key, tree):
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return treedef.unflatten([jax.random.normal(k, leaf.shape, leaf.dtype) for k, leaf in zip(keys, leaves)])


def iid():
    return toy_chain(lambda key, state, t: noise_like(key, state.position))


def ar1(rho):
    scale = np.sqrt(1 - rho**2)
    return toy_chain(lambda key, state, t: jax.tree.map(
        lambda p, z: rho * p + scale * z, state.position, noise_like(key, state.position)))


DATA = (np.zeros((4, 1), np.float32), np.zeros(4, np.float32))
PARAMS = {"w": jnp.zeros((3, 3)), "b": jnp.zeros(())}
C, K = 4, 500


def run(algo, params=PARAMS, num_steps=K, num_chains=C, **kwargs):
    return bj.run(jax.random.key(0), algo, params, DATA, num_steps=num_steps, num_chains=num_chains,
                  progress=False, **kwargs)


@pytest.fixture(scope="module")
def iid_posterior():
    return run(iid())


@pytest.fixture(scope="module")
def counter_posterior():
    """Positions record their step t; 40 steps, burn-in 10, thin 2: 15 kept, the last 8 buffered."""
    counter = toy_chain(lambda key, state, t: {"t": t.astype(jnp.float32), "w": jax.random.normal(key, (30,))})
    return run(counter, {"t": jnp.zeros(()), "w": jnp.zeros(30)}, num_steps=40, burnin=10, thin=2, num_samples=8)


KEPT_STEPS = np.tile(np.arange(26, 41, 2), (C, 1))  # the last 8 of steps 12, 14, ..., 40


@pytest.fixture(scope="module")
def ar1_posterior():
    """AR(1) chains with rho = 0.9 from a stationary start, 4 x 5000 draws of 8 elements."""
    return run(ar1(0.9), lambda key: {"w": jax.random.normal(key, (8,))}, num_steps=5000)


def numpy_split_rhat(x):
    """BDA3 eq. (11.4) on split chains, float64, elementwise over trailing axes."""
    x = np.asarray(x, np.float64)
    half = x.shape[1] // 2
    x = np.concatenate([x[:, :half], x[:, -half:]])
    n = x.shape[1]
    w = x.var(axis=1, ddof=1).mean(axis=0)
    b = n * x.mean(axis=1).var(axis=0, ddof=1)
    return np.sqrt(((n - 1) / n * w + b / n) / w)


def test_chain_samples_are_time_ordered(iid_posterior, counter_posterior):
    draws = diagnostics.chain_samples(iid_posterior)
    assert draws["w"].shape == (C, K, 3, 3) and draws["b"].shape == (C, K)
    np.testing.assert_array_equal(draws["w"], iid_posterior.state.buffer["w"])  # buffer never wrapped
    # A wrapped ring buffer keeps the latest draws, oldest first.
    np.testing.assert_array_equal(diagnostics.chain_samples(counter_posterior)["t"], KEPT_STEPS)


def test_iid_chains_have_rhat_one_and_full_ess(iid_posterior):
    draws = diagnostics.chain_samples(iid_posterior)
    rhat, ess = diagnostics.split_rhat(draws), diagnostics.ess(draws)
    assert jax.tree.map(jnp.shape, rhat) == {"w": (3, 3), "b": ()}
    for name in draws:
        np.testing.assert_allclose(rhat[name], numpy_split_rhat(draws[name]), rtol=1e-5)
    rhat = np.concatenate([np.ravel(r) for r in jax.tree.leaves(rhat)])
    relative = np.concatenate([np.ravel(e) for e in jax.tree.leaves(ess)]) / (C * K)
    assert np.all((rhat > 0.99) & (rhat < 1.02)), rhat  # sd 0.001: > 10 sd either way
    # Each of the 10 independent elements within 4 sd (0.22) of 1; their mean within 3 sd / sqrt(10).
    assert np.all(np.abs(relative - 1) < 4 * 0.055), relative
    assert abs(relative.mean() - 1) < 3 * 0.055 / np.sqrt(relative.size), relative.mean()


def test_ess_of_ar1_chains_matches_the_integrated_autocorrelation_time(ar1_posterior):
    rho, num_draws, post = 0.9, 5000, ar1_posterior
    relative = np.asarray(diagnostics.ess(diagnostics.chain_samples(post))["w"]) / (C * num_draws)
    expected = (1 - rho) / (1 + rho)
    # Relative sd 8.2% per element: each within 30% (3.6 sd), the mean of 8 within 10% (3.5 sd / sqrt(8)).
    np.testing.assert_allclose(relative, expected, rtol=0.30)
    np.testing.assert_allclose(relative.mean(), expected, rtol=0.10)
    # Stationary chains: with tau = (1 + rho) / (1 - rho) = 19 and N = 2500 draws per half-chain,
    # split R-hat ~ 1 + (tau chi2_7 / 7 - 1) / 2N (mean 1.0036, as simulated); P(R > 1.02) = P(chi2_7 > 37) ~ 4e-6.
    assert np.all(np.asarray(diagnostics.split_rhat(diagnostics.chain_samples(post))["w"]) < 1.02)


def test_chains_stuck_at_different_offsets_have_large_rhat():
    stuck = toy_chain(lambda key, state, t: jax.tree.map(
        lambda a, z: a + 0.1 * z, state.anchor, noise_like(key, state.anchor)))
    post = run(stuck, lambda key: {"w": 3.0 * jax.random.normal(key, (4,))})
    offsets = np.asarray(post.state.inner.anchor["w"])
    assert np.all(np.std(offsets, axis=0) > 0.5)  # the chains really are apart
    result = diagnostics.weight_space(post)
    assert result["rhat"].shape == (4,) and np.all(result["rhat"] > 1.1), result["rhat"]
    assert diagnostics.summary(post)["rhat_max"] > 1.1


def test_split_rhat_catches_a_shared_trend_that_plain_rhat_misses():
    trend = toy_chain(lambda key, state, t: {"w": 3.0 * t / K + jax.random.normal(key, (4,))})
    post = run(trend, {"w": jnp.zeros(4)})
    draws = diagnostics.chain_samples(post)["w"]
    plain = blackjax.diagnostics.potential_scale_reduction(draws)
    split = diagnostics.split_rhat(draws)
    # Halves differ in mean by 1.5 against a within-half sd of ~1.1: expected split R-hat ~1.24.
    assert np.all(np.asarray(plain) < 1.05), plain
    assert np.all(np.asarray(split) > 1.1), split


def linear(params, x):
    return x @ params["w"][:, :1]


def logistic(params, x):
    f = linear(params, x)
    return jnp.concatenate([jnp.zeros_like(f), f], axis=-1)


def test_function_space_shapes_and_agreement_with_weight_space(iid_posterior):
    post = iid_posterior
    weights = diagnostics.weight_space(post, select=lambda p: p["w"][:2, 0])
    # Probes picking out w00 and 2 w10: split R-hat and ESS are invariant to positive affine maps.
    probes = jnp.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    regression = diagnostics.function_space(post, linear, probes, bj.likelihoods.gaussian(0.5))
    assert regression["rhat"].shape == regression["ess"].shape == (2,)
    np.testing.assert_allclose(regression["rhat"], weights["rhat"], rtol=1e-4)
    np.testing.assert_allclose(regression["ess"], weights["ess"], rtol=1e-4)
    # Log class probabilities of logits (0, f) are monotone in f and bulk ESS is rank-based: unchanged.
    classification = diagnostics.function_space(post, logistic, probes, bj.likelihoods.categorical())
    assert classification["rhat"].shape == classification["ess"].shape == (2, 2)
    np.testing.assert_allclose(classification["ess"], np.stack([weights["ess"]] * 2, -1), rtol=1e-4)
    chunked = diagnostics.function_space(post, logistic, probes, bj.likelihoods.categorical(), chunk_size=300)
    np.testing.assert_allclose(chunked["rhat"], classification["rhat"], rtol=1e-6)


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


def test_diverged_chains_are_excluded_with_a_warning():
    # A chain whose starting point has a negative first entry turns NaN at step 50.
    diverging = toy_chain(lambda key, state, t: jax.tree.map(
        lambda a, z: jnp.where((t == 50) & (a[0] < 0), jnp.nan, z), state.anchor, noise_like(key, state.anchor)))
    with pytest.warns(DivergenceWarning):
        post = run(diverging, lambda key: {"w": jax.random.normal(key, (4,))}, num_chains=6)
    bad = np.flatnonzero(np.asarray(post.state.inner.anchor["w"][:, 0]) < 0)
    assert 0 < len(bad) < 6 and set(post.divergences) == set(bad.tolist())
    good = np.setdiff1d(np.arange(6), bad)
    with pytest.warns(DivergenceWarning, match=f"chain {bad[0]} diverged at step 50"):
        draws = diagnostics.chain_samples(post)
    np.testing.assert_array_equal(draws["w"], np.asarray(post.state.buffer["w"])[good])
    with pytest.warns(DivergenceWarning):
        result = diagnostics.summary(post)
    assert np.isfinite(result["rhat_max"]) and result["num_divergent_chains"] == len(bad)
    assert result["num_chains"] == len(good)
    every_chain = post._replace(state=post.state._replace(diverged_at=jnp.full((6,), 50)))
    with pytest.raises(DivergenceError):
        diagnostics.chain_samples(every_chain)


def test_non_chains_and_empty_buffers_are_rejected(iid_posterior):
    unbuffered = iid_posterior._replace(state=iid_posterior.state.inner)  # as a MAP/VI/Laplace state
    with pytest.raises(ValueError, match="Markov chain"):
        diagnostics.weight_space(unbuffered)
    # What a run whose algorithm never marks a step as a sample (info.is_sample False) leaves.
    empty = iid_posterior._replace(state=iid_posterior.state._replace(num_collected=jnp.zeros((C,), jnp.int32)))
    with pytest.raises(ValueError, match="no samples"):
        diagnostics.chain_samples(empty)
    with pytest.raises(ValueError, match="at least 4 draws"):
        diagnostics.split_rhat({"w": jnp.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"same \[chains, draws\]"):
        diagnostics.ess({"a": jnp.zeros((2, 8)), "b": jnp.zeros((2, 6))})


@pytest.fixture(scope="module")
def arviz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # arviz 0.2x announces its 1.0 refactor
        return pytest.importorskip("arviz")


def test_estimators_agree_with_arviz(arviz, iid_posterior, ar1_posterior):
    for posterior in (iid_posterior, ar1_posterior):
        draws = diagnostics.chain_samples(posterior)
        rhat, ess = diagnostics.split_rhat(draws), diagnostics.ess(draws)
        for name, leaf in draws.items():
            x = np.asarray(leaf, np.float64).reshape(leaf.shape[:2] + (-1,))  # arviz takes one element at a time
            expected_rhat = [arviz.rhat(x[..., e], method="split") for e in range(x.shape[-1])]
            expected_ess = [arviz.ess(x[..., e], method="bulk") for e in range(x.shape[-1])]
            np.testing.assert_allclose(np.ravel(rhat[name]), expected_rhat, rtol=1e-4)
            np.testing.assert_allclose(np.ravel(ess[name]), expected_ess, rtol=1e-3)


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
