"""MC dropout (bayesjax/inference/mc_dropout.py): trained with dropout, masks sampled at prediction."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj


class DropoutNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.Dropout(0.3, deterministic=not train)(nn.relu(nn.Dense(16)(x)))
        return nn.Dense(3)(h)


def test_the_predictive_is_the_mean_over_explicit_masks():
    x = jax.random.normal(jax.random.key(0), (64, 4))
    y = (x[:, 0] > 0).astype(jnp.int32)
    model = bj.models.from_flax(DropoutNet())
    lj = bj.log_joint(model, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=64)
    post = bj.run(jax.random.key(1), bj.mc_dropout(lj, optax.adam(1e-2)), model.init(jax.random.key(2), x[:1]),
                  (x, y), num_steps=30, batch_size=16, progress=False)
    samples = post.sample(jax.random.key(3), 6)
    assert samples.dropout_key.shape == (6,)
    pred = bj.predictive(model.apply, samples, x, lj.likelihood)
    params = jax.tree.map(lambda leaf: leaf[0], samples.params)
    by_hand = np.mean([jax.nn.softmax(DropoutNet().apply({"params": params}, x, train=True,
                                                         rngs={"dropout": samples.dropout_key[j]}))
                       for j in range(6)], axis=0)
    np.testing.assert_allclose(pred.probs, by_hand, rtol=1e-5, atol=1e-7)
    assert float(jnp.mean(pred.mutual_information)) > 0  # the masks disagree


def test_a_model_without_training_mode_is_refused():
    model = bj.models.mlp([4], num_outputs=3)
    lj = bj.log_joint(model, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=10)
    with pytest.raises(ValueError, match="dropout"):
        bj.mc_dropout(lj, optax.adam(1e-2))
