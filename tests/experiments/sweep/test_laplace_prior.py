"""The sweep's Laplace prior precision: the prior's own by default, else tuned per cell (evidence, validation NLL)."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesjax import metrics
from bayesjax.experiments import outputs, sweep
from bayesjax.experiments.sweep import cells, driver
from bayesjax.experiments.sweep.methods import laplace_at_map
from bayesjax.inference.laplace import from_state
from bayesjax.inference.laplace.factorization import with_prior_precision
from bayesjax.inference.laplace.glm import predictive_glm
from bayesjax.inference.laplace.gridsearch import DEFAULT_GRID
from bayesjax.inference.laplace.marglik import optimize_prior_precision
from tests.experiments.sweep.tiny_grid import CONFIG

# Two cells whose validation NLL has its minimum inside the grid (at 100 and 562), clear of the runner-up.
LAPLACE = dataclasses.replace(CONFIG, method="laplace_diag", temperatures=(0.3, 1.0), seeds=(0,), num_steps=200,
                              learning_rate=3e-2)


def cell_posterior(config, record):
    """The record's cell rebuilt outside the sweep's jit and vmap: its run and Laplace fit on the training data
    (without the validation examples), the posterior at the prior's precision, and its keys and data."""
    dataset, validation = driver.load(config)
    setup = driver.setup_of(dataclasses.replace(config, temperatures=(), seeds=()))
    x, y = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
    run_key, sample_key, _ = jax.random.split(jax.random.key(record["seed"]), 3)
    lj, _, states, _ = cells.train(setup, jnp.float32(record["temperature"]), run_key, x, y, -1)
    hessian, subset = sweep.METHODS[config.method].laplace
    _, states = laplace_at_map(hessian, subset, lj, states, x, y)
    return from_state(lj, jax.tree.map(lambda s: s[0], states), hessian, subset=subset), sample_key, dataset, validation


def test_validation_tuning_picks_the_grid_value_of_least_validation_nll_per_cell(tmp_path):
    config = dataclasses.replace(LAPLACE, laplace_prior="validation")
    records = sweep.run_sweep(config, tmp_path, progress=False, cells_per_chunk=2)
    full = driver.load(dataclasses.replace(config, laplace_prior="untuned"))[0]
    chosen = []
    for record in records:
        post, _, dataset, (x_val, y_val) = cell_posterior(config, record)
        assert len(y_val) == round(0.1 * len(full.y_train)) and len(dataset.y_train) + len(y_val) == len(full.y_train)
        nll = [float(metrics.nll(predictive_glm(with_prior_precision(post, delta), x_val, "probit"), y_val))
               for delta in DEFAULT_GRID]  # one posterior per grid value, one after another
        grid = np.float32(DEFAULT_GRID)  # the cells' dtype
        assert record["prior_precision"] in grid and record["prior_precision"] == grid[np.argmin(nll)]
        chosen.append(record["prior_precision"])
        assert np.isfinite(record["nll"]) and record["accuracy"] > 0.8
    assert len(set(chosen)) == 2 and grid[0] < min(chosen) and max(chosen) < grid[-1]


@pytest.mark.parametrize("laplace_prior", ["untuned", "evidence"])
def test_untuned_and_evidence_cells_equal_their_posterior_rebuilt_outside_the_sweep(tmp_path, laplace_prior):
    """Untuned: the previous numbers, the posterior at the prior's precision 1 / 0.5^2 fitted on the whole
    training split, under the fingerprint (cell files) of the sweeps from before ``laplace_prior``."""
    config = dataclasses.replace(LAPLACE, prior_scale=0.5, laplace_prior=laplace_prior, validation_fraction=0.3)
    records = sweep.run_sweep(config, tmp_path, progress=False, cells_per_chunk=2)
    for record in records:
        post, key, dataset, validation = cell_posterior(config, record)
        assert validation is None and len(dataset.y_train) == len(driver.load(CONFIG)[0].y_train)
        if laplace_prior == "evidence":
            post = optimize_prior_precision(post)
        precision = float(jax.tree.leaves(post.prior_precision)[0])
        predictives = [predictive_glm(post, x, "probit", key=key, num_samples=config.num_predictive_samples)
                       for x in (dataset.x_test, sweep.ood_inputs(dataset.x_test, config.ood))]
        expected = {name: float(value) for name, value in cells.evaluate(*predictives, dataset.y_test).items()}
        np.testing.assert_allclose([record[name] for name in expected], list(expected.values()), rtol=1e-3)
        np.testing.assert_allclose(record["prior_precision"], precision, rtol=1e-3)
        assert (record["prior_precision"] == 4.0) == (laplace_prior == "untuned")
    if laplace_prior == "untuned":
        fields = {k: v for k, v in dataclasses.asdict(config).items()
                  if k not in ("temperatures", "seeds", "laplace_prior", "validation_fraction")}
        assert config.fingerprint() == outputs.config_hash(fields)
