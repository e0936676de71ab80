"""Tests for bayesjax.models.resnet: ResNet-20's architecture, parameter count, both normalizations, and runs."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj
from bayesjax.models import Conv
from bayesjax.models.resnet import ResNet20BatchNorm, ResNet20FRN

KEY = jax.random.key(0)


def size(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def shapes_of(init, x_shape):
    return jax.eval_shape(init, KEY, jax.ShapeDtypeStruct(x_shape, jnp.float32))


def hand_count(in_channels: int, width: int, num_outputs: int, per_channel: int) -> int:
    """Weights of He et al.'s ResNet-20 with projection shortcuts, counted by hand.

    Every convolution has a bias and is followed by a normalization with
    ``per_channel`` weights per channel (BatchNorm 2, FRN 3).
    """
    convs = [(3, in_channels, width)]
    for stage, channels in enumerate((width, 2 * width, 4 * width)):
        c_in = width * 2 ** max(stage - 1, 0)
        convs += [(3, c_in, channels)] + [(3, channels, channels)] * 5
        if stage > 0:
            convs.append((1, c_in, channels))
    return sum(k * k * c * o + o + per_channel * o for k, c, o in convs) + 4 * width * num_outputs + num_outputs


def test_parameter_count_on_cifar_shaped_inputs_is_he_et_als_027m():
    frn = shapes_of(bj.models.resnet20(10, norm="frn").init, (1, 32, 32, 3))
    batch = shapes_of(ResNet20BatchNorm(10).init, (1, 32, 32, 3))
    assert size(frn) == hand_count(3, 16, 10, per_channel=3) == 274_042
    assert size(batch["params"]) == hand_count(3, 16, 10, per_channel=2) == 273_258
    assert size(batch["batch_stats"]) == 2 * 784  # a running mean and variance for each of 784 normalized channels
    assert abs(size(batch["params"]) - 0.27e6) < 0.005e6  # He et al. 2016, Table 6: 0.27M


@pytest.mark.parametrize("x_shape", [(2, 28, 28, 1), (2, 28, 28), (2, 32, 32, 3)])
@pytest.mark.parametrize("norm", ["frn", "batch"])
def test_output_shapes(x_shape, norm):
    module = (ResNet20FRN if norm == "frn" else ResNet20BatchNorm)(num_outputs=3, width=4)
    variables = shapes_of(module.init, x_shape)
    out = jax.eval_shape(module.apply, variables, jax.ShapeDtypeStruct(x_shape, jnp.float32))
    assert out.shape == (2, 3) and out.dtype == jnp.float32


@pytest.mark.parametrize("side, sizes", [(28, (28, 14, 7)), (32, (32, 16, 8))])
def test_stages_halve_the_resolution_and_double_the_channels(side, sizes):
    module = ResNet20FRN(num_outputs=10, width=4)
    x = jax.ShapeDtypeStruct((2, side, side, 1), jnp.float32)
    variables = jax.eval_shape(module.init, KEY, x)
    _, captured = jax.eval_shape(
        lambda v, x_: module.apply(v, x_, capture_intermediates=True, mutable=["intermediates"]), variables, x)
    outputs = captured["intermediates"]
    for stage, (pixels, channels) in enumerate(zip(sizes, (4, 8, 16)), start=1):
        for block in range(3):
            assert outputs[f"Block_{stage}_{block}"]["__call__"][0].shape == (2, pixels, pixels, channels)


def test_only_the_strided_blocks_have_a_projection_shortcut():
    params = shapes_of(bj.models.resnet20(10, width=4).init, (1, 28, 28, 1))
    with_shortcut = sorted(name for name, block in params.items() if "Shortcut" in block)
    assert with_shortcut == ["Block_2_0", "Block_3_0"]
    assert params["Block_2_0"]["Shortcut"]["Conv_0"]["kernel"].shape == (1, 1, 4, 8)
    assert set(params) == {"Stem", "Dense_0"} | {f"Block_{s}_{b}" for s in (1, 2, 3) for b in range(3)}


@pytest.mark.parametrize("kwargs, match", [({"norm": "layer"}, "norm"), ({"width": 0}, "width"),
                                           ({"num_outputs": 0}, "num_outputs")])
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bj.models.resnet20(**kwargs)


def test_batchnorm_module_trains_on_batch_statistics_and_evaluates_on_running_ones():
    module = ResNet20BatchNorm(num_outputs=10, width=4)
    x = jax.random.normal(KEY, (4, 28, 28, 1))
    other = x.at[1:].set(3 * jax.random.normal(jax.random.key(1), (3, 28, 28, 1)) + 1)

    @jax.jit
    def both_modes(x, other):
        variables = module.init(KEY, x)
        train = functools.partial(module.apply, train=True, mutable=["batch_stats"])
        (out, updated), (out_other, _) = train(variables, x), train(variables, other)
        trained = {**variables, **updated}
        stem_conv = Conv(4, (3, 3), padding="SAME").apply({"params": variables["params"]["Stem"]["Conv_0"]}, x)
        return (variables, updated, out, out_other, stem_conv,
                module.apply(trained, x), module.apply(trained, other), module.apply(variables, x))

    variables, updated, out, out_other, stem_conv, evaluated, evaluated_other, at_init = both_modes(x, other)
    assert set(variables) == {"params", "batch_stats"} and out.shape == (4, 10)
    # The stem's running mean moves from 0 by (1 - momentum) times the batch mean of its convolution.
    np.testing.assert_allclose(updated["batch_stats"]["Stem"]["BatchNorm_0"]["mean"],
                               0.1 * stem_conv.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    # In training an example's output depends on its batch; in evaluation it does not.
    assert not np.allclose(out[0], out_other[0])
    np.testing.assert_array_equal(evaluated[0], evaluated_other[0])
    assert not np.allclose(evaluated, at_init)  # evaluation reads the running statistics


@pytest.fixture(scope="module")
def problem():
    """A width-4 ResNet-20 (FRN) on 16 random 28x28 images of 10 classes, its initial weights and log-joint."""
    x = jax.random.normal(jax.random.key(1), (16, 28, 28, 1))
    y = jax.random.randint(jax.random.key(2), (16,), 0, 10)
    model = bj.models.resnet20(10, width=4)
    params = jax.jit(model.init)(KEY, x[:1])
    lj = bj.log_joint(model.apply, bj.priors.layerwise("he"), bj.likelihoods.categorical(), num_data=len(y))
    return model, params, lj, (x, y)


def test_runs_sgld(problem):
    model, params, lj, (x, y) = problem
    assert type(params) is dict  # with FRN the network has weights only
    post = bj.run(jax.random.key(3), bj.sgld(lj, 0.1), params, (x, y), num_steps=3, batch_size=8, progress=False)
    assert post.divergences == {} and np.all(np.isfinite(post.info.log_density))
    samples = post.sample(jax.random.key(4), 2)
    assert jax.tree.map(jnp.shape, samples) == jax.tree.map(lambda p: (2, *p.shape), params)
    moved = jax.tree.map(lambda s, p: bool(jnp.all(jnp.isfinite(s)) and jnp.mean(s != p) > 0.99), samples, params)
    assert all(jax.tree.leaves(moved))  # finite, and the noise reached every leaf (entries may coincide by chance)


def test_runs_a_deep_ensemble(problem):
    model, params, lj, (x, y) = problem
    algo = bj.ensemble(bj.map(lj, optax.adam(1e-3)), 2, init=lambda k: model.init(k, x[:1]))
    post = bj.run(jax.random.key(3), algo, params, (x, y), num_steps=5, progress=False)
    log_joint = np.asarray(post.info.log_joint)  # [steps, chains, members], full batch
    assert log_joint.shape == (5, 1, 2)
    assert np.all(log_joint[-1] > log_joint[0])  # each member climbs the log-joint
    members = post.sample(jax.random.key(4), 2)
    assert not np.allclose(members["Dense_0"]["kernel"][0], members["Dense_0"]["kernel"][1])



def test_batchnorm_resnet_through_from_flax_carries_its_statistics(problem):
    """ResNet-20 with BatchNorm as a Model: Variables, a training mode that updates them, chunk-free predictions.

    (Its run through every method is the protocol of tests/test_model_state.py; a bj.run here would
    compile ResNet-20's 170 arrays once more for little.)
    """
    _, _, lj, (x, y) = problem
    model = bj.models.resnet20(10, norm="batch", width=4)
    variables = jax.jit(model.init)(KEY, x[:1])
    assert isinstance(variables, bj.models.Variables)
    _, state = jax.jit(model.train_apply)(variables.params, variables.state, x[:8], jax.random.key(5))
    stem_mean = state["batch_stats"]["Stem"]["BatchNorm_0"]["mean"]
    assert not np.allclose(stem_mean, 0.0)  # training moved the running statistics
    sample = jax.tree.map(lambda leaf: leaf[None], variables._replace(state=state))
    predict = jax.jit(lambda s, xx: bj.predictive(model.apply, s, xx, lj.likelihood).probs)
    together = predict(sample, x[:4])
    alone = jnp.concatenate([predict(sample, x[i:i + 1]) for i in range(4)])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-6)
