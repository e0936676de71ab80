"""Streaming Laplace through ``bj.run``: one epoch equals the batch fit; a partial pass is rescaled to N."""
import jax
import pytest

import bayesjax as bj
from bayesjax.inference.laplace import build, from_state, laplace
from tests.helpers.numerics import rel_err


@pytest.mark.parametrize("hessian", ["full", "diag", "kfac"])
def test_streaming_over_one_epoch_equals_the_batch_fit(classifier, hessian):
    x, y, _, lj, params = classifier
    batch = laplace(lj, params, (x, y), hessian=hessian)
    run = bj.run(jax.random.key(3), build(lj, hessian=hessian), params, (x, y), num_steps=3, batch_size=32,
                 progress=False)
    state = jax.tree.map(lambda s: s[0], run.state)
    assert int(state.num_seen) == 96 and not hasattr(state, "position")
    streamed = from_state(lj, state)
    assert rel_err(streamed.precision_matrix(), batch.precision_matrix()) < 1e-5
    assert rel_err(streamed.log_marginal_likelihood(), batch.log_marginal_likelihood()) < 1e-5


def test_partial_pass_is_rescaled_to_the_full_data(classifier):
    x, y, _, lj, params = classifier
    algo = build(lj, hessian="diag")
    state, _ = jax.jit(algo.step)(jax.random.key(0), algo.init(jax.random.key(0), params), (x[:48], y[:48]))
    half = from_state(lj, state)
    direct = laplace(bj.log_joint(lj.apply, lj.prior, lj.likelihood, num_data=96), params, (x[:48], y[:48]),
                     hessian="diag")
    assert rel_err(half.precision_matrix(), direct.precision_matrix()) < 1e-6
    assert rel_err(half.log_likelihood, 2 * state.log_likelihood) < 1e-6
