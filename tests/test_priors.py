"""Tests for bayesjax.priors against SciPy and the initialization formulas."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from bayesjax import models, priors

if hasattr(jax, "enable_x64"):  # jax >= 0.8
    _enable_x64 = jax.enable_x64
else:  # older jax
    from jax.experimental import enable_x64 as _enable_x64

KEY = jax.random.key(0)


# Sampling code compiles one RNG computation per leaf, and XLA's CPU compile of
# these dominates this file's run time: trees are kept small, and each prior's
# sampler is compiled once (jitted, reused for every key).
_VALUES = np.random.default_rng(42).normal(size=19)


def _params(dtype=jnp.float32):
    """Four leaves: a kernel, two equally shaped biases and a scalar."""
    v = jnp.asarray(_VALUES, dtype)
    return {
        "layer": {"kernel": 0.8 * v[:12].reshape(4, 3), "bias": v[12:15]},
        "other": {"bias": v[15:18]},
        "scalar": v[18],
    }


def _scipy_log_prob(dist, params):
    return sum(dist.logpdf(np.asarray(leaf, np.float64)).sum() for leaf in jax.tree.leaves(params))


@pytest.mark.parametrize(
    "prior, dist",
    [
        (priors.gaussian(0.7), stats.norm(0.0, 0.7)),
        (priors.laplace(0.5), stats.laplace(0.0, 0.5)),
        (priors.student_t(3.0, 0.8), stats.t(3.0, 0.0, 0.8)),
        (priors.student_t(0.5), stats.t(0.5)),
    ],
    ids=["gaussian", "laplace", "student_t", "cauchy_like"],
)
def test_log_prob_matches_scipy(prior, dist):
    params = _params()
    expected = _scipy_log_prob(dist, params)
    np.testing.assert_allclose(jax.jit(prior.log_prob)(params), expected, rtol=1e-5)


def test_stddev_only_for_gaussian_priors():
    params = _params()
    std = priors.gaussian(0.3).stddev(params)
    for leaf, s in zip(jax.tree.leaves(params), jax.tree.leaves(std)):
        assert s.shape == leaf.shape and s.dtype == leaf.dtype
        np.testing.assert_array_equal(s, np.full(leaf.shape, 0.3, np.float32))
    assert priors.laplace().stddev is None
    assert priors.student_t(3.0).stddev is None


def _filled(model, x_shape, seed):
    """The model's parameter tree, filled from NumPy (no RNG compile)."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(model.init, KEY, jax.ShapeDtypeStruct(x_shape, jnp.float32))
    return jax.tree.map(lambda s: jnp.asarray(0.1 * rng.normal(size=s.shape), s.dtype), shapes)


_TREES = {
    "mlp": _filled(models.mlp([16, 8], num_outputs=3), (1, 64), 0),
    "cnn": _filled(models.cnn(num_outputs=10, channels=(4, 8), hidden=16), (1, 8, 8, 1), 1),
}
_INITS = ["xavier", "lecun", "he"]
_WEIGHT_SCALE, _BIAS_SCALE = 1.5, 0.5


def _expected_layerwise_std(shape, init):
    if len(shape) <= 1:
        return _BIAS_SCALE
    if len(shape) == 2:  # dense
        fan_in, fan_out = shape
    else:  # conv [kh, kw, cin, cout]
        kh, kw, cin, cout = shape
        fan_in, fan_out = kh * kw * cin, kh * kw * cout
    variance = {"xavier": 2.0 / (fan_in + fan_out), "lecun": 1.0 / fan_in, "he": 2.0 / fan_in}[init]
    return _WEIGHT_SCALE * math.sqrt(variance)


def _layerwise(init):
    return priors.layerwise(init, weight_scale=_WEIGHT_SCALE, bias_scale=_BIAS_SCALE)


