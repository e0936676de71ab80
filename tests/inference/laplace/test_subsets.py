"""A last-layer Laplace posterior equals the full Laplace posterior of the head alone."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from bayesjax.inference.laplace import laplace
from tests.helpers.numerics import rel_err


@pytest.mark.parametrize("hessian", ["full", "diag", "kfac"])
def test_last_layer_equals_full_laplace_of_the_head_alone(hessian):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 4))
    y = rng.integers(0, 3, size=30).astype(np.int32)
    net, head = bj.models.mlp([6], num_outputs=3), bj.models.mlp([], num_outputs=3)
    with jax.enable_x64(True):
        params = jax.tree.map(lambda p: p.astype(jnp.float64), net.init(jax.random.key(1), jnp.asarray(x[:1])))
        features = jax.nn.relu(x @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"])
        head_params = {"Dense_0": params["Dense_1"]}
        prior, lik = bj.priors.gaussian(0.8), bj.likelihoods.categorical()
        last = laplace(bj.log_joint(net.apply, prior, lik, num_data=30, temperature=0.7), params, (x, y),
                       hessian=hessian, subset="last_layer", chunk_size=8)
        alone = laplace(bj.log_joint(head.apply, prior, lik, num_data=30, temperature=0.7), head_params,
                        (features, y), hessian=hessian, chunk_size=8)
        assert last.subset == ("Dense_1",)
        assert rel_err(last.precision_matrix(), alone.precision_matrix()) < 1e-10
        assert rel_err(last.log_marginal_likelihood(), alone.log_marginal_likelihood()) < 1e-10
        f_last, cov_last = last.functional_covariance(x)
        f_alone, cov_alone = alone.functional_covariance(features)
        assert rel_err(f_last, f_alone) < 1e-10 and rel_err(cov_last, cov_alone) < 1e-10
        samples = last.sample(jax.random.key(0), 3)
        np.testing.assert_array_equal(samples["Dense_0"]["kernel"][2], params["Dense_0"]["kernel"])
        assert not np.allclose(samples["Dense_1"]["kernel"][0], params["Dense_1"]["kernel"])
