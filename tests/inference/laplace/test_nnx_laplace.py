"""KFAC and last-layer Laplace on flax.nnx models (laplace/layers.py, laplace/interception.py).

The same network with the same weights (and BatchNorm statistics), built in
linen and in nnx, gives the same Kronecker factors, precision and last-layer
GLM predictive: the tapped layers see the same inputs and output gradients
whichever API holds them.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import bayesjax as bj
from bayesjax.inference.laplace.layers import last_layer
from tests.helpers.compiles import count_compiles

N, CLASSES = 24, 3
pytestmark = pytest.mark.filterwarnings("ignore:bj.laplace. params_map is not at a mode")


def pool_flatten(h):
    return bj.models.avg_pool_2x2(h).reshape(h.shape[0], -1)


class LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(CLASSES, name="out")(jnp.tanh(nn.Dense(8, name="hidden")(x)))


class NNXMLP(nnx.Module):
    def __init__(self, rngs):
        self.hidden, self.out = nnx.Linear(4, 8, rngs=rngs), nnx.Linear(8, CLASSES, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))


class LinenCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = jnp.tanh(nn.Conv(3, (3, 3), name="conv")(x))
        h = jnp.tanh(nn.Conv(4, (2, 2), strides=2, padding="VALID", name="strided")(h))
        return nn.Dense(CLASSES, name="out")(pool_flatten(h))


class NNXCNN(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(2, 3, (3, 3), rngs=rngs)
        self.strided = nnx.Conv(3, 4, (2, 2), strides=2, padding="VALID", rngs=rngs)
        self.out = nnx.Linear(4, CLASSES, rngs=rngs)

    def __call__(self, x):
        h = jnp.tanh(self.strided(jnp.tanh(self.conv(x))))
        return self.out(pool_flatten(h))


class LinenBN(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.BatchNorm(use_running_average=not train, name="bn")(nn.Dense(8, name="hidden")(x))
        return nn.Dense(CLASSES, name="out")(nn.relu(h))


class NNXBN(nnx.Module):
    def __init__(self, rngs):
        self.hidden, self.bn = nnx.Linear(4, 8, rngs=rngs), nnx.BatchNorm(8, rngs=rngs)
        self.out = nnx.Linear(8, CLASSES, rngs=rngs)

    def __call__(self, x):
        return self.out(jax.nn.relu(self.bn(self.hidden(x))))


def data(shape):
    keys = jax.random.split(jax.random.key(0), 3)
    x, x_test = jax.random.normal(keys[0], (N,) + shape), jax.random.normal(keys[1], (7,) + shape)
    return x, jax.random.randint(keys[2], (N,), 0, CLASSES), x_test


def build_pair(linen_module, nnx_factory, shape):
    """Both models with the linen model's weights; BatchNorm statistics made non-trivial and shared."""
    x, y, x_test = data(shape)
    linen, nnx_model = bj.models.from_flax(linen_module), bj.models.from_flax(nnx_factory)
    variables = linen.init(jax.random.key(1), x[:1])
    if not isinstance(variables, bj.models.Variables):
        return x, y, x_test, [(linen, variables), (nnx_model, variables)]
    keys = jax.random.split(jax.random.key(2), 4)
    stats = {"mean": jax.random.normal(keys[0], (8,)), "var": jax.random.uniform(keys[1], (8,), minval=0.5, maxval=2)}
    params = {**variables.params, "bn": {"scale": jax.random.uniform(keys[2], (8,), minval=0.5, maxval=1.5),
                                         "bias": jax.random.normal(keys[3], (8,))}}
    linen_vars = bj.models.Variables(params, {"batch_stats": {"bn": stats}})
    return x, y, x_test, [(linen, linen_vars), (nnx_model, bj.models.Variables(params, {"bn": stats}))]


CASES = {
    "mlp": (LinenMLP(), lambda rngs: NNXMLP(rngs), (4,), "all"),
    "cnn": (LinenCNN(), lambda rngs: NNXCNN(rngs), (6, 6, 2), "all"),
    # BatchNorm's scale and bias are weights KFAC cannot factor: the dense layers are the subset.
    "batchnorm": (LinenBN(), lambda rngs: NNXBN(rngs), (4,), ("hidden", "out")),
}


def weights_and_apply(model, variables):
    if isinstance(variables, bj.models.Variables):
        return variables.params, lambda p, x: model.apply(bj.models.Variables(p, variables.state), x)
    return variables, model.apply