@pytest.mark.parametrize("init", _INITS)
@pytest.mark.parametrize("tree", _TREES)
def test_layerwise_stddev_and_log_prob(init, tree):
    params = _TREES[tree]
    prior = _layerwise(init)
    expected = [_expected_layerwise_std(leaf.shape, init) for leaf in jax.tree.leaves(params)]

    # The stddev tree, exactly, with each leaf's shape and dtype.
    std = prior.stddev(params)
    assert jax.tree.structure(std) == jax.tree.structure(params)
    for s, e, leaf in zip(jax.tree.leaves(std), expected, jax.tree.leaves(params)):
        assert s.shape == leaf.shape and s.dtype == leaf.dtype
        np.testing.assert_allclose(s, np.full(leaf.shape, e), rtol=1e-6)

    # log_prob: Gaussian with those stds, summed over leaves.
    lp = sum(
        stats.norm(0.0, e).logpdf(np.asarray(leaf, np.float64)).sum()
        for leaf, e in zip(jax.tree.leaves(params), expected)
    )
    np.testing.assert_allclose(jax.jit(prior.log_prob)(params), lp, rtol=1e-5)


def test_layerwise_empirical_std():
    """Sample std of every leaf, for every init, within 3 Monte Carlo errors.

    Elements of a leaf are iid, so one draw of a wide CNN (conv and dense
    kernels of 288 to 32768 entries) is a large sample: for N iid N(0, s^2)
    values, sqrt(mean(x^2)) has standard error s / sqrt(2N). All inits use the
    same key, so XLA shares one draw among them (XLA's CPU compile of each
    leaf's RNG dominates this test's time; sample_params would vmap it).
    """
    wide = _filled(models.cnn(num_outputs=10, channels=(32, 64), hidden=128), (1, 8, 8, 1), 2)
    draws = jax.jit(
        lambda key: {init: _layerwise(init).sample(key, wide) for init in _INITS}
    )(jax.random.key(7))
    for init in _INITS:
        for leaf in jax.tree.leaves(draws[init]):
            expected = _expected_layerwise_std(leaf.shape, init)
            empirical = math.sqrt(np.mean(np.square(np.asarray(leaf, np.float64))))
            assert abs(empirical - expected) < 3 * expected / math.sqrt(2 * leaf.size), (
                init, leaf.shape, empirical, expected
            )


@pytest.mark.parametrize("family", ["laplace", "student_t"])
def test_layerwise_heavy_tailed_families_scale_per_layer(family):
    """The He scale a_l of each leaf is the Laplace / Student-t scale parameter: log_prob matches scipy."""
    params = _TREES[next(iter(_TREES))]
    prior = priors.layerwise("he", _WEIGHT_SCALE, _BIAS_SCALE, family=family, df=4.0)
    assert prior.stddev is None
    density = {"laplace": lambda e: stats.laplace(0.0, e), "student_t": lambda e: stats.t(4.0, 0.0, e)}[family]
    expected = sum(density(_expected_layerwise_std(leaf.shape, "he")).logpdf(np.asarray(leaf, np.float64)).sum()
                   for leaf in jax.tree.leaves(params))
    np.testing.assert_allclose(jax.jit(prior.log_prob)(params), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="family"):
        priors.layerwise("he", family="cauchy")


def test_layerwise_unknown_init_lists_choices():
    with pytest.raises(ValueError, match="he.*lecun.*xavier"):
        priors.layerwise("kaiming-uniform")


ALL_PRIORS = {
    "gaussian": priors.gaussian(0.5),
    "layerwise": priors.layerwise("he"),
    "laplace": priors.laplace(0.5),
    "student_t": priors.student_t(4.0, 0.5),
}


@pytest.mark.parametrize("name", ALL_PRIORS)
def test_sample_keeps_structure_and_dtype_and_is_deterministic(name):
    prior = ALL_PRIORS[name]
    params = _params()
    sample = jax.jit(prior.sample)
    draw = sample(KEY, params)
    assert jax.tree.structure(draw) == jax.tree.structure(params)
    for d, p in zip(jax.tree.leaves(draw), jax.tree.leaves(params)):
        assert d.shape == p.shape and d.dtype == p.dtype
        assert np.all(np.isfinite(d))
    # Same key, same draw; different key, different draw.
    same = sample(KEY, params)
    other = sample(jax.random.key(1), params)
    for a, b, c in zip(jax.tree.leaves(draw), jax.tree.leaves(same), jax.tree.leaves(other)):
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, c)
    # One key per leaf: equally shaped leaves get different noise.
    assert not np.allclose(draw["layer"]["bias"], draw["other"]["bias"])
    # Abstract shapes work as params_like.
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    assert jax.eval_shape(prior.sample, KEY, abstract) == abstract


