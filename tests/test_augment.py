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
