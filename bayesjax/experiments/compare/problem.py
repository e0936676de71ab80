"""What every method of a comparison shares (:class:`Problem`), and :func:`setup`, which builds it.

:func:`~bayesjax.experiments.validation.hold_out` carves the validation split
out of the training split; the methods train on the rest.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, NamedTuple

import jax
import numpy as np

from bayesjax import data, likelihoods, models, priors
from bayesjax.data import Dataset
from bayesjax.experiments.compare.config import CompareConfig
from bayesjax.experiments.ood import default_shift, ood_inputs
from bayesjax.experiments.recipes import METHODS, Recipe
from bayesjax.experiments.validation import hold_out
from bayesjax.logjoint import LogJoint, log_joint
from bayesjax.predictive import predictive
from bayesjax.trees import num_params
from bayesjax.types import Params, PRNGKey

SGMCMC_RATE = 0.15
"""SG-MCMC learning rate per example (see :meth:`Problem.rate`)."""


class Problem(NamedTuple):
    """What every method shares: data, model, target, starting point, keys.

    Attributes:
      config: the validated configuration (``ood`` and ``laplace_prior`` resolved).
      dataset: the data set, its training split without the validation examples.
      model: the network.
      log_joint: the tempered target.
      num_params: weights of the model.
      x_ood: the shifted test inputs (classification), else ``None``.
      predict_draws: jitted ``(samples, x) -> Predictive`` shared by every
        method that predicts from stored draws, so equal shapes compile once.
      params: ``() -> params``, the shared initialization of single runs (MAP, VI, SWAG),
        computed on first use.
      key: root of the methods' keys (:meth:`Problem.method_key`).
      validation: ``(x_val, y_val)`` held out of the training split
        (:func:`~bayesjax.experiments.validation.hold_out`), or ``None``.
    """

    config: CompareConfig
    dataset: Dataset
    model: models.Model
    log_joint: LogJoint
    num_params: int
    x_ood: np.ndarray | None
    predict_draws: Callable
    params: Callable[[], Params]
    key: PRNGKey
    validation: tuple[np.ndarray, np.ndarray] | None = None

    def init(self, key: PRNGKey) -> Params:
        """A fresh initialization (each chain or member gets its own key)."""
        return self.model.init(key, self.dataset.x_train[:1])

    def method_key(self, name: str) -> PRNGKey:
        """A method's key depends on the seed and its name only, not on which others run."""
        return jax.random.fold_in(self.key, list(METHODS).index(name))

    @property
    def data(self):
        return self.dataset.x_train, self.dataset.y_train

    @property
    def num_data(self) -> int:
        return len(self.dataset.y_train)

    @property
    def batch_size(self) -> int:
        return min(self.config.batch_size, self.num_data)

    def rate(self, per_example: float) -> float:
        """A learning rate per example for the task's curvature.

        SG-MCMC and SWAG's SGD step along the per-example loss
        (:meth:`~bayesjax.logjoint.LogJoint.loss`), whose curvature is a
        Gaussian likelihood's ``noise_std**-2`` per example (a categorical's
        at most 1/4), so regression takes ``per_example * noise_std**2``:
        one default for either task.
        """
        curvature = 1.0 if self.dataset.task == "classification" else self.config.noise_std**-2
        return per_example / curvature

    @property
    def step_size(self) -> float:
        """SG-MCMC learning rate per example: ``config.step_size``, else :data:`SGMCMC_RATE`."""
        return self.config.step_size or self.rate(SGMCMC_RATE)

    def for_recipe(self, recipe: Recipe) -> Problem:
        """The problem a recipe runs on: with its dropout, the same weights in a network that drops units."""
        if not recipe.dropout:
            return self
        model = network(self.config, self.num_outputs, recipe.dropout)
        target = dataclasses.replace(self.log_joint, apply=model.apply, model=model)
        likelihood = target.likelihood
        predict_draws = jax.jit(lambda samples, x: predictive(model.apply, samples, x, likelihood))
        return self._replace(model=model, log_joint=target, predict_draws=predict_draws)

    @property
    def num_outputs(self) -> int:
        return self.dataset.num_classes if self.dataset.task == "classification" else 1


def network(config: CompareConfig, num_outputs: int, dropout: float = 0.0) -> models.Model:
    """The comparison's network: ``bj.models.cnn`` or ``mlp(config.hidden)``, with dropout at ``dropout``."""
    if config.model == "cnn":
        return models.cnn(num_outputs, dropout=dropout)
    return models.mlp(config.hidden, num_outputs, dropout=dropout)


def unavailable(problem: Problem, recipe: Recipe) -> str | None:
    """Why ``recipe`` cannot run on ``problem`` (a full-batch method on a model above the HMC limit), or None."""
    limit = problem.config.hmc_max_params
    if recipe.full_batch and problem.num_params > limit:
        return f"the model has {problem.num_params:,} weights, more than the HMC limit {limit:,} (--hmc-max-params)"
    return None


def setup(config: CompareConfig) -> tuple[Problem, list[str], dict[str, str]]:
    """Loads the data and builds the shared target; decides which methods run.

    Everything that can fail on bad arguments fails here, before any training.

    Returns:
      ``(problem, methods, skipped)``: the methods to run, in table order
      (or the requested order), and the default ones left out, with the reason.

    Raises:
      ValueError: unknown data set, bad settings, an image OOD shift on
        non-image data, a validation split that leaves either part empty, or
        a requested method the model does not allow.
    """
    config.validate()
    # The first two keys are those of split(root, 2): a validation split does not move the methods' keys.
    key, init_key, validation_key = jax.random.split(jax.random.key(config.seed), 3)
    dataset, validation = hold_out(data.load(config.dataset, split=config.split, root=config.data_root),
                                   config.validation_fraction, validation_key)
    if config.laplace_prior is None:
        config = dataclasses.replace(config, laplace_prior="untuned" if validation is None else "validation")
    classification = dataset.task == "classification"
    num_outputs = dataset.num_classes if classification else 1
    model = network(config, num_outputs)
    likelihood = likelihoods.categorical() if classification else likelihoods.gaussian(config.noise_std)
    target = log_joint(model.apply, priors.gaussian(config.prior_scale), likelihood, num_data=len(dataset.y_train),
                       temperature=config.temperature)
    shapes = jax.eval_shape(model.init, jax.random.key(0), dataset.x_train[:1])
    x_ood = None
    if classification:
        config = dataclasses.replace(config, ood=config.ood or default_shift(dataset.x_test))
        x_ood = ood_inputs(dataset.x_test, config.ood)
    elif config.ood is not None:
        raise ValueError(f"ood is for classification; {dataset.name!r} is a regression data set")
    predict_draws = jax.jit(lambda samples, x: predictive(model.apply, samples, x, likelihood))
    params = functools.cache(lambda: jax.jit(model.init)(init_key, dataset.x_train[:1]))
    problem = Problem(config, dataset, model, target, num_params(shapes), x_ood, predict_draws, params, key,
                      validation)

    names, skipped = list(config.methods or METHODS), {}
    for name in names:
        reason = unavailable(problem, METHODS[name])
        if reason is not None and config.methods is not None:
            raise ValueError(f"{name} cannot run: {reason}")
        if reason is not None:
            skipped[name] = reason
    return problem, [n for n in names if n not in skipped], skipped
