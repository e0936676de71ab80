"""The GLM predictive's links against its own Monte Carlo and the weight-space predictive."""
import jax
import numpy as np

import bayesjax as bj
from bayesjax.inference.laplace import laplace


def test_glm_links_agree_with_monte_carlo(classifier):
    x, y, model, lj, params = classifier
    post = laplace(lj, params, (x, y), hessian="kfac", chunk_size=40)
    mc, probit, bridge = (post.predictive_glm(x, link=link, num_samples=4000, key=jax.random.key(1))
                          for link in ("mc", "probit", "bridge"))
    for pred in (mc, probit, bridge):
        assert isinstance(pred, bj.ClassificationPredictive) and pred.log_probs.shape == (96, 3)
        np.testing.assert_allclose(np.sum(pred.probs, axis=1), 1.0, rtol=1e-5)
        assert np.all(np.isfinite(pred.expected_entropy))
    # probit is a close approximation of the MC average; the bridge a rougher one.
    assert np.max(np.abs(probit.probs - mc.probs)) < 0.1
    assert np.mean(np.abs(bridge.probs - mc.probs)) < 0.1
    # The weight-space MC predictive through bj.predictive agrees on average with the GLM one.
    weight_mc = bj.predictive(model.apply, post.sample(jax.random.key(2), 200), x, lj.likelihood)
    assert np.mean(np.abs(weight_mc.probs - mc.probs)) < 0.1
    metrics = bj.metrics.evaluate(probit, y)
    assert metrics["accuracy"] > 0.8 and np.isfinite(metrics["nll"])
