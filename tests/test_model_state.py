"""Model state through the protocol (bayesjax/model_state.py): BatchNorm statistics and dropout in every method."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj
from bayesjax.buffer import ordered_samples

MOMENTUM = 0.9
N, D, CLASSES = 96, 5, 3


class BatchNormNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.Dense(8, name="hidden")(x)
        h = nn.BatchNorm(use_running_average=not train, momentum=MOMENTUM, name="bn")(h)
        return nn.Dense(CLASSES, name="out")(nn.relu(h))


class DropoutNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.Dropout(0.5, deterministic=not train)(nn.relu(nn.Dense(16)(x)))
        return nn.Dense(CLASSES)(h)


@pytest.fixture(scope="module")
def problem():
    key_x, key_y = jax.random.split(jax.random.key(0))
    x = jax.random.normal(key_x, (N, D)) * 2.0 + 1.0
    y = jax.random.randint(key_y, (N,), 0, CLASSES)
    model = bj.models.from_flax(BatchNormNet())
    variables = model.init(jax.random.key(1), x[:1])
    lj = bj.log_joint(model, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=N)
    return x, y, model, variables, lj


def batch_statistics(params, x):
    """BatchNorm's batch mean and (biased) variance of the hidden layer, by hand."""
    h = x @ params["hidden"]["kernel"] + params["hidden"]["bias"]
    return {"batch_stats": {"bn": {"mean": h.mean(0), "var": h.var(0)}}}


def test_init_returns_variables_and_bare_weights_are_refused(problem):
    x, y, model, variables, lj = problem
    assert isinstance(variables, bj.models.Variables)
    assert sorted(variables.state["batch_stats"]["bn"]) == ["mean", "var"]
    with pytest.raises(ValueError, match="needs bj.models.Variables"):
        model.apply(variables.params, x)
    plain_lj = bj.log_joint(model.apply, lj.prior, lj.likelihood, num_data=N)  # the apply alone: no training mode
    with pytest.raises(ValueError, match="needs bj.models.Variables"):
        bj.run(jax.random.key(0), bj.sgld(plain_lj, 0.01), variables.params, (x, y), num_steps=2, progress=False)


def test_full_batch_map_equals_a_hand_written_flax_loop(problem):
    """Each step: gradient in training mode, running statistics updated from the same forward pass."""
    x, y, model, variables, lj = problem
    optimizer = optax.adam(1e-2)
    post = bj.run(jax.random.key(2), bj.map(lj, optimizer), variables, (x, y), num_steps=4, progress=False)

    module = BatchNormNet()
    params, stats, opt_state = variables.params, variables.state, optimizer.init(variables.params)

    def loss(params, stats):
        logits, updated = module.apply({"params": params, **stats}, x, train=True, mutable=["batch_stats"])
        nll = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))
        prior = sum(jnp.sum(-0.5 * w**2 - 0.5 * jnp.log(2 * jnp.pi)) for w in jax.tree.leaves(params))
        return nll - prior / N, updated

    for _ in range(4):
        (_, stats), grad = jax.value_and_grad(loss, has_aux=True)(params, stats)
        updates, opt_state = optimizer.update(grad, opt_state, params)
        params = optax.apply_updates(params, updates)
    sample = post.sample(jax.random.key(3), 1)
    np.testing.assert_allclose(sample.params["out"]["kernel"][0], params["out"]["kernel"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sample.state["batch_stats"]["bn"]["var"][0], stats["batch_stats"]["bn"]["var"],
                               rtol=1e-4)


def test_each_sgld_position_keeps_the_running_statistics_of_its_step(problem):
    """Full batch: s_t = m s_(t-1) + (1 - m) stat(theta_(t-1)), checked from the buffered (theta_t, s_t) pairs."""
    x, y, model, variables, lj = problem
    post = bj.run(jax.random.key(4), bj.sgld(lj, 1e-3), variables, (x, y), num_steps=6, progress=False)
    samples, filled = ordered_samples(jax.tree.map(lambda leaf: leaf[0], post.state))  # the one chain
    assert int(filled) == 6
    for t in range(1, 6):
        previous = jax.tree.map(lambda leaf: leaf[t - 1], samples)
        expected = jax.tree.map(lambda s, b: MOMENTUM * s + (1 - MOMENTUM) * b, previous.state,
                                batch_statistics(previous.params, x))
        got = jax.tree.map(lambda leaf: leaf[t], samples.state)
        np.testing.assert_allclose(got["batch_stats"]["bn"]["mean"], expected["batch_stats"]["bn"]["mean"],
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got["batch_stats"]["bn"]["var"], expected["batch_stats"]["bn"]["var"], rtol=1e-5)


def test_a_test_prediction_does_not_depend_on_its_chunk(problem):
    x, y, model, variables, lj = problem
    post = bj.run(jax.random.key(5), bj.sgld(lj, 1e-3), variables, (x, y), num_steps=10, batch_size=32,
                  num_chains=2, progress=False)
    samples = post.sample(jax.random.key(6), 4)
    together = bj.predictive(model.apply, samples, x[:20], lj.likelihood).probs
    alone = jnp.concatenate([bj.predictive(model.apply, samples, x[i:i + 1], lj.likelihood).probs
                             for i in range(20)])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-7)


