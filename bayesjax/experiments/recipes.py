"""The one method table of the experiments: a method name -> its :class:`Recipe`.

A recipe says how a method is built from a tempered log-joint and a
:class:`Settings` (the hyperparameters each experiment fills from its own
configuration), how it is run (:data:`KINDS`), its defaults (the comparison's
:class:`Budget`) and its capabilities (which models the sweep runs it on,
whether it is full batch). ``bayesjax sweep`` (:mod:`bayesjax.experiments.sweep`,
with a traced temperature) and ``bayesjax compare``
(:mod:`bayesjax.experiments.compare`) both read :data:`METHODS`.

* ``map``: Adam on the log-joint; ``deep_ensemble``: MAP members from independent inits.
* ``laplace_diag``, ``laplace_kfac``, ``laplace_last_layer``: the MAP, then the
  GGN Laplace posterior at it (diagonal, KFAC, KFAC of the last layer).
* ``meanfield_vi``: Bayes by Backprop with Adam.
* ``swag``: SGD with momentum 0.9, collecting from half-way about once per
  epoch (rank :data:`SWAG_RANK`); ``multiswag``: SWAG members from independent inits.
* ``sgld``, ``sghmc``, ``cyclical_sgld``: SG-MCMC chains.
* ``hmc``: full-batch HMC with Stan window adaptation in the first half.
* ``mc_dropout``: Adam on the network with dropout (rate :data:`DROPOUT`), masks sampled at prediction.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import optax

from bayesjax.base import Algorithm
from bayesjax.inference import (
    cyclical,
    map,  # noqa: A004 (the module of bj.map)
    mc_dropout,
    sgmcmc,
    swag,
    vi,
)
from bayesjax.inference.mcmc import hmc
from bayesjax.logjoint import LogJoint
from bayesjax.types import Array

KINDS = ("single", "ensemble", "chains", "laplace")
"""How a recipe is run: ``single``, one run whose final state is the posterior
(MAP, VI, SWAG); ``ensemble``, members from independent inits vmapped in one
run; ``chains``, Markov chains from independent inits with a sample buffer;
``laplace``, the MAP (``build``), then the Laplace posterior at it."""

VI_INIT_SCALE = 1e-2
"""q's initial sigma per weight (the sweep scales it by sqrt(T))."""
SGHMC_FRICTION = 0.1
"""The comparison's SGHMC friction."""
CYCLES = 4
"""The comparison's cosine cycles of cyclical SGLD."""
SWAG_RANK = 20
"""Columns of SWAG's low-rank covariance."""
HMC_STEP_SIZE = 1e-3
"""HMC's initial leapfrog step size (then adapted)."""
HMC_LEAPFROG_STEPS = 10
DROPOUT = 0.1
"""MC dropout's rate (before the output layer of the CNN, after each hidden layer of the MLP)."""


class Budget(NamedTuple):
    """How much work a method gets in the comparison.

    Attributes:
      steps: optimizer / sampler steps per member or chain (HMC: transitions);
        ``None`` for post-hoc methods, which start from another method's fit.
      members: ensemble members or chains, vmapped in one jit.
      samples: draws in the predictive (Laplace GLM: function-space draws of its Monte Carlo parts).
    """

    steps: int | None
    members: int
    samples: int


class Settings(NamedTuple):
    """The hyperparameters a recipe's ``build`` reads; each experiment fills them from its configuration.

    Any of them may be traced where the builder allows it (the sweep's depend on the cell's temperature).

    Attributes:
      num_steps: steps of the run (cyclical SGLD's schedule, HMC's adaptation: the first half).
      learning_rate: Adam's (MAP, VI, ensemble members, the MAP under Laplace).
      step_size: SGLD and cyclical SGLD's learning rate per example (the start of each cycle).
      sghmc_step_size: SGHMC's learning rate per example (its drift moves at ``sghmc_step_size / friction``).
      friction: SGHMC's alpha.
      num_cycles: cyclical SGLD's cycles.
      vi_init_scale: q's initial sigma per weight.
      sgd_learning_rate: SWAG's SGD learning rate (on the per-example loss).
      precondition_every: SGHMC's layerwise preconditioner refresh period in steps (None: none).
      steps_per_epoch: SWAG collects about once per epoch.
    """

    num_steps: int | None
    learning_rate: float
    step_size: float | Array | None = None
    sghmc_step_size: float | Array | None = None
    friction: float | Array | None = None
    num_cycles: int | None = None
    vi_init_scale: float | Array = VI_INIT_SCALE
    sgd_learning_rate: float | None = None
    precondition_every: int | None = None
    steps_per_epoch: int | None = None


