"""Maximum a posteriori estimation with any optax optimizer.

    theta* = argmax_theta log p_T(theta | D)

the mode of the tempered log-joint (which temperature does not move under
posterior tempering), found by minimizing the per-example loss U / N. The posterior it reports is the point mass at the
current iterate, so it feeds the same predictive as every other method.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import optax

from bayesjax.base import Algorithm, cached_builder
from bayesjax.targeting import targeting
from bayesjax.logjoint import LogJoint
from bayesjax.trees import repeat_params
from bayesjax.types import Array, Batch, Params, PRNGKey


class MAPState(NamedTuple):
    """Parameters and the optimizer's state."""

    params: Params
    opt_state: optax.OptState


class MAPInfo(NamedTuple):
    """The tempered log-joint estimate at the step's starting parameters."""

    log_joint: Array


def init(params: Params, optimizer: optax.GradientTransformation) -> MAPState:
    """Starts at ``params`` with a fresh optimizer state."""
    return MAPState(params, optimizer.init(params))


def step(
    state: MAPState, batch: Batch, *, log_joint: LogJoint, optimizer: optax.GradientTransformation
) -> tuple[MAPState, MAPInfo]:
    """One optimizer step on the per-example loss U / N (:meth:`~bayesjax.logjoint.LogJoint.loss`)."""
    value, grad = log_joint.value_and_loss_grad(state.params, batch)
    updates, opt_state = optimizer.update(grad, state.opt_state, state.params)
    return MAPState(optax.apply_updates(state.params, updates), opt_state), MAPInfo(value)


def sample(state: MAPState, num_samples: int) -> Params:
    """``num_samples`` copies of the MAP estimate (a point-mass posterior)."""
    return repeat_params(state.params, num_samples)


@cached_builder
def build(log_joint: LogJoint, optimizer: optax.GradientTransformation) -> Algorithm:
    """Maximum a posteriori estimation with any optax optimizer, as an :class:`Algorithm`.

    Objective: the mode of the tempered posterior, found by minimizing the
    per-example loss (:meth:`~bayesjax.logjoint.LogJoint.loss`)

        U / N = -T log_joint / N = -(1/|B|) sum_B log p(y | x, theta) - log p(theta) / N

    on each minibatch B (posterior tempering; under likelihood tempering the
    prior term is multiplied by T). Update: ``optax`` on ``grad (U / N)``.
    Temperature does not move the mode under posterior tempering (the loss is
    the same at every T); under likelihood tempering T weighs the prior.

    Learning rate: the optimizer meets the gradient of the *mean* loss, as in
    any JAX training loop, so ``optax.sgd(0.1)`` or ``optax.adam(1e-3)``
    means what it means there, at every data size N and temperature. No
    default: Adam at 1e-3 (``bayesjax compare``'s) trains the digits and
    Fashion-MNIST networks; pick another as for ordinary training (watch
    ``post.info.log_joint`` rise).

    State and info: :class:`MAPState` (``params``, ``opt_state``) and
    :class:`MAPInfo` (``log_joint``: the minibatch estimate of the tempered
    log-joint before the step). The posterior is the point mass at
    ``params``: ``sample`` repeats it.

    Args:
      log_joint: the tempered log-joint to maximize.
      optimizer: an optax optimizer. It minimizes the per-example loss
        U / N = -T log_joint / N (mean negative log-likelihood plus the
        prior's 1/N share), so ``optax.sgd(0.1)`` means what it means for
        any JAX training loop, at every data size and temperature.

    Returns:
      An :class:`Algorithm` over :class:`MAPState` with :class:`MAPInfo`.

    Example:
      >>> algo = bj.map(lj, optax.adam(1e-3))
      >>> post = bj.run(key, algo, params, (x, y), num_steps=20, batch_size=50, progress=False)
      >>> post.sample(key, 3)["Dense_0"]["kernel"].shape   # three copies of the estimate
      (3, 64, 16)
    """

    def init_fn(key: PRNGKey, params: Params) -> MAPState:
        del key
        return init(params, optimizer)

    def step_fn(key: PRNGKey, state: MAPState, batch: Batch, *, log_joint: LogJoint) -> tuple[MAPState, MAPInfo]:
        del key
        return step(state, batch, log_joint=log_joint, optimizer=optimizer)

    def sample_fn(key: PRNGKey, state: MAPState, num_samples: int) -> Params:
        del key
        return sample(state, num_samples)

    return targeting(log_joint, init_fn, step_fn, sample_fn)
