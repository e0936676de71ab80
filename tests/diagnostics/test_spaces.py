"""Tests for bayesjax.diagnostics.spaces: R-hat and ESS of chosen weights and of probe predictions."""
import jax
import jax.numpy as jnp
import numpy as np

import bayesjax as bj
from bayesjax import diagnostics
from tests.diagnostics.toy_chains import linear, logistic, noise_like, run, toy_chain


def test_chains_stuck_at_different_offsets_have_large_rhat():
    stuck = toy_chain(lambda key, state, t: jax.tree.map(
        lambda a, z: a + 0.1 * z, state.anchor, noise_like(key, state.anchor)))
    post = run(stuck, lambda key: {"w": 3.0 * jax.random.normal(key, (4,))})
    offsets = np.asarray(post.state.inner.anchor["w"])
    assert np.all(np.std(offsets, axis=0) > 0.5)  # the chains really are apart
    result = diagnostics.weight_space(post)
    assert result["rhat"].shape == (4,) and np.all(result["rhat"] > 1.1), result["rhat"]
    assert diagnostics.summary(post)["rhat_max"] > 1.1


def test_function_space_shapes_and_agreement_with_weight_space(iid_posterior):
    post = iid_posterior
    weights = diagnostics.weight_space(post, select=lambda p: p["w"][:2, 0])
    # Probes picking out w00 and 2 w10: split R-hat and ESS are invariant to positive affine maps.
    probes = jnp.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    regression = diagnostics.function_space(post, linear, probes, bj.likelihoods.gaussian(0.5))
    assert regression["rhat"].shape == regression["ess"].shape == (2,)
    np.testing.assert_allclose(regression["rhat"], weights["rhat"], rtol=1e-4)
    np.testing.assert_allclose(regression["ess"], weights["ess"], rtol=1e-4)
    # Log class probabilities of logits (0, f) are monotone in f and bulk ESS is rank-based: unchanged.
    classification = diagnostics.function_space(post, logistic, probes, bj.likelihoods.categorical())
    assert classification["rhat"].shape == classification["ess"].shape == (2, 2)
    np.testing.assert_allclose(classification["ess"], np.stack([weights["ess"]] * 2, -1), rtol=1e-4)
    chunked = diagnostics.function_space(post, logistic, probes, bj.likelihoods.categorical(), chunk_size=300)
    np.testing.assert_allclose(chunked["rhat"], classification["rhat"], rtol=1e-6)
