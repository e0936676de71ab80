"""One grid cell as a pure function of a traced (temperature, seed), and a chunk of cells as one jit."""
from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from bayesjax import metrics, models, priors
from bayesjax.buffer import BufferedState
from bayesjax.driver.scan import RunConfig, buffered, run_chains
from bayesjax.experiments.sweep.config import LIKELIHOODS, METHODS, SweepConfig
from bayesjax.experiments.sweep.methods import laplace_at_map, predict_from_draws, predict_laplace, settings
from bayesjax.experiments.sweep.temperature import CHECKS, sgmcmc_checks
from bayesjax.logjoint import log_joint
from bayesjax.trees import all_finite

METRICS = ("accuracy", "nll", "ece", "brier", "ood_auroc")
DIAGNOSTICS = CHECKS + ("diverged_chains", "diverged_at")
COLUMNS = METRICS + ("prior_precision",) + DIAGNOSTICS
"""What a cell records, in table order: its metrics, the Laplace prior precision it used (NaN for the
other methods), its diagnostics."""


class Setup(NamedTuple):
    """The static, hashable part of a sweep: one compile per value."""

    config: SweepConfig
    model: models.Model
    augment: Callable | None
    num_data: int
    progress_every: int  # 0: no progress callback (then the program can enter the persistent cache)
    memory_budget: int | None = None  # bytes of one cell's evaluation chunks (the cells of a device share it)


def evaluate(pred, pred_ood, y_test) -> dict:
    """The cell's test metrics from its predictive on the test inputs and on the shifted inputs (jittable).

    Accuracy, NLL, ECE and Brier on the test set, and the AUROC of telling
    the shifted inputs from the test inputs by predictive entropy.
    """
    return {
        "accuracy": metrics.accuracy(pred, y_test),
        "nll": metrics.nll(pred, y_test),
        "ece": metrics.ece(pred, y_test),
        "brier": metrics.brier(pred, y_test),
        "ood_auroc": metrics.auroc(pred.entropy, pred_ood.entropy),
    }


def prior_of(config: SweepConfig) -> priors.Prior:
    """The configuration's prior (see :data:`~bayesjax.experiments.sweep.config.PRIORS`)."""
    if config.prior == "isotropic":
        return priors.gaussian(config.prior_scale)
    return priors.layerwise("he", config.prior_scale, family=config.prior)


def divergence(states) -> tuple[jax.Array, jax.Array]:
    """How many chains or fits diverged, and the first step at which one did.

    Chains: their sample buffers' ``diverged_at`` (steps from 1). Fits keep no
    step: a non-finite final state reports step 0. No divergence: step -1.
    """
    if isinstance(states, BufferedState):
        diverged = states.diverged_at >= 0
        first = jnp.min(jnp.where(diverged, states.diverged_at, jnp.iinfo(jnp.int32).max))
        return jnp.sum(diverged), jnp.where(jnp.any(diverged), first, -1)
    diverged = ~jax.vmap(all_finite)(states)
    return jnp.sum(diverged), jnp.where(jnp.any(diverged), 0, -1)


def train(setup: Setup, temperature, run_key, x, y, bar_id) -> tuple:
    """A cell's run of its method on ``(x, y)`` at a traced temperature (chain k: ``fold_in(run_key, k)``,
    as :func:`bayesjax.run`).

    Returns:
      ``(lj, algorithm, states, info)``: the cell's tempered log-joint, the
      algorithm with its sample buffer (chains), the final states and the
      per-step infos, both with a leading chain (or fit) axis.
    """
    c = setup.config
    recipe = METHODS[c.method]
    chains = recipe.kind == "chains"
    lik = LIKELIHOODS[c.likelihood]()
    lj = log_joint(setup.model, prior_of(c), lik, setup.num_data,
                   temperature=temperature, tempering=c.tempering)
    algorithm = recipe.build(lj, settings(lj, c))
    buffer = (c.num_predictive_samples, c.burnin, c.thin) if chains else None
    if c.epochs_per_cycle is not None:  # one draw at the end of every cycle
        buffer = (c.num_predictive_samples, 0, c.cycles(setup.num_data)[1])
    config = RunConfig(c.num_steps, c.batch_size, c.num_chains if chains else 1, buffer,
                       init_fn=lambda k: setup.model.init(k, x[:1]), augment=setup.augment,
                       progress_every=setup.progress_every)
    states, info = run_chains(algorithm, config, run_key, None, x, y, bar_id)
    return lj, buffered(algorithm, config), states, info