def test_recompute_statistics_is_the_average_of_batch_statistics(problem):
    """Maddox et al.'s bn_update for SWAG draws: each draw's state from its own weights."""
    x, y, model, variables, lj = problem
    post = bj.run(jax.random.key(7), bj.swag(lj, optax.sgd(1e-2, momentum=0.9), start_step=5), variables, (x, y),
                  num_steps=20, batch_size=32, progress=False)
    samples = post.sample(jax.random.key(8), 3)
    updated = bj.recompute_statistics(model, samples, x, jax.random.key(9), batch_size=32)
    for j in range(3):
        params = jax.tree.map(lambda leaf: leaf[j], samples.params)
        by_hand = jax.tree.map(lambda *stats: sum(stats) / 3,
                               *(batch_statistics(params, x[b * 32:(b + 1) * 32]) for b in range(3)))
        for name in ("mean", "var"):
            np.testing.assert_allclose(updated.state["batch_stats"]["bn"][name][j], by_hand["batch_stats"]["bn"][name],
                                       rtol=2e-4, atol=1e-5)


def test_ensemble_members_carry_their_own_statistics(problem):
    x, y, model, variables, lj = problem
    member = bj.map(lj, optax.adam(1e-2))
    init = lambda key: model.init(key, x[:1])  # noqa: E731
    post = bj.run(jax.random.key(10), bj.ensemble(member, 2, init=init), variables, (x, y), num_steps=5,
                  batch_size=32, progress=False)
    samples = post.sample(jax.random.key(11), 2)
    means = samples.state["batch_stats"]["bn"]["mean"]
    assert not np.allclose(means[0], means[1])


def test_dropout_is_on_in_training_and_off_in_evaluation():
    x = jax.random.normal(jax.random.key(0), (64, D))
    y = jnp.zeros(64, jnp.int32)
    model = bj.models.from_flax(DropoutNet())
    params = model.init(jax.random.key(1), x[:1])
    lj = bj.log_joint(model, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=64)
    post = bj.run(jax.random.key(2), bj.map(lj, optax.sgd(0.0)), params, (x, y), num_steps=2, progress=False)
    in_training = post.info.log_joint[:, 0]
    in_evaluation = bj.log_joint(model.apply, lj.prior, lj.likelihood, num_data=64)(params, (x, y))
    assert not np.allclose(in_training, in_evaluation)  # dropout on in training
    assert not np.allclose(in_training[0], in_training[1])  # a fresh mask each step
    np.testing.assert_array_equal(model.apply(params, x), model.apply(params, x))


def test_laplace_takes_the_curvature_in_evaluation_mode(problem):
    """On Variables, Laplace equals Laplace of the same network with BatchNorm written out as a fixed affine map."""
    x, y, model, variables, lj = problem
    post = bj.run(jax.random.key(12), bj.map(lj, optax.adam(1e-2)), variables, (x, y), num_steps=20, progress=False)
    mode = jax.tree.map(lambda leaf: leaf[0], post.sample(jax.random.key(13), 1))
    stats = mode.state["batch_stats"]["bn"]

    class FixedAffine(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.Dense(8, name="hidden")(x)
            scale = self.param("scale", nn.initializers.ones, (8,))
            bias = self.param("bias", nn.initializers.zeros, (8,))
            h = (h - stats["mean"]) / jnp.sqrt(stats["var"] + 1e-5) * scale + bias
            return nn.Dense(CLASSES, name="out")(nn.relu(h))

    class Folded(nn.Module):
        @nn.compact
        def __call__(self, x):
            return FixedAffine(name="net")(x)

    folded_params = {"net": {"hidden": mode.params["hidden"], "out": mode.params["out"], **mode.params["bn"]}}
    folded_lj = bj.log_joint(bj.models.from_flax(Folded()).apply, lj.prior, lj.likelihood, num_data=N)
    ours = bj.laplace(lj, mode, (x, y), hessian="diag")
    reference = bj.laplace(folded_lj, folded_params, (x, y), hessian="diag")
    np.testing.assert_allclose(ours.predictive_glm(x).probs, reference.predictive_glm(x).probs, rtol=1e-4, atol=1e-6)
    samples = ours.sample(jax.random.key(14), 3)
    outputs = bj.predictive(ours.log_joint.apply, samples, x, lj.likelihood).probs
    assert outputs.shape == (N, CLASSES) and bool(jnp.all(jnp.isfinite(outputs)))


def test_swag_draws_carry_the_statistics_of_their_own_weights(problem):
    """bj.run keeps training inputs for SWAG (all 96 here, 3 batches): each draw's BatchNorm mean is its own."""
    x, y, model, variables, lj = problem
    algo = bj.swag(lj, optax.sgd(1e-2, momentum=0.9), start_step=5)
    assert algo.recompute_statistics and not bj.sgld(lj, 1e-3).recompute_statistics
    post = bj.run(jax.random.key(15), algo, variables, (x, y), num_steps=20, batch_size=32, progress=False)
    assert post.statistics is not None and post.statistics.inputs.shape == (N, D)
    samples = post.sample(jax.random.key(16), 3)
    for j in range(3):
        params = jax.tree.map(lambda leaf: leaf[j], samples.params)
        by_hand = batch_statistics(params, x)["batch_stats"]["bn"]["mean"]  # the mean of equal batches' means
        np.testing.assert_allclose(samples.state["batch_stats"]["bn"]["mean"][j], by_hand, rtol=1e-4, atol=1e-5)
