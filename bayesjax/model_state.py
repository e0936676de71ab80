"""A model's state and training mode carried through an algorithm's steps.

For a network with BatchNorm or dropout (a :class:`~bayesjax.models.Model`
with a ``train_apply``), :func:`with_model_state` wraps any method built on a
log-joint of that model. Each step

1. aims the method at the log-joint in training mode: the model's outputs
   are ``train_apply(params, state, x, key)`` (BatchNorm normalizes by the
   batch's statistics, dropout draws its mask from a fresh key), a pure
   function of the weights for this step;
2. steps the method on the batch (its gradients, noise and prior see the
   weights only);
3. updates the model state the flax way, from the same forward pass at the
   weights the gradient was taken at (BatchNorm: an exponential moving
   average of the batch statistics; XLA computes that forward pass once).

Samples are :class:`~bayesjax.models.Variables`: a Markov chain keeps each
visited position with the state of that step, an approximate posterior's
draws carry the state of its current iterate. So the predictive evaluates
each sample with its own statistics and a test prediction never depends on
the other test points.

Every bayesjax builder wraps itself when its log-joint was built from a
:class:`~bayesjax.models.Model` with a training mode (``bj.log_joint(model,
...)``); ensembles wrap their members, each with its own state.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from bayesjax.base import Algorithm
from bayesjax.models.model import Model, ModelState, Variables
from bayesjax.trees import repeat_params
from bayesjax.types import Batch, Info, Params, PRNGKey, State


class ModelStateState(NamedTuple):
    """State of :func:`with_model_state`.

    Attributes:
      inner: the method's state (over the weights).
      model_state: the model's state, or ``None`` for a model without one
        (dropout only).
    """

    inner: State
    model_state: ModelState | None

    @property
    def position(self) -> Params:
        """A Markov chain's position with its model state, as :class:`~bayesjax.models.Variables`."""
        position = self.inner.position
        return position if self.model_state is None else Variables(position, self.model_state)


def current_weights(state: State) -> Params:
    """The weights a method's step takes its gradient at: a chain's ``position``, an optimizer's ``params``."""
    for field in ("position", "params"):
        if hasattr(state, field):
            return getattr(state, field)
    raise TypeError(f"{type(state).__name__} has neither `position` nor `params`: the weights at which to update "
                    f"the model state (BatchNorm statistics) are unknown for this method")


def in_training_mode(log_joint, model_state: ModelState | None, key: PRNGKey):
    """The log-joint whose model runs in training mode with ``model_state`` and the dropout ``key``."""
    train_apply = log_joint.model.train_apply

    def apply(params: Params, x) -> jax.Array:
        return train_apply(params, model_state, x, key)[0]

    return dataclasses.replace(log_joint, apply=apply, model=None)


def in_evaluation_mode(log_joint, state: ModelState):
    """The log-joint whose model runs in evaluation mode with its state fixed at ``state``.

    What post-hoc methods (Laplace) differentiate: BatchNorm is then a fixed
    affine map of its input, as at prediction time.
    """
    model_apply = log_joint.apply

    def apply(params: Params, x) -> jax.Array:
        return model_apply(Variables(params, state), x)

    return dataclasses.replace(log_joint, apply=apply, model=None)


def with_model_state(algorithm: Algorithm) -> Algorithm:
    """Carries the model state of ``algorithm.log_joint.model`` through the steps of ``algorithm``.

    Args:
      algorithm: a method whose declared ``log_joint`` was built from a
        :class:`~bayesjax.models.Model` with a ``train_apply``, and that can
        be retargeted (every bayesjax builder).

    Returns:
      An :class:`Algorithm` over :class:`ModelStateState` whose ``init``
      takes the :class:`~bayesjax.models.Variables` that ``model.init``
      returns (or bare weights for a model without state) and whose samples
      are :class:`~bayesjax.models.Variables` where the model has state.
    """
    log_joint = algorithm.log_joint
    if algorithm.retarget is None:
        raise ValueError("a model with a training mode needs a method that can be retargeted (a bayesjax builder)")
    model = log_joint.model

    def init(key: PRNGKey, params: Params | Variables) -> ModelStateState:
        if isinstance(params, Variables):
            return ModelStateState(algorithm.init(key, params.params), params.state)
        return ModelStateState(algorithm.init(key, params), None)

    def step(key: PRNGKey, state: ModelStateState, batch: Batch) -> tuple[ModelStateState, Info]:
        model_key, step_key = jax.random.split(key)
        training = algorithm.retarget(in_training_mode(log_joint, state.model_state, model_key))
        inner, info = training.step(step_key, state.inner, batch)
        model_state = state.model_state
        if model_state is not None:
            _, model_state = model.train_apply(current_weights(state.inner), model_state, batch[0], model_key)
        return ModelStateState(inner, model_state), info

    def sample(key: PRNGKey, state: ModelStateState, num_samples: int) -> Params:
        samples = algorithm.sample(key, state.inner, num_samples)
        if state.model_state is None:
            return samples
        stacked = repeat_params(state.model_state, num_samples)
        if isinstance(samples, Variables):  # MC dropout's samples carry their masks' keys
            return samples._replace(state=stacked)
        return Variables(samples, stacked)

    return Algorithm(init, step, sample, log_joint=log_joint, retarget=algorithm.retarget,
                     markov_chain=algorithm.markov_chain, recompute_statistics=algorithm.recompute_statistics)