@pytest.mark.parametrize("case", CASES)
def test_kfac_and_last_layer_laplace_equal_in_linen_and_nnx(case):
    linen_module, nnx_factory, shape, subset = CASES[case]
    x, y, x_test, models = build_pair(linen_module, nnx_factory, shape)
    results = []
    for model, variables in models:
        lj = bj.log_joint(model, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=N)
        kfac = bj.laplace(lj, variables, (x, y), hessian="kfac", subset=subset)
        params, apply = weights_and_apply(model, variables)
        names = last_layer(apply, params, x)
        head = bj.laplace(lj, variables, (x, y), hessian="kfac", subset="last_layer")  # found by tracing
        assert set(head.curvature.factors) == set(names)
        results.append((kfac, names, head.functional_covariance(x_test), head.predictive_glm(x_test).probs))
    (linen_kfac, linen_names, *linen_glm), (nnx_kfac, nnx_names, *nnx_glm) = results
    assert linen_names == nnx_names == ("out",)
    expected_layers = {"mlp": {"hidden", "out"}, "cnn": {"conv", "strided", "out"}, "batchnorm": {"hidden", "out"}}
    assert set(nnx_kfac.curvature.factors) == expected_layers[case]
    for key, factor in linen_kfac.curvature.factors.items():
        np.testing.assert_allclose(nnx_kfac.curvature.factors[key].A, factor.A, rtol=1e-5, atol=1e-5, err_msg=key)
        np.testing.assert_allclose(nnx_kfac.curvature.factors[key].G, factor.G, rtol=1e-5, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(nnx_kfac.precision_matrix(), linen_kfac.precision_matrix(), rtol=1e-5, atol=1e-5)
    for nnx_value, linen_value in zip(jax.tree.leaves(nnx_glm), jax.tree.leaves(linen_glm)):
        np.testing.assert_allclose(nnx_value, linen_value, rtol=1e-5, atol=1e-6)


class NNXList(nnx.Module):
    """``NNXMLP`` with its layers in an ``nnx.List``: parameter paths with integer keys."""

    def __init__(self, rngs):
        self.layers = nnx.List([nnx.Linear(4, 8, rngs=rngs), nnx.Linear(8, CLASSES, rngs=rngs)])

    def __call__(self, x):
        return self.layers[1](jnp.tanh(self.layers[0](x)))


def test_layers_in_an_nnx_list_are_tapped_under_their_integer_keys():
    x, y, x_test, [(linen, params), _] = build_pair(LinenMLP(), lambda rngs: NNXMLP(rngs), (4,))
    listed = bj.models.from_flax(lambda rngs: NNXList(rngs))
    posts = []
    for model, weights in ((linen, params), (listed, {"layers": {0: params["hidden"], 1: params["out"]}})):
        lj = bj.log_joint(model, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=N)
        posts.append(bj.laplace(lj, weights, (x, y), hessian="kfac"))
    linen_post, list_post = posts
    assert set(list_post.curvature.factors) == {"layers/0", "layers/1"}
    for linen_key, list_key in (("hidden", "layers/0"), ("out", "layers/1")):
        for linen_factor, list_factor in zip(linen_post.curvature.factors[linen_key],
                                             list_post.curvature.factors[list_key]):
            np.testing.assert_allclose(list_factor, linen_factor, rtol=1e-5, atol=1e-6)
    for list_value, linen_value in zip(list_post.functional_covariance(x_test),
                                       linen_post.functional_covariance(x_test)):
        np.testing.assert_allclose(list_value, linen_value, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(list_post.precision_matrix(), linen_post.precision_matrix(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="'layers/1' is not a top-level entry"):
        last_layer(listed.apply, list_post.mean, x)


class RawEinsum(nnx.Module):
    """A custom layer with a kernel and a bias but no nnx.Linear: nothing to intercept."""

    def __init__(self, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (8, CLASSES)))
        self.bias = nnx.Param(jnp.zeros(CLASSES))

    def __call__(self, x):
        return jnp.einsum("bi,ij->bj", x, self.kernel[...]) + self.bias[...]


class WithCustomHead(nnx.Module):
    def __init__(self, rngs):
        self.hidden, self.custom = nnx.Linear(4, 8, rngs=rngs), RawEinsum(rngs)

    def __call__(self, x):
        return self.custom(jnp.tanh(self.hidden(x)))


ORIGINAL_CALLS = (nnx.Linear.__call__, nnx.Conv.__call__)


def test_a_layer_that_cannot_be_found_is_named_before_anything_compiles():
    x, y, _ = data((4,))
    model = bj.models.from_flax(lambda rngs: WithCustomHead(rngs))
    params = model.init(jax.random.key(0), x[:1])
    lj = bj.log_joint(model, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=N)
    with count_compiles() as compiles, pytest.raises(ValueError, match="parameters 'custom' are not used by a flax"):
        bj.laplace(lj, params, (x, y), hessian="kfac")
    assert not [name for name in compiles if "fit" in name], compiles
    with pytest.raises(ValueError, match="returns something else"):
        last_layer(model.apply, params, x)
    assert (nnx.Linear.__call__, nnx.Conv.__call__) == ORIGINAL_CALLS  # nnx is left as it was


def test_last_layer_of_a_linen_model_is_its_output_dense():
    model = bj.models.mlp([5, 6], num_outputs=2)
    params = model.init(jax.random.key(0), jnp.zeros((1, 3)))
    assert last_layer(model.apply, params, jnp.zeros((2, 3))) == ("Dense_2",)