class Recipe(NamedTuple):
    """One method as the experiments run it.

    Attributes:
      build: ``(log_joint, settings) -> Algorithm``: one chain, one fit, one
        ensemble member, or (Laplace) the MAP the posterior starts from.
      kind: how it is run, one of :data:`KINDS`.
      budget: the comparison's default :class:`Budget`.
      summary: one line for ``bayesjax compare --help``.
      laplace: ``(hessian, subset)`` of a ``laplace`` recipe, else None.
      requires: a method whose fit the comparison starts this one from (its time is added to this one's).
      burnin: chains: the fraction of steps before draws are kept (comparison).
      sampled_fraction: chains: the fraction of steps after burn-in that sample (comparison).
      full_batch: every step sees the whole training set; the comparison runs it only
        on models with at most ``hmc_max_params`` weights.
      momentum: chains whose state carries an SGHMC momentum (the sweep's kinetic-temperature check).
      sweep_models: the models the sweep runs it on; ``()``: not a sweep method.
      dropout: the network is built with dropout at this rate (MC dropout); 0: without.
    """

    build: Callable[[LogJoint, Settings], Algorithm]
    kind: str
    budget: Budget
    summary: str
    laplace: tuple[str, str] | None = None
    requires: str | None = None
    burnin: float = 0.5
    sampled_fraction: float = 1.0
    full_batch: bool = False
    momentum: bool = False
    sweep_models: tuple[str, ...] = ()
    dropout: float = 0.0


def build_map(lj: LogJoint, settings: Settings) -> Algorithm:
    """Adam at ``learning_rate`` on the log-joint."""
    return map.build(lj, optax.adam(settings.learning_rate))


def build_mc_dropout(lj: LogJoint, settings: Settings) -> Algorithm:
    """Adam at ``learning_rate`` on the network with dropout in training (its log-joint built from the Model)."""
    return mc_dropout.build(lj, optax.adam(settings.learning_rate))


def build_meanfield_vi(lj: LogJoint, settings: Settings) -> Algorithm:
    """Bayes by Backprop: Adam at ``learning_rate`` on the tempered ELBO, q starting at ``vi_init_scale``."""
    return vi.build_meanfield(lj, optax.adam(settings.learning_rate), init_scale=settings.vi_init_scale)


