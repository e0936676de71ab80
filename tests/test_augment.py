from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import bayesjax as bj


def test_random_shift_moves_images_by_at_most_max_shift():
    x = jnp.zeros((64, 8, 8, 1)).at[:, 4, 4, 0].set(1.0)
    out = np.asarray(jax.jit(bj.augment.random_shift(1))(jax.random.key(0), x))
    rows, cols = np.nonzero(out[..., 0].reshape(64, 64))[1] // 8, np.nonzero(out[..., 0].reshape(64, 64))[1] % 8
    assert out.sum() == 64 and np.all(np.abs(rows - 4) <= 1) and np.all(np.abs(cols - 4) <= 1)
    assert len(set(zip(rows, cols))) == 9  # all 9 shifts occur among 64 draws


def test_random_shift_on_signals_and_flip():
    signal = jnp.arange(10.0)[None].repeat(32, 0)
    out = np.asarray(bj.augment.random_shift(2)(jax.random.key(1), signal))
    assert out.shape == (32, 10) and {int(np.argmax(o == 5.0)) - 5 for o in out if 5.0 in o} <= {-2, -1, 0, 1, 2}
    images = jax.random.normal(jax.random.key(2), (16, 4, 4, 1))
    flipped = np.asarray(bj.augment.random_flip()(jax.random.key(3), images))
    same = [np.array_equal(f, i) for f, i in zip(flipped, np.asarray(images))]
    mirrored = [np.array_equal(f, i[:, ::-1]) for f, i in zip(flipped, np.asarray(images))]
    assert all(s or m for s, m in zip(same, mirrored)) and 0 < sum(mirrored) < 16


def test_run_applies_augmentation_per_chain():
    ds = bj.data.load("digits")
    model = bj.models.mlp([8], num_outputs=10)
    lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), len(ds.y_train))
    params = model.init(jax.random.key(0), ds.x_train[:1])
    kwargs = dict(num_steps=5, batch_size=32, num_chains=2, progress=False)
    plain = bj.run(jax.random.key(1), bj.map(lj, optax.sgd(0.1)), params, (ds.x_train, ds.y_train), **kwargs)
    shifted = bj.run(jax.random.key(1), bj.map(lj, optax.sgd(0.1)), params, (ds.x_train, ds.y_train),
                     augment=bj.augment.random_shift(1), **kwargs)
    assert not np.allclose(plain.info.log_joint, shifted.info.log_joint)
    assert np.all(np.isfinite(shifted.info.log_joint))


def _crops(image, padding, fill):
    """Every crop of ``image [H, W, C]`` after padding by ``padding``, and its mirror image."""
    h, w = image.shape[:2]
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)), constant_values=fill)
    crops = [padded[i:i + h, j:j + w] for i in range(2 * padding + 1) for j in range(2 * padding + 1)]
    return crops + [c[:, ::-1] for c in crops]


def test_random_shift_is_a_crop_after_padding_with_fill():
    x = jax.random.normal(jax.random.key(0), (32, 6, 5, 2))
    out = np.asarray(bj.augment.random_shift(2, fill=-3.0)(jax.random.key(1), x))
    offsets = []
    for image, augmented in zip(np.asarray(x), out):
        crops = _crops(image, 2, -3.0)[:25]
        matches = [k for k, c in enumerate(crops) if np.array_equal(c, augmented)]
        assert matches, "each output is a crop of its own padded input"
        offsets.append(matches[0])
    assert len(set(offsets)) > 10  # 25 offsets, 32 draws: many distinct


def test_standard_image_shapes_determinism_and_jit():
    x = jax.random.normal(jax.random.key(0), (64, 28, 28, 1))
    augment = bj.augment.standard_image()
    eager = np.asarray(augment(jax.random.key(1), x))
    jitted = np.asarray(jax.jit(augment)(jax.random.key(1), x))
    np.testing.assert_array_equal(eager, jitted)
    np.testing.assert_array_equal(jitted, np.asarray(jax.jit(augment)(jax.random.key(1), x)))
    assert jitted.shape == x.shape and jitted.dtype == x.dtype
    assert not np.array_equal(jitted, np.asarray(augment(jax.random.key(2), x)))
    flipped = 0
    for image, augmented in zip(np.asarray(x), jitted):
        crops = _crops(image, 2, 0.0)
        matches = [k for k, c in enumerate(crops) if np.array_equal(c, augmented)]
        assert matches, "each output is a shifted and possibly mirrored copy of its input"
        flipped += matches[0] >= 25
    assert 10 < flipped < 54  # Binomial(64, 1/2): 10 and 54 are 5.5 standard deviations out


class _Recorder(NamedTuple):
    step: int


def _recording_algorithm() -> bj.Algorithm:
    """A hand-made algorithm whose info is the batch it was given: what bj.run feeds a step."""
    return bj.Algorithm(
        init=lambda key, params: _Recorder(jnp.zeros((), jnp.int32)),
        step=lambda key, state, batch: (_Recorder(state.step + 1), {"x": batch[0], "y": batch[1]}),
        sample=lambda key, state, n: jnp.zeros((n,)),
        markov_chain=False,
    )


def test_run_augments_inputs_and_keeps_labels():
    x = jax.random.normal(jax.random.key(0), (40, 6, 6, 1))
    y = jnp.arange(40) % 7
    kwargs = dict(num_steps=6, batch_size=8, num_chains=2, progress=False)
    algorithm, augment = _recording_algorithm(), bj.augment.standard_image(1)
    plain = bj.run(jax.random.key(1), algorithm, {}, (x, y), **kwargs).info
    augmented = bj.run(jax.random.key(1), algorithm, {}, (x, y), augment=augment, **kwargs).info
    again = bj.run(jax.random.key(1), algorithm, {}, (x, y), augment=augment, **kwargs).info
    assert augmented["x"].shape == plain["x"].shape == (6, 2, 8, 6, 6, 1)
    np.testing.assert_array_equal(augmented["y"], plain["y"])  # the same batches, labels untouched
    np.testing.assert_array_equal(augmented["x"], again["x"])  # deterministic for a key
    changed = 0
    for image, augmented_image in zip(np.asarray(plain["x"]).reshape(-1, 6, 6, 1),
                                      np.asarray(augmented["x"]).reshape(-1, 6, 6, 1)):
        assert any(np.array_equal(c, augmented_image) for c in _crops(image, 1, 0.0))
        changed += not np.array_equal(image, augmented_image)
    assert changed > 48  # of 96: each image is left as it is with probability 1/18
