"""bj.map: the mode of the tempered log-joint, reached on Bayesian linear regression, as a point-mass posterior."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj
from bayesjax.inference.map import MAPInfo, MAPState
from tests.helpers import linear_problem
from tests.helpers.linear_problem import NOISE, PRIOR, D

N = 50
data = functools.partial(linear_problem.data, N)


def gradient_descent(log_joint, batch):
    """optax SGD at 1 / the largest curvature of the quadratic per-example loss: it converges linearly to the mode."""
    hessian = jax.hessian(lambda w: log_joint.loss({"w": w}, batch))(jnp.zeros(D))
    return optax.sgd(1.0 / float(jnp.linalg.eigvalsh(hessian).max()))


def closed_form_mode(x, y, temperature, tempering):
    """The tempered posterior is Gaussian, so its mode is the exact posterior mean."""
    mean, _ = bj.linear.posterior(jnp.asarray(x), jnp.asarray(y), NOISE, PRIOR, temperature=temperature,
                                  tempering=tempering)
    return np.asarray(mean)


@pytest.mark.parametrize("temperature,tempering", [(1.0, "posterior"), (0.1, "posterior"), (0.5, "likelihood")])
def test_reaches_the_closed_form_map(temperature, tempering):
    x, y = data()
    with jax.enable_x64(True):
        lj = linear_problem.log_joint(N, temperature, tempering)
        algo = bj.map(lj, gradient_descent(lj, (x, y)))
        post = bj.run(jax.random.key(0), algo, {"w": jnp.zeros(D)}, (x, y), num_steps=200, progress=False)
        samples = np.asarray(post.sample(jax.random.key(1), 4)["w"])
        mode = closed_form_mode(x, y, temperature, tempering)
        untempered = closed_form_mode(x, y, 1.0, "posterior")
    assert samples.shape == (4, D)
    np.testing.assert_allclose(samples, np.broadcast_to(mode, (4, D)), rtol=1e-8, atol=1e-10)  # a point mass
    if tempering == "posterior":  # p(D|w)^(1/T) p(w)^(1/T) has the mode of T = 1
        np.testing.assert_allclose(mode, untempered, rtol=1e-8)
    else:  # likelihood tempering sharpens only the likelihood: the mode moves
        assert not np.allclose(mode, untempered, rtol=1e-3)


def apply(params, x):
    return x @ params["w"][:, None] + params["b"]


def test_state_info_and_samples():
    x, y = (a.astype(np.float32) for a in data())
    lj = bj.log_joint(apply, bj.priors.gaussian(PRIOR), bj.likelihoods.gaussian(NOISE), num_data=N)
    optimizer = optax.adam(1e-2)
    algo = bj.map(lj, optimizer)
    assert bj.map(lj, optimizer) is algo  # equal builds are one algorithm (one compile)
    params = {"w": jnp.ones(D, jnp.float32), "b": jnp.zeros((1,), jnp.float32)}
    state = algo.init(jax.random.key(0), params)
    assert isinstance(state, MAPState)
    assert jax.tree.structure(state.opt_state) == jax.tree.structure(optimizer.init(params))
    types = jax.tree.map(lambda leaf: str(jax.typeof(leaf)), state)

    step = jax.jit(algo.step)
    new_state, info = step(jax.random.key(1), state, (x, y))
    assert jax.tree.map(lambda leaf: str(jax.typeof(leaf)), new_state) == types
    assert isinstance(info, MAPInfo) and info.log_joint.shape == ()
    np.testing.assert_allclose(info.log_joint, lj(params, (x, y)), rtol=1e-6)  # at the step's starting params
    assert lj(new_state.params, (x, y)) > info.log_joint  # one ascent step
    again, _ = step(jax.random.key(2), state, (x, y))  # deterministic: the key is unused
    for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)

    samples = algo.sample(jax.random.key(3), new_state, 3)
    assert jax.tree.map(jnp.shape, samples) == {"w": (3, D), "b": (3, 1)}
    for leaf, point in zip(jax.tree.leaves(samples), jax.tree.leaves(new_state.params)):
        np.testing.assert_array_equal(leaf, np.broadcast_to(point, (3,) + point.shape))


def test_a_learning_rate_means_what_it_means_in_any_jax_training_loop():
    """``optax.sgd(0.1)`` on the per-example loss trains the digits MLP, at T = 1 and T = 1e-3 alike."""
    ds = bj.data.load("digits")
    model = bj.models.mlp([32], num_outputs=10)
    params = model.init(jax.random.key(0), ds.x_train[:1])
    for temperature in (1.0, 1e-3):
        lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), len(ds.y_train),
                          temperature=temperature)
        post = bj.run(jax.random.key(1), bj.map(lj, optax.sgd(0.1)), params, (ds.x_train, ds.y_train),
                      num_steps=300, batch_size=64, progress=False)
        pred = bj.predictive(model.apply, post.sample(jax.random.key(2), 1), ds.x_test, lj.likelihood)
        assert float(bj.metrics.accuracy(pred, ds.y_test)) > 0.9, temperature