def cell(setup: Setup, temperature, seed, x, y, x_test, y_test, x_ood, bar_id, validation=None) -> dict:
    """One grid cell end to end: traced temperature and seed, static everything else.

    Keys: ``split(key(seed), 3)`` for the run (:func:`train`), the predictive
    draws and the checks. A Laplace cell sets its prior precision as
    ``config.laplace_prior`` says, tuned on ``validation`` (``(x_val, y_val)``
    held out of ``(x, y)``) for ``"validation"``
    (:func:`~bayesjax.experiments.sweep.methods.predict_laplace`).
    """
    c = setup.config
    recipe = METHODS[c.method]
    run_key, sample_key, check_key = jax.random.split(jax.random.key(seed), 3)
    lj, algorithm, states, info = train(setup, temperature, run_key, x, y, bar_id)
    inputs = (x_test, x_ood)
    if recipe.laplace is not None:
        algorithm, states = laplace_at_map(*recipe.laplace, lj, states, x, y)
        predictives, prior_precision = predict_laplace(*recipe.laplace, lj, c, states, sample_key, inputs,
                                                       validation)
    else:
        predictives = predict_from_draws(lj, c, algorithm, states, sample_key, inputs, setup.memory_budget)
        prior_precision = jnp.nan
    record = evaluate(*predictives, y_test)
    nan = jnp.full((), jnp.nan, record["nll"].dtype)
    record["prior_precision"] = jnp.asarray(prior_precision, nan.dtype)
    if recipe.kind == "chains":
        record.update(sgmcmc_checks(lj, c, algorithm, states, info, check_key, x, y, momentum=recipe.momentum,
                                    memory_budget=setup.memory_budget))
    else:
        record.update({name: nan for name in CHECKS})
    num_diverged, record["diverged_at"] = divergence(states)
    # A cell that lost a chain or fit is not a sample of its temperature: its metrics are NaN, never the
    # numbers of whatever the surviving or non-finite parameters happen to predict.
    record = {name: jnp.where(num_diverged > 0, jnp.nan, value) if name in METRICS else value
              for name, value in record.items()}
    record["diverged_chains"] = num_diverged
    return record


@functools.partial(jax.jit, static_argnums=(0,))
def run_chunk(setup: Setup, temperatures, seeds, x, y, x_test, y_test, x_ood, bar_id, validation=None) -> dict:
    """A chunk of cells (leading axis of ``temperatures`` and ``seeds``) in one compiled call: one compile per setup.

    ``validation``: ``(x_val, y_val)``, the examples held out of ``(x, y)``
    when the Laplace prior is tuned on them (:func:`cell`), else ``None``.

    The chunk splits into ``G = gcd(cells, devices)`` groups of consecutive
    cells, as the driver shards its leading axis over ``G`` devices; the
    groups are vmapped (one per device). Within a group the cells are vmapped
    too, except for CNNs on the CPU, whose cells run one after another
    (``lax.map``): a vmap over convolution weights is a batched product of
    patch matrices, slower per example there than one cell after another
    (benchmarks/README.md), and one cell's activations at a time bound the
    memory. Results do not depend on the grouping.
    """
    def one(temperature, seed):
        return cell(setup, temperature, seed, x, y, x_test, y_test, x_ood, bar_id, validation)

    if not (setup.config.model == "cnn" and jax.default_backend() == "cpu"):
        return jax.vmap(one)(temperatures, seeds)
    groups = math.gcd(temperatures.shape[0], jax.device_count())
    grid = jax.tree.map(lambda a: a.reshape(groups, -1), (temperatures, seeds))
    records = jax.vmap(lambda grid: jax.lax.map(lambda ts: one(*ts), grid))(grid)
    return jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), records)
