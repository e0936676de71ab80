"""Tests for bayesjax.models: shapes, plain-dict params, vmap/jit, validation."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesjax import models

KEY = jax.random.key(0)


def _assert_plain_dicts(tree):
    assert type(tree) is dict
    for value in tree.values():
        if isinstance(value, dict) or hasattr(value, "items"):
            _assert_plain_dicts(value)


def _shapes(params):
    return jax.tree.map(jnp.shape, params)


# Shape checks trace with jax.eval_shape: no compilation, so the suite stays fast.


@pytest.mark.parametrize("x_shape", [(5, 64), (5, 8, 8, 1)])
def test_mlp_shapes_and_layer_names(x_shape):
    model = models.mlp([32, 16], num_outputs=10)
    x = jax.ShapeDtypeStruct(x_shape, jnp.float32)
    params = jax.eval_shape(model.init, KEY, x)
    _assert_plain_dicts(params)
    assert _shapes(params) == {
        "Dense_0": {"kernel": (64, 32), "bias": (32,)},
        "Dense_1": {"kernel": (32, 16), "bias": (16,)},
        "Dense_2": {"kernel": (16, 10), "bias": (10,)},
    }
    out = jax.eval_shape(model.apply, params, x)
    assert out.shape == (5, 10)
    assert out.dtype == jnp.float32


def test_init_returns_plain_dicts_of_arrays():
    params = models.mlp([4], num_outputs=2).init(KEY, jnp.ones((1, 3)))
    _assert_plain_dicts(params)
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(params))


def test_mlp_flattening_gives_the_same_function():
    model = models.mlp([8], num_outputs=3)
    x = jax.random.normal(KEY, (4, 8, 8, 1))
    params = model.init(KEY, x)
    np.testing.assert_allclose(
        model.apply(params, x), model.apply(params, x.reshape(4, 64)), rtol=1e-6
    )


def test_mlp_without_hidden_layers_is_linear():
    model = models.mlp([], num_outputs=2)
    params = jax.eval_shape(model.init, KEY, jnp.ones((1, 3)))
    assert _shapes(params) == {"Dense_0": {"kernel": (3, 2), "bias": (2,)}}


@pytest.mark.parametrize(
    "image, dense_in", [((8, 8, 1), 2 * 2 * 32), ((28, 28, 1), 7 * 7 * 32)]
)
def test_cnn_shapes(image, dense_in):
    model = models.cnn(num_outputs=10)
    x = jax.ShapeDtypeStruct((3,) + image, jnp.float32)
    params = jax.eval_shape(model.init, KEY, x)
    _assert_plain_dicts(params)
    assert _shapes(params) == {
        "Conv_0": {"kernel": (3, 3, 1, 16), "bias": (16,)},
        "Conv_1": {"kernel": (3, 3, 16, 32), "bias": (32,)},
        "Dense_0": {"kernel": (dense_in, 64), "bias": (64,)},
        "Dense_1": {"kernel": (64, 10), "bias": (10,)},
    }
    assert jax.eval_shape(model.apply, params, x).shape == (3, 10)
    no_channel = jax.ShapeDtypeStruct((3,) + image[:2], jnp.float32)
    assert _shapes(jax.eval_shape(model.init, KEY, no_channel)) == _shapes(params)


def test_cnn_numerics_and_missing_channel_axis():
    model = models.cnn(num_outputs=3, channels=(2,), hidden=4)
    x = jax.random.normal(KEY, (2, 8, 8))
    params = model.init(KEY, x)
    out = model.apply(params, x[..., None])
    assert out.shape == (2, 3) and np.all(np.isfinite(out))
    np.testing.assert_allclose(model.apply(params, x), out, rtol=1e-6)


def test_cnn_options():
    model = models.cnn(num_outputs=4, channels=(8,), kernel_size=(5, 3), hidden=12)
    params = jax.eval_shape(model.init, KEY, jnp.ones((1, 28, 28)))
    assert _shapes(params)["Conv_0"]["kernel"] == (5, 3, 1, 8)
    assert _shapes(params)["Dense_0"]["kernel"] == (14 * 14 * 8, 12)


def test_fortuin_cnn_shapes():
    model = models.fortuin_cnn(10)
    x = jax.ShapeDtypeStruct((3, 28, 28, 1), jnp.float32)
    params = jax.eval_shape(model.init, KEY, x)
    assert _shapes(params) == {
        "Conv_0": {"kernel": (3, 3, 1, 64), "bias": (64,)},
        "Conv_1": {"kernel": (3, 3, 64, 64), "bias": (64,)},
        "Dense_0": {"kernel": (7 * 7 * 64, 10), "bias": (10,)},
    }
    assert jax.eval_shape(model.apply, params, x).shape == (3, 10)


class _FlaxFortuin(nn.Module):
    """The Fortuin et al. CNN written with flax's own Conv and max_pool (XLA's convolution)."""

    @nn.compact
    def __call__(self, x):
        for _ in range(2):
            x = nn.max_pool(nn.relu(nn.Conv(8, (3, 3), padding="SAME")(x)), (2, 2), strides=(2, 2))
        return nn.Dense(3)(x.reshape(x.shape[0], -1))


def test_fortuin_cnn_equals_flax_layers():
    """Outputs and gradients equal the same network built from flax's layers, on odd image sizes too."""
    model = models.fortuin_cnn(3, width=8)
    x = jax.random.normal(KEY, (4, 13, 11, 2))
    params = model.init(KEY, x[:1])

    def loss(apply, p):
        return jnp.sum(jnp.sin(apply(p, x)))

    def flax_apply(p, x):
        return _FlaxFortuin().apply({"params": p}, x)

    np.testing.assert_allclose(jax.jit(model.apply)(params, x), flax_apply(params, x), rtol=1e-4, atol=1e-5)
    ours = jax.jit(jax.grad(loss, 1), static_argnums=0)(model.apply, params)
    theirs = jax.grad(loss, 1)(flax_apply, params)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(jnp.max(jnp.abs(b))))


