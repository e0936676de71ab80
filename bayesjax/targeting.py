"""Builders' common tail: an :class:`~bayesjax.base.Algorithm` that declares its target and can be retargeted."""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable

from bayesjax.base import Algorithm
from bayesjax.model_state import with_model_state

if TYPE_CHECKING:
    from bayesjax.logjoint import LogJoint


def targeting(log_joint: LogJoint, init: Callable, step: Callable, sample: Callable, model_state: bool = True,
              **declared: Any) -> Algorithm:
    """An :class:`~bayesjax.base.Algorithm` whose ``step`` takes its target as the keyword ``log_joint``.

    Builders write ``step(key, state, batch, *, log_joint, ...)`` and call
    this, so the algorithm declares its target and can be retargeted. Where
    the log-joint's model has a training mode (BatchNorm, dropout), the
    algorithm is wrapped in :func:`bayesjax.model_state.with_model_state`.

    Args:
      log_joint: the target.
      init, step, sample: the method's functions (``step`` with a
        ``log_joint`` keyword).
      model_state: wrap for a model with a training mode; ``False`` for
        wrappers (ensembles) whose members carry their own model state.
      **declared: other declared fields (``markov_chain``).
    """

    def retarget(other: LogJoint) -> Algorithm:
        return targeting(other, init, step, sample, model_state, **declared)

    bound = functools.partial(step, log_joint=log_joint)
    algorithm = Algorithm(init, bound, sample, log_joint=log_joint, retarget=retarget, **declared)
    model = getattr(log_joint, "model", None)
    if model_state and model is not None and model.train_apply is not None:
        return with_model_state(algorithm)
    return algorithm
