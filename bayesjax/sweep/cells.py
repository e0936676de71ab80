"""One grid cell as a pure function of a traced (temperature, seed), and a chunk of cells as one vmapped jit."""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax import metrics, models, priors
from bayesjax.base import BufferedState, all_finite
from bayesjax.logjoint import log_joint
from bayesjax.run import RunConfig, buffered, run_chains
from bayesjax.sweep.config import LIKELIHOODS, SweepConfig
from bayesjax.sweep.methods import METHODS
from bayesjax.sweep.temperature import CHECKS

METRICS = ("accuracy", "nll", "ece", "brier", "ood_auroc")
DIAGNOSTICS = CHECKS + ("diverged_chains",)


def ood_inputs(x_test: np.ndarray, shift: str, seed: int = 0) -> np.ndarray:
    """A shifted copy of the test inputs to score out-of-distribution detection.

    ``rot90`` rotates images a quarter turn; ``flip`` mirrors them upside down;
    ``noise`` replaces inputs by standard Gaussian noise of the same shape.
    """
    if shift == "noise":
        return np.random.default_rng(seed).normal(size=x_test.shape).astype(x_test.dtype)
    if x_test.ndim != 4:
        raise ValueError(f"ood={shift!r} needs images [N, H, W, C]; this data set has inputs {x_test.shape[1:]}")
    return np.ascontiguousarray(np.rot90(x_test, axes=(1, 2)) if shift == "rot90" else x_test[:, ::-1])


class Setup(NamedTuple):
    """The static, hashable part of a sweep: one compile per value."""

    config: SweepConfig
    model: models.Model
    augment: Callable | None
    num_data: int
    progress_every: int  # 0: no progress callback (then the program can enter the persistent cache)


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


def _num_diverged(states) -> jax.Array:
    """Chains whose sample buffer saw a divergence, or fits whose final state is not finite."""
    if isinstance(states, BufferedState):
        return jnp.sum(states.diverged_at >= 0)
    return jnp.sum(~jax.vmap(all_finite)(states))


def cell(setup: Setup, temperature, seed, x, y, x_test, y_test, x_ood, bar_id) -> dict:
    """One grid cell end to end: traced temperature and seed, static everything else.

    Keys: ``split(key(seed), 3)`` for the run (chain k: ``fold_in(run_key, k)``,
    as :func:`bayesjax.run`), the predictive draws and the checks.
    """
    c = setup.config
    method = METHODS[c.method]
    lik = LIKELIHOODS[c.likelihood]()
    lj = log_joint(setup.model.apply, priors.gaussian(c.prior_scale), lik, setup.num_data,
                   temperature=temperature, tempering=c.tempering)
    algorithm = method.build(lj, c)
    run_key, sample_key, check_key = jax.random.split(jax.random.key(seed), 3)
    buffer = (c.num_predictive_samples, c.burnin, c.thin) if method.chains else None
    config = RunConfig(c.num_steps, c.batch_size, c.num_chains if method.chains else 1, buffer,
                       init_fn=lambda k: setup.model.init(k, x[:1]), augment=setup.augment,
                       progress_every=setup.progress_every)
    states, info = run_chains(algorithm, config, run_key, None, x, y, bar_id)
    algorithm = buffered(algorithm, config)
    if method.posthoc is not None:
        algorithm, states = method.posthoc(lj, c, states, x, y)
    record = evaluate(*method.predict(lj, c, algorithm, states, sample_key, (x_test, x_ood)), y_test)
    if method.diagnostics is not None:
        record.update(method.diagnostics(lj, c, algorithm, states, info, check_key, x, y))
    else:
        record.update({name: jnp.full((), jnp.nan, record["nll"].dtype) for name in CHECKS})
    record["diverged_chains"] = _num_diverged(states)
    return record


@functools.partial(jax.jit, static_argnums=(0,))
def run_chunk(setup: Setup, temperatures, seeds, x, y, x_test, y_test, x_ood, bar_id) -> dict:
    """A chunk of cells (leading axis of ``temperatures`` and ``seeds``) in one vmap: one compile per setup."""
    return jax.vmap(functools.partial(cell, setup), (0, 0, None, None, None, None, None, None))(
        temperatures, seeds, x, y, x_test, y_test, x_ood, bar_id
    )