@pytest.mark.parametrize("shape", [(2, 6, 6, 3), (2, 7, 5, 1)])
def test_pooling_equals_flax(shape):
    x = jax.random.normal(KEY, shape)
    np.testing.assert_array_equal(models.max_pool_2x2(x), nn.max_pool(x, (2, 2), strides=(2, 2)))
    np.testing.assert_allclose(models.avg_pool_2x2(x), nn.avg_pool(x, (2, 2), strides=(2, 2)), rtol=1e-6, atol=1e-7)
    r = jax.random.normal(jax.random.key(1), models.max_pool_2x2(x).shape)
    for ours, theirs in ((models.max_pool_2x2, lambda a: nn.max_pool(a, (2, 2), strides=(2, 2))),
                         (models.avg_pool_2x2, lambda a: nn.avg_pool(a, (2, 2), strides=(2, 2)))):
        np.testing.assert_allclose(jax.grad(lambda a: jnp.sum(ours(a) * r))(x),
                                   jax.grad(lambda a: jnp.sum(theirs(a) * r))(x), rtol=1e-6, atol=1e-7)


def test_apply_vmaps_over_stacked_params_and_jits():
    model = models.mlp([16], num_outputs=3)
    x = jax.random.normal(KEY, (7, 5))
    keys = jax.random.split(KEY, 4)
    stacked = jax.vmap(model.init, (0, None))(keys, x[:1])
    assert stacked["Dense_0"]["kernel"].shape == (4, 5, 16)

    out = jax.jit(jax.vmap(model.apply, (0, None)))(stacked, x)
    assert out.shape == (4, 7, 3)
    apply = jax.jit(model.apply)
    for s in range(4):
        params_s = jax.tree.map(lambda leaf: leaf[s], stacked)
        np.testing.assert_allclose(out[s], apply(params_s, x), rtol=1e-5, atol=1e-6)


