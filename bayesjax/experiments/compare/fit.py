"""Fitting one method of the comparison: its recipe run on the shared :class:`Problem`, ready to predict.

A recipe's ``kind`` says how (:data:`bayesjax.experiments.recipes.KINDS`): a
single run from the shared initialization, an ensemble or Markov chains from
independent initializations (split over the devices present), or a Laplace
posterior at the MAP's fit, its prior precision set as the configuration's
``laplace_prior`` says (:func:`~bayesjax.experiments.validation.tune_prior`:
for ``"validation"``, the grid value whose GLM probit predictive has the least
NLL on the validation split, also when ``laplace_predictive="mc"``).
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax

from bayesjax import sharding
from bayesjax.base import Algorithm
from bayesjax.driver.posterior import Posterior
from bayesjax.experiments.compare.problem import Problem
from bayesjax.experiments.recipes import CYCLES, SGHMC_FRICTION, Budget, Recipe, Settings
from bayesjax.experiments.validation import tune_prior
from bayesjax.inference import ensemble
from bayesjax.inference.laplace import laplace
from bayesjax.inference.laplace.glm import predictive_glm
from bayesjax.run import run
from bayesjax.types import PRNGKey

SWAG_RATE = 0.05
"""Per-example learning rate of SWAG's SGD (see :meth:`Problem.rate`)."""


class Fitted(NamedTuple):
    """A fitted posterior, ready to predict.

    Attributes:
      predict: ``(args, x) -> Predictive``, jitted or jitted inside.
      args: the posterior's arrays (stacked draws, or a Laplace posterior and a key).
      prior_precision: Laplace: the prior precision of its posterior; else None.
    """

    predict: Callable
    args: object
    prior_precision: float | None = None


def settings(problem: Problem, budget: Budget) -> Settings:
    """The comparison's hyperparameters: SG-MCMC at :attr:`Problem.step_size`, SGHMC at SGLD's drift
    (step size times :data:`~bayesjax.experiments.recipes.SGHMC_FRICTION`), SWAG's SGD at
    :data:`SWAG_RATE` per example."""
    return Settings(
        num_steps=budget.steps,
        learning_rate=problem.config.learning_rate,
        step_size=problem.step_size,
        sghmc_step_size=SGHMC_FRICTION * problem.step_size,
        friction=SGHMC_FRICTION,
        num_cycles=None if budget.steps is None else min(CYCLES, budget.steps),
        sgd_learning_rate=problem.rate(SWAG_RATE),
        steps_per_epoch=problem.num_data // problem.batch_size,
    )


def _mesh(num_chains: int):
    """A mesh splitting ``num_chains`` over as many devices as divide it (None when that is one)."""
    devices = math.gcd(num_chains, jax.device_count())
    return sharding.mesh(chains=devices) if devices > 1 else None


def _run(problem: Problem, algorithm: Algorithm, key: PRNGKey, budget: Budget, *, num_chains: int = 1,
         full_batch: bool = False, burnin: int = 0, sampled_fraction: float | None = None) -> Posterior:
    """``bayesjax.run``: a single run starts from ``problem.params``, several chains from their own inits.

    Markov chains (``sampled_fraction`` given) keep ``samples / chains`` draws each, spread evenly over
    the steps after ``burnin`` (of which ``sampled_fraction`` are sampling steps); other methods take no
    burn-in or thinning (``bj.run`` refuses them).
    """
    kept = {}
    if sampled_fraction is not None:
        per_chain = -(-budget.samples // num_chains)
        thin = max(1, int(sampled_fraction * (budget.steps - burnin)) // per_chain)
        kept = dict(burnin=burnin, thin=thin, num_samples=per_chain)
    start = problem.init if num_chains > 1 else problem.params()
    return run(key, algorithm, start, problem.data, num_steps=budget.steps,
               batch_size=None if full_batch else problem.batch_size, num_chains=num_chains, progress=False,
               mesh=_mesh(num_chains), **kept)


def _draws(problem: Problem, algorithm: Algorithm, key: PRNGKey, budget: Budget, **run_kwargs) -> Fitted:
    """Runs ``algorithm`` and keeps ``budget.samples`` draws of its posterior."""
    run_key, sample_key = jax.random.split(key)
    posterior = _run(problem, algorithm, run_key, budget, **run_kwargs)
    return Fitted(problem.predict_draws, posterior.sample(sample_key, budget.samples))


def _laplace(problem: Problem, recipe: Recipe, budget: Budget, key: PRNGKey, base: Fitted) -> Fitted:
    """A post-hoc Laplace fit at the MAP (the first draw of ``base``), its prior tuned, with the configured
    predictive."""
    hessian, subset = recipe.laplace
    params_map = jax.tree.map(lambda leaf: leaf[0], base.args)
    posterior = laplace(problem.log_joint, params_map, problem.data, hessian=hessian, subset=subset)
    posterior, precision = tune_prior(posterior, problem.config.laplace_prior, problem.validation)
    precision = float(precision)  # untuned: the prior's 1 / prior_scale^2
    if problem.config.laplace_predictive == "mc":
        return Fitted(problem.predict_draws, posterior.sample(key, budget.samples), precision)

    def predict(args, x):  # jitted inside, and not jittable from outside
        post, glm_key = args
        return predictive_glm(post, x, "probit", key=glm_key, num_samples=budget.samples)

    return Fitted(predict, (posterior, key), precision)


def fit(problem: Problem, recipe: Recipe, budget: Budget, key: PRNGKey, base: Fitted | None) -> Fitted:
    """Fits ``recipe`` with ``budget``.

    Args:
      problem: the shared data, target and initialization.
      recipe: the method.
      budget: its steps, members or chains, and predictive draws.
      key: the method's key.
      base: the fit of ``recipe.requires`` (Laplace: the MAP's), else None.

    Returns:
      The fitted posterior.
    """
    if recipe.kind == "laplace":
        return _laplace(problem, recipe, budget, key, base)
    problem = problem.for_recipe(recipe)
    algorithm = recipe.build(problem.log_joint, settings(problem, budget))
    if recipe.kind == "ensemble":
        algorithm = ensemble.build(algorithm, budget.members, init=problem.init, mesh=_mesh(budget.members))
    if recipe.kind != "chains":
        return _draws(problem, algorithm, key, budget)
    return _draws(problem, algorithm, key, budget, num_chains=budget.members, burnin=int(recipe.burnin * budget.steps),
                  sampled_fraction=recipe.sampled_fraction, full_batch=recipe.full_batch)