def build_swag(lj: LogJoint, settings: Settings) -> Algorithm:
    """SGD momentum 0.9, collecting from half-way about once per epoch (at least :data:`SWAG_RANK` times
    when the steps allow)."""
    start = settings.num_steps // 2
    every = max(1, min(settings.steps_per_epoch, (settings.num_steps - start) // SWAG_RANK))
    return swag.build_swag(lj, optax.sgd(settings.sgd_learning_rate, momentum=0.9), start_step=start,
                           collect_every=every, rank=SWAG_RANK)


def build_sgld(lj: LogJoint, settings: Settings) -> Algorithm:
    return sgmcmc.build_sgld(lj, settings.step_size)


def build_sghmc(lj: LogJoint, settings: Settings) -> Algorithm:
    return sgmcmc.build_sghmc(lj, settings.sghmc_step_size, settings.friction, settings.precondition_every)


def build_cyclical_sgld(lj: LogJoint, settings: Settings) -> Algorithm:
    return cyclical.build_cyclical_sgld(lj, settings.step_size, settings.num_cycles, settings.num_steps)


def build_cyclical_sghmc(lj: LogJoint, settings: Settings) -> Algorithm:
    return cyclical.build_cyclical_sgld(lj, settings.sghmc_step_size, settings.num_cycles, settings.num_steps,
                                      friction=settings.friction, precondition_every=settings.precondition_every)


def build_hmc(lj: LogJoint, settings: Settings) -> Algorithm:
    """Full-batch HMC, :data:`HMC_LEAPFROG_STEPS` leapfrog steps, window adaptation in the first half."""
    return hmc.build_hmc(lj, step_size=HMC_STEP_SIZE, num_integration_steps=HMC_LEAPFROG_STEPS,
                         num_adaptation_steps=settings.num_steps // 2)


def _laplace(hessian: str, subset: str, summary: str, sweep_models: tuple[str, ...]) -> Recipe:
    return Recipe(build_map, "laplace", Budget(None, 1, 100), summary, laplace=(hessian, subset), requires="map",
                  sweep_models=sweep_models)


METHODS: dict[str, Recipe] = {
    "map": Recipe(build_map, "single", Budget(2000, 1, 1), "Adam at --learning-rate"),
    "laplace_diag": _laplace("diag", "all", "diagonal GGN Laplace at the MAP", ("mlp", "cnn")),
    # The sweep's streaming KFAC covers dense layers only.
    "laplace_kfac": _laplace("kfac", "all", "KFAC GGN Laplace at the MAP (Dense and Conv layers)", ("mlp",)),
    "laplace_last_layer": _laplace("kfac", "last_layer", "KFAC GGN Laplace of the last layer at the MAP",
                                   ("mlp", "cnn")),
    "meanfield_vi": Recipe(build_meanfield_vi, "single", Budget(2000, 1, 50),
                           "Bayes by Backprop, Adam at --learning-rate", sweep_models=("mlp", "cnn")),
    "swag": Recipe(build_swag, "single", Budget(2000, 1, 30),
                   f"SGD momentum 0.9, collects from half-way ~once per epoch, rank {SWAG_RANK}"),
    "multiswag": Recipe(build_swag, "ensemble", Budget(2000, 4, 40), "SWAG members from independent inits"),
    "deep_ensemble": Recipe(build_map, "ensemble", Budget(2000, 4, 4), "MAP members from independent inits"),
    "sgld": Recipe(build_sgld, "chains", Budget(2000, 4, 100), "--step-size, second half kept",
                   sweep_models=("mlp", "cnn")),
    "sghmc": Recipe(build_sghmc, "chains", Budget(2000, 4, 100),
                    f"friction {SGHMC_FRICTION}, SGLD's drift, second half kept", momentum=True,
                    sweep_models=("mlp", "cnn")),
    "cyclical_sgld": Recipe(build_cyclical_sgld, "chains", Budget(2000, 4, 100),
                            f"{CYCLES} cosine cycles from --step-size, sampling phases kept", burnin=0.0,
                            sampled_fraction=0.5, sweep_models=("mlp", "cnn")),
    "cyclical_sghmc": Recipe(build_cyclical_sghmc, "chains", Budget(2000, 4, 100),
                             f"{CYCLES} cosine cycles, SGHMC's drift and friction, sampling phases kept", burnin=0.0,
                             sampled_fraction=0.5, momentum=True, sweep_models=("mlp", "cnn")),
    "hmc": Recipe(build_hmc, "chains", Budget(1000, 2, 100),
                  f"full batch, {HMC_LEAPFROG_STEPS} leapfrog steps, adapts in the first half; the reference",
                  full_batch=True),
    "mc_dropout": Recipe(build_mc_dropout, "single", Budget(2000, 1, 50),
                         f"Adam at --learning-rate with dropout {DROPOUT}, masks sampled at prediction",
                         sweep_models=("mlp", "cnn"), dropout=DROPOUT),
}


def describe_methods() -> str:
    """The method table with the comparison's default budgets, for ``bayesjax compare --help``."""
    lines = [f"{'method':<20}{'steps':>6}{'members':>8}{'samples':>8}  settings"]
    for name, recipe in METHODS.items():
        budget = recipe.budget
        steps = "MAP" if budget.steps is None else budget.steps
        lines.append(f"{name:<20}{steps:>6}{budget.members:>8}{budget.samples:>8}  {recipe.summary}")
    return "\n".join(lines)
