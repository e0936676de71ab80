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


def _params(dtype=jnp.float32):
    k1, k2, k3 = jax.random.split(jax.random.key(42), 3)
    return {
        "layer": {
            "kernel": 0.8 * jax.random.normal(k1, (4, 3), dtype),
            "bias": jax.random.normal(k2, (3,), dtype),
        },
        "scalar": jax.random.normal(k3, (), dtype),
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
    np.testing.assert_allclose(prior.log_prob(params), expected, rtol=1e-5)
    np.testing.assert_allclose(jax.jit(prior.log_prob)(params), expected, rtol=1e-5)


def test_stddev_only_for_gaussian_priors():
    params = _params()
    std = priors.gaussian(0.3).stddev(params)
    for leaf, s in zip(jax.tree.leaves(params), jax.tree.leaves(std)):
        assert s.shape == leaf.shape and s.dtype == leaf.dtype
        np.testing.assert_array_equal(s, np.full(leaf.shape, 0.3, np.float32))
    assert priors.laplace().stddev is None
    assert priors.student_t(3.0).stddev is None


def _expected_layerwise_std(path, shape, init, weight_scale, bias_scale):
    del path
    if len(shape) <= 1:
        return bias_scale
    if len(shape) == 2:  # dense
        fan_in, fan_out = shape
    else:  # conv [kh, kw, cin, cout]
        kh, kw, cin, cout = shape
        fan_in, fan_out = kh * kw * cin, kh * kw * cout
    variance = {"xavier": 2.0 / (fan_in + fan_out), "lecun": 1.0 / fan_in, "he": 2.0 / fan_in}[init]
    return weight_scale * math.sqrt(variance)


_MLP_PARAMS = models.mlp([16, 8], num_outputs=3).init(KEY, jnp.ones((1, 64)))
_CNN_PARAMS = models.cnn(num_outputs=10, channels=(4, 8), hidden=16).init(KEY, jnp.ones((1, 8, 8, 1)))


@pytest.mark.parametrize("init", ["xavier", "lecun", "he"])
@pytest.mark.parametrize("params", [_MLP_PARAMS, _CNN_PARAMS], ids=["mlp", "cnn"])
def test_layerwise_variances(init, params):
    weight_scale, bias_scale = 1.5, 0.5
    prior = priors.layerwise(init, weight_scale=weight_scale, bias_scale=bias_scale)
    expected = jax.tree_util.tree_map_with_path(
        lambda path, leaf: _expected_layerwise_std(path, leaf.shape, init, weight_scale, bias_scale),
        params,
    )

    # stddev tree: exact, with each leaf's shape and dtype.
    std = prior.stddev(params)
    for s, e, leaf in zip(jax.tree.leaves(std), jax.tree.leaves(expected), jax.tree.leaves(params)):
        assert s.shape == leaf.shape and s.dtype == leaf.dtype
        np.testing.assert_allclose(s, np.full(leaf.shape, e), rtol=1e-6)

    # log_prob: Gaussian with those stds, summed over leaves.
    lp = sum(
        stats.norm(0.0, e).logpdf(np.asarray(leaf, np.float64)).sum()
        for leaf, e in zip(jax.tree.leaves(params), jax.tree.leaves(expected))
    )
    np.testing.assert_allclose(prior.log_prob(params), lp, rtol=1e-5)

    # Empirical std of a large sample within 3 Monte Carlo standard errors:
    # for N iid N(0, s^2) draws, sqrt(mean(x^2)) has standard error s / sqrt(2N).
    draws = jax.jit(lambda key: priors.sample_params(prior, key, params, 256))(
        jax.random.key(7)
    )
    for leaf, e in zip(jax.tree.leaves(draws), jax.tree.leaves(expected)):
        n = leaf.size
        empirical = math.sqrt(np.mean(np.square(np.asarray(leaf, np.float64))))
        assert abs(empirical - e) < 3 * e / math.sqrt(2 * n), (empirical, e, n)


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
    draw = jax.jit(prior.sample)(KEY, params)
    assert jax.tree.structure(draw) == jax.tree.structure(params)
    for d, p in zip(jax.tree.leaves(draw), jax.tree.leaves(params)):
        assert d.shape == p.shape and d.dtype == p.dtype
        assert np.all(np.isfinite(d))
    # Same key, same draw; different key, different draw.
    same = prior.sample(KEY, params)
    other = prior.sample(jax.random.key(1), params)
    for a, b, c in zip(jax.tree.leaves(draw), jax.tree.leaves(same), jax.tree.leaves(other)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
        assert not np.allclose(a, c)
    # One key per leaf: equally shaped leaves get different noise.
    twins = prior.sample(KEY, {"a": jnp.zeros(8), "b": jnp.zeros(8)})
    assert not np.allclose(twins["a"], twins["b"])
    # Abstract shapes work as params_like.
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    assert jax.tree.map(jnp.shape, prior.sample(KEY, abstract)) == jax.tree.map(jnp.shape, params)


@pytest.mark.parametrize("name", ALL_PRIORS)
def test_dtypes_preserved(name):
    prior = ALL_PRIORS[name]
    half = _params(jnp.bfloat16)
    draw = prior.sample(KEY, half)
    assert all(leaf.dtype == jnp.bfloat16 for leaf in jax.tree.leaves(draw))
    with _enable_x64(True):
        params64 = jax.tree.map(lambda leaf: jnp.asarray(leaf, jnp.float64), _params())
        draw = prior.sample(KEY, params64)
        assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(draw))
        assert prior.log_prob(params64).dtype == jnp.float64
        if prior.stddev is not None:
            assert all(s.dtype == jnp.float64 for s in jax.tree.leaves(prior.stddev(params64)))


def test_gaussian_scale_traced_under_vmap():
    params = _params()
    scales = jnp.array([0.3, 1.0, 2.5])
    lps = jax.jit(jax.vmap(lambda s: priors.gaussian(s).log_prob(params)))(scales)
    expected = [_scipy_log_prob(stats.norm(0.0, float(s)), params) for s in scales]
    np.testing.assert_allclose(lps, expected, rtol=1e-5)

    draws = jax.vmap(lambda s: priors.gaussian(s).sample(KEY, params))(scales)
    # Same key at every scale: the draws are the base draw times the scale.
    base = priors.gaussian(1.0).sample(KEY, params)
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
    with pytest.raises(ValueError, match="must be positive"):
        build()


def test_sample_params_leading_axis():
    params = _params()
    draws = priors.sample_params(priors.gaussian(1.0), KEY, params, 6)
    for d, p in zip(jax.tree.leaves(draws), jax.tree.leaves(params)):
        assert d.shape == (6,) + p.shape and d.dtype == p.dtype
    kernels = np.asarray(draws["layer"]["kernel"])
    assert len({kernels[i].tobytes() for i in range(6)}) == 6
    # Draws feed a vmapped apply directly.
    model = models.mlp([4], num_outputs=2)
    p0 = model.init(KEY, jnp.ones((1, 3)))
    out = jax.vmap(model.apply, (0, None))(
        priors.sample_params(priors.layerwise(), KEY, p0, 5), jnp.ones((7, 3))
    )
    assert out.shape == (5, 7, 2)


def test_empty_tree():
    assert float(priors.gaussian().log_prob({})) == 0.0
    assert priors.gaussian().sample(KEY, {}) == {}
