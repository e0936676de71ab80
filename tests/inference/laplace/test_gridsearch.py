"""The prior precision tuned on validation NLL: the grid's minimum, one program for the grid, jittable."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from bayesjax.inference.laplace import laplace
from bayesjax.inference.laplace.gridsearch import tune_prior_precision, validation_nll
from tests.helpers.compiles import count_compiles

GRID = np.array([1e-3, 1e-1, 1e1, 1e3])


def brute_force(post, x_val, y_val, grid, link="probit"):
    """The validation NLL at each grid value, one eager posterior and predictive after another."""
    return np.array([float(bj.metrics.nll(post.with_prior_precision(float(d)).predictive_glm(x_val, link), y_val))
                     for d in grid])


@pytest.mark.parametrize("hessian, subset", [("diag", "all"), ("kfac", "all"), ("full", "all"),
                                             ("kfac", "last_layer")])
def test_picks_the_grid_value_a_brute_force_loop_finds(classifier, hessian, subset):
    x, y, _, lj, params = classifier
    post = laplace(lj, params, (x[:64], y[:64]), hessian=hessian, subset=subset)
    loop = brute_force(post, x[64:], y[64:], GRID)
    search = tune_prior_precision(post, x[64:], y[64:], grid=GRID)
    np.testing.assert_allclose(search.nll, loop, rtol=1e-4)  # float32: the same sums in another order
    assert float(search.prior_precision) == GRID[int(np.argmin(loop))]
    assert np.sort(loop)[1] - loop.min() > 1e-3  # the minimum is not a near tie
    chosen = jax.tree.leaves(search.posterior.prior_precision)
    assert all(float(leaf) == float(search.prior_precision) for leaf in chosen)
    tuned_nll = float(bj.metrics.nll(search.posterior.predictive_glm(x[64:]), y[64:]))
    assert tuned_nll == pytest.approx(loop.min(), rel=1e-4)


def test_regression_and_the_mc_link_match_the_loop(linear_data, classifier):
    x, y, _ = linear_data
    from tests.helpers.laplace_problems import linear_log_joint

    with jax.enable_x64(True):
        mean, _ = bj.linear.posterior(x[:20], y[:20], 1.0, 1.0)  # a MAP under another prior: tuning has work
        post = laplace(linear_log_joint(), {"w": mean}, (x[:20], y[:20]), hessian="full")
        loop = brute_force(post, x[20:], y[20:], GRID)
        search = tune_prior_precision(post, x[20:], y[20:], grid=GRID)
        np.testing.assert_allclose(search.nll, loop, rtol=1e-10)
        assert float(search.prior_precision) == GRID[int(np.argmin(loop))]
    xc, yc, _, lj, params = classifier
    post = laplace(lj, params, (xc[:64], yc[:64]), hessian="diag")
    loop = brute_force(post, xc[64:], yc[64:], GRID, link="mc")  # key None: the same draws as the search
    np.testing.assert_allclose(validation_nll(post, xc[64:], yc[64:], GRID, "mc"), loop, rtol=1e-4)


def test_one_program_serves_every_grid_and_the_search_jits(classifier):
    x, y, _, lj, params = classifier
    post = laplace(lj, params, (x[:64], y[:64]), hessian="kfac")
    eager = tune_prior_precision(post, x[64:], y[64:], grid=GRID)
    with count_compiles() as compiles:
        validation_nll(post, x[64:], y[64:], GRID * 3.0)
    assert compiles == []  # another grid of the same length: the same program
    jitted = jax.jit(lambda p, g: tune_prior_precision(p, x[64:], y[64:], grid=g))(post, jnp.asarray(GRID))
    assert float(jitted.prior_precision) == float(eager.prior_precision)
    np.testing.assert_allclose(jitted.nll, eager.nll, rtol=1e-5)


@pytest.mark.parametrize("grid, message", [([], "non-empty"), ([1.0, -1.0], "> 0"), ([[1.0]], "1-D"),
                                           ([1.0, np.inf], "finite")])
def test_bad_grids_are_refused_before_compiling(classifier, grid, message):
    x, y, _, lj, params = classifier
    post = laplace(lj, params, (x, y), hessian="diag")
    with pytest.raises(ValueError, match=message):
        tune_prior_precision(post, x, y, grid=grid)
    with pytest.raises(ValueError, match="same examples"):
        tune_prior_precision(post, x, y[:-1])
    with pytest.raises(ValueError, match="link"):
        tune_prior_precision(post, x, y, link="logit")