@pytest.mark.parametrize("name", ALL_PRIORS)
def test_dtypes_preserved(name):
    prior = ALL_PRIORS[name]
    leaf = {"w": jnp.ones((2, 3), jnp.bfloat16)}
    assert prior.sample(KEY, leaf)["w"].dtype == jnp.bfloat16
    with _enable_x64(True):
        params64 = {"w": jnp.ones((2, 3), jnp.float64)}
        assert prior.sample(KEY, params64)["w"].dtype == jnp.float64
        assert prior.log_prob(params64).dtype == jnp.float64
        if prior.stddev is not None:
            assert prior.stddev(params64)["w"].dtype == jnp.float64


def test_gaussian_scale_traced_under_vmap():
    params = _params()
    scales = jnp.array([0.3, 1.0, 2.5])
    lps = jax.jit(jax.vmap(lambda s: priors.gaussian(s).log_prob(params)))(scales)
    expected = [_scipy_log_prob(stats.norm(0.0, float(s)), params) for s in scales]
    np.testing.assert_allclose(lps, expected, rtol=1e-5)

    # Same key at every scale: each draw is the unit-scale draw times the scale.
    draws, base = jax.jit(
        lambda: (
            jax.vmap(lambda s: priors.gaussian(s).sample(KEY, params))(scales),
            priors.gaussian(1.0).sample(KEY, params),
        )
    )()
    for d, b in zip(jax.tree.leaves(draws), jax.tree.leaves(base)):
        np.testing.assert_allclose(d, scales.reshape((3,) + (1,) * b.ndim) * b, rtol=1e-5)

    stds = jax.vmap(lambda s: priors.gaussian(s).stddev(params))(scales)
    np.testing.assert_allclose(stds["layer"]["kernel"][:, 0, 0], scales)


def test_other_scales_may_be_traced():
    params = _params()
    lp = jax.jit(lambda df, s: priors.student_t(df, s).log_prob(params))(3.0, 0.8)
    np.testing.assert_allclose(lp, _scipy_log_prob(stats.t(3.0, 0.0, 0.8), params), rtol=1e-5)
    lp = jax.jit(lambda s: priors.laplace(s).log_prob(params))(0.5)
    np.testing.assert_allclose(lp, _scipy_log_prob(stats.laplace(0.0, 0.5), params), rtol=1e-5)
    std = jax.jit(lambda w: priors.layerwise("lecun", weight_scale=w).stddev(params))(2.0)
    np.testing.assert_allclose(std["layer"]["kernel"], np.full((4, 3), 2.0 / 2.0), rtol=1e-6)


@pytest.mark.parametrize(
    "build",
    [
        lambda: priors.gaussian(0.0),
        lambda: priors.gaussian(-1.0),
        lambda: priors.gaussian(float("nan")),
        lambda: priors.laplace(0.0),
        lambda: priors.student_t(0.0),
        lambda: priors.student_t(3.0, scale=-2.0),
        lambda: priors.layerwise("he", weight_scale=0.0),
        lambda: priors.layerwise("he", bias_scale=-1.0),
    ],
)
def test_bad_scale_raises(build):
    with pytest.raises(ValueError, match="must be finite and > 0"):
        build()


def test_sample_params_leading_axis():
    model = models.mlp([4], num_outputs=2)
    params = _filled(model, (1, 3), 0)
    draws = jax.jit(lambda key: priors.sample_params(priors.layerwise(), key, params, 6))(KEY)
    for d, p in zip(jax.tree.leaves(draws), jax.tree.leaves(params)):
        assert d.shape == (6,) + p.shape and d.dtype == p.dtype
    kernels = np.asarray(draws["Dense_0"]["kernel"])
    assert len({kernels[i].tobytes() for i in range(6)}) == 6
    # Prior draws feed a vmapped apply directly.
    out = jax.vmap(model.apply, (0, None))(draws, jnp.ones((7, 3)))
    assert out.shape == (6, 7, 2)


def test_empty_tree():
    assert float(priors.gaussian().log_prob({})) == 0.0
    assert priors.gaussian().sample(KEY, {}) == {}
