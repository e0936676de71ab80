"""flax.nnx models (bayesjax/models/nnx.py): the same network in linen and nnx gives the same numbers."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import bayesjax as bj

N = 64


class LinenNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn")(nn.Dense(8, name="hidden")(x))
        return nn.Dense(3, name="out")(nn.relu(h))


class NNXNet(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(4, 8, rngs=rngs)
        self.bn = nnx.BatchNorm(8, momentum=0.9, rngs=rngs)
        self.out = nnx.Linear(8, 3, rngs=rngs)

    def __call__(self, x):
        return self.out(jax.nn.relu(self.bn(self.hidden(x))))


@pytest.fixture(scope="module")
def pair():
    x = jax.random.normal(jax.random.key(0), (N, 4))
    y = jax.random.randint(jax.random.key(1), (N,), 0, 3)
    linen, nnx_model = bj.models.from_flax(LinenNet()), bj.models.from_flax(lambda rngs: NNXNet(rngs))
    linen_variables = linen.init(jax.random.key(2), x[:1])
    nnx_variables = bj.models.Variables(linen_variables.params, {"bn": linen_variables.state["batch_stats"]["bn"]})
    return x, y, (linen, linen_variables), (nnx_model, nnx_variables)


def test_init_gives_weights_and_statistics_by_attribute_name(pair):
    x, y, _, (model, _) = pair
    variables = model.init(jax.random.key(0), x[:1])
    assert variables.params["hidden"]["kernel"].shape == (4, 8)
    assert sorted(variables.state["bn"]) == ["mean", "var"]
    other = model.init(jax.random.key(1), x[:1])
    assert not np.allclose(variables.params["hidden"]["kernel"], other.params["hidden"]["kernel"])


@pytest.mark.parametrize("method", ["map", "sgld", "swag"])
def test_linen_and_nnx_give_equal_numbers(pair, method):
    x, y, *models = pair
    build = {"map": lambda lj: bj.map(lj, optax.adam(1e-2)), "sgld": lambda lj: bj.sgld(lj, 1e-2),
             "swag": lambda lj: bj.swag(lj, optax.sgd(1e-2, momentum=0.9), start_step=5)}[method]
    probs = []
    for model, variables in models:
        lj = bj.log_joint(model, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=N)
        post = bj.run(jax.random.key(3), build(lj), variables, (x, y), num_steps=15, batch_size=16, progress=False)
        probs.append(bj.predictive(model.apply, post.sample(jax.random.key(4), 3), x, lj.likelihood).probs)
    np.testing.assert_allclose(probs[0], probs[1], rtol=1e-5, atol=1e-6)


def test_diagonal_laplace_equal_on_a_network_without_state():
    x = jax.random.normal(jax.random.key(0), (N, 4))
    y = jax.random.randint(jax.random.key(1), (N,), 0, 3)

    class Linen(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(3, name="out")(jnp.tanh(nn.Dense(8, name="hidden")(x)))

    class NNX(nnx.Module):
        def __init__(self, rngs):
            self.hidden, self.out = nnx.Linear(4, 8, rngs=rngs), nnx.Linear(8, 3, rngs=rngs)

        def __call__(self, x):
            return self.out(jnp.tanh(self.hidden(x)))

    linen, nnx_model = bj.models.from_flax(Linen()), bj.models.from_flax(NNX(nnx.Rngs(0)))
    params = linen.init(jax.random.key(2), x[:1])
    variances = []
    for model in (linen, nnx_model):
        lj = bj.log_joint(model, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=N)
        la = bj.laplace(lj, params, (x, y), hessian="diag")
        variances.append(la.sample(jax.random.key(5), 4)["out"]["kernel"])
    np.testing.assert_allclose(variances[0], variances[1], rtol=1e-5, atol=1e-6)


def test_a_module_instance_keeps_its_weights_and_is_not_mutated():
    module = NNXNet(nnx.Rngs(0))
    model = bj.models.from_flax(module)
    before = module.hidden.kernel.value.copy()
    variables = model.init(jax.random.key(9), jnp.zeros((1, 4)))
    np.testing.assert_array_equal(variables.params["hidden"]["kernel"], before)
    model.apply(variables, jnp.ones((3, 4)))
    model.train_apply(variables.params, variables.state, jnp.ones((3, 4)), jax.random.key(0))
    np.testing.assert_array_equal(module.hidden.kernel.value, before)
    np.testing.assert_array_equal(module.bn.mean.value, np.zeros(8))