def test_shape_mismatch_names_the_leaf():
    model = models.mlp([16], num_outputs=3)
    params = model.init(KEY, jnp.ones((1, 5)))
    with pytest.raises(ValueError, match=r"Dense_0/kernel.*\(5, 16\).*\(6, 16\)"):
        model.apply(params, jnp.ones((2, 6)))
    # Under jit the check runs at trace time, on static shapes.
    with pytest.raises(ValueError, match="Dense_0/kernel"):
        jax.jit(model.apply)(params, jnp.ones((2, 6)))

    bad = jax.tree.map(lambda leaf: leaf, params)
    bad["Dense_1"]["bias"] = jnp.zeros(4)
    with pytest.raises(ValueError, match=r"Dense_1/bias.*\(4,\).*\(3,\)"):
        model.apply(bad, jnp.ones((2, 5)))


def test_structure_mismatch_names_missing_and_unexpected_leaves():
    model = models.mlp([16], num_outputs=3)
    params = model.init(KEY, jnp.ones((1, 5)))
    missing = {"Dense_0": params["Dense_0"]}
    with pytest.raises(ValueError, match="missing leaves.*Dense_1/kernel"):
        model.apply(missing, jnp.ones((2, 5)))
    with pytest.raises(ValueError, match=r"not flax's \{'params'"):
        model.apply({"params": params}, jnp.ones((2, 5)))


class _Tiny(nn.Module):
    """A custom module: a dense layer and a learned output scale."""

    @nn.compact
    def __call__(self, x):
        scale = self.param("scale", nn.initializers.ones, (2,))
        return nn.Dense(2)(x) * scale


def test_from_flax_custom_module():
    model = models.from_flax(_Tiny())
    x = jax.random.normal(KEY, (3, 4))
    params = model.init(KEY, x)
    _assert_plain_dicts(params)
    assert _shapes(params) == {"scale": (2,), "Dense_0": {"kernel": (4, 2), "bias": (2,)}}
    expected = (x @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"]) * params["scale"]
    np.testing.assert_allclose(jax.jit(model.apply)(params, x), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="scale"):
        model.apply({**params, "scale": jnp.ones(3)}, x)


class _WithBatchStats(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.BatchNorm(use_running_average=True)(nn.Dense(2)(x))


def test_from_flax_rejects_non_param_collections():
    model = models.from_flax(_WithBatchStats())
    with pytest.raises(ValueError, match="batch_stats"):
        model.init(KEY, jnp.ones((1, 3)))


@pytest.mark.parametrize(
    "build",
    [
        lambda: models.mlp([0], num_outputs=2),
        lambda: models.mlp([4], num_outputs=0),
        lambda: models.mlp([2.5], num_outputs=2),
        lambda: models.cnn(num_outputs=2, channels=(0,)),
        lambda: models.cnn(num_outputs=2, kernel_size=(3, 3, 3)),
        lambda: models.cnn(num_outputs=2, pool="min"),
        lambda: models.cnn(num_outputs=2, hidden=0),
        lambda: models.fortuin_cnn(10, width=0),
    ],
)
def test_bad_architecture_arguments_raise(build):
    with pytest.raises(ValueError):
        build()


def test_mlp_dropout_is_a_training_mode():
    x = jnp.ones((4, 6))
    plain, dropping = models.mlp([16], 3), models.mlp([16], 3, dropout=0.5)
    assert plain.train_apply is None
    params = dropping.init(jax.random.key(0), x[:1])
    np.testing.assert_array_equal(dropping.apply(params, x), plain.apply(params, x))  # evaluation: no dropout
    trained, state = dropping.train_apply(params, None, x, jax.random.key(1))
    assert not state and not np.allclose(trained, plain.apply(params, x))
    with pytest.raises(ValueError, match="dropout"):
        models.mlp([16], 3, dropout=1.0)