class TrainingInputs(NamedTuple):
    """Training inputs kept to recompute each sample's statistics (:func:`recompute_statistics`).

    Attributes:
      model: the model.
      inputs: a subset of the training inputs, ``[num_batches * batch_size, ...]``.
      batch_size: the training batch size.
    """

    model: Model
    inputs: jax.Array
    batch_size: int

    def recompute(self, samples: Variables, key: PRNGKey) -> Variables:
        """``samples`` with the statistics of their own weights."""
        return recompute_statistics(self.model, samples, self.inputs, key, self.batch_size)


STATISTICS_BATCHES = 16
"""Training batches a run keeps for :func:`recompute_statistics` (a random subset of the inputs)."""


def training_inputs(model, x: jax.Array, batch_size: int, key: PRNGKey) -> TrainingInputs:
    """A random subset of ``x``, :data:`STATISTICS_BATCHES` batches at most, for :func:`recompute_statistics`."""
    batch_size = min(batch_size, x.shape[0])
    num = min(STATISTICS_BATCHES, x.shape[0] // batch_size) * batch_size
    chosen = jax.random.choice(key, x.shape[0], (num,), replace=False)
    return TrainingInputs(model, x[chosen], batch_size)


def recompute_statistics(model: Model, samples: Variables, x, key: PRNGKey, batch_size: int = 256) -> Variables:
    """Each sample's BatchNorm statistics recomputed on training inputs (Maddox et al. 2019's ``bn_update``).

    A SWAG or variational draw has weights no step visited, so the running
    statistics of the iterate do not belong to it. For each sample j the
    state becomes the average over the batches ``b`` of ``x`` of the batch
    statistics in training mode,

        s_j = (1 / |batches|) sum_b stat(theta_j, x_b),

    Maddox, Garipov, Izmailov, Vetrov & Wilson 2019 ("A simple baseline for
    Bayesian uncertainty in deep learning"). The batch statistic is read
    from the model's own update rule, assumed to be an exponential moving
    average ``new = m old + (1 - m) stat`` (flax BatchNorm, linen and nnx):
    two training-mode passes from old states 0 and 1 give ``m`` and ``stat``.

    Args:
      model: the :class:`~bayesjax.models.Model` (with a ``train_apply``).
      samples: :class:`~bayesjax.models.Variables` stacked on a leading sample axis.
      x: training inputs ``[N, ...]``; ``N // batch_size`` full batches are used.
      key: dropout key of the passes.
      batch_size: examples per batch, as in training (BatchNorm's statistics depend on it).

    Returns:
      ``samples`` with their state replaced; the samples run one after another.
    """
    num_batches = x.shape[0] // batch_size
    if num_batches < 1:
        raise ValueError(f"recompute_statistics needs at least batch_size={batch_size} inputs, got {x.shape[0]}")
    batches = x[: num_batches * batch_size].reshape((num_batches, batch_size) + x.shape[1:])

    def batch_statistic(params: Params, like: ModelState, x_batch, batch_key: PRNGKey) -> ModelState:
        _, from_zero = model.train_apply(params, jax.tree.map(jnp.zeros_like, like), x_batch, batch_key)
        _, from_one = model.train_apply(params, jax.tree.map(jnp.ones_like, like), x_batch, batch_key)
        return jax.tree.map(lambda zero, one: zero / (1.0 - (one - zero)), from_zero, from_one)

    def one_sample(args) -> ModelState:
        params, state, sample_key = args

        def add(total, inputs):
            x_batch, batch_key = inputs
            return jax.tree.map(jnp.add, total, batch_statistic(params, state, x_batch, batch_key)), None

        zeros = jax.tree.map(jnp.zeros_like, state)
        total, _ = jax.lax.scan(add, zeros, (batches, jax.random.split(sample_key, num_batches)))
        return jax.tree.map(lambda leaf: leaf / num_batches, total)

    num_samples = jax.tree.leaves(samples.params)[0].shape[0]
    states = jax.lax.map(one_sample, (samples.params, samples.state, jax.random.split(key, num_samples)))
    return samples._replace(state=states)
