"""The :class:`Model` type: a network as pure functions, its :class:`Variables`, and the check that parameters fit it.

A network is Bayesian in its weights (``params``) and may carry more:

* non-Bayesian state, such as BatchNorm's running statistics, updated by
  every training step and read in evaluation mode;
* randomness in training, such as dropout, which needs a key per step.

Such a model declares a ``train_apply`` beside its evaluation-mode
``apply``. Its ``init`` returns :class:`Variables` (weights and state
together) where it has state, and every inference method carries the state
through its steps (:func:`bayesjax.model_state.with_model_state`): samples
of such a model are :class:`Variables`, each with the statistics of its own
weights, so a prediction never depends on the other test points.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from bayesjax.types import Array, ArrayTree, Params, PRNGKey

ModelState = ArrayTree
"""A network's non-Bayesian state, e.g. ``{"batch_stats": ...}``: updated in training, read in evaluation."""


class Variables(NamedTuple):
    """A network's weights with what else evaluation reads: its state, and a dropout mask's key.

    A pytree: stacked along a leading sample axis it is a set of samples that
    :func:`bayesjax.predictive` averages like plain parameters.

    Attributes:
      params: the weights, the Bayesian part (priors, gradients and noise see only these).
      state: the model state for evaluation mode, e.g. BatchNorm's statistics.
      dropout_key: ``None`` for a deterministic evaluation; a key switches
        dropout on with the mask it draws (a sample of MC dropout, Gal &
        Ghahramani 2016).
    """

    params: Params
    state: ModelState = None
    dropout_key: PRNGKey | None = None


class Model(NamedTuple):
    """A neural network as pure functions.

    Attributes:
      init: ``(key, x_example) -> params``; ``x_example`` is a batch of inputs
        ``[B, ...]`` (one example suffices) fixing the input feature shape.
        A model with state returns :class:`Variables` (weights and initial state).
      apply: ``(params, x) -> outputs`` of shape ``[B, num_outputs]``, in
        evaluation mode; ``params`` are :class:`Variables` for a model with
        state (or to switch dropout on with ``dropout_key``).
      train_apply: ``(params, state, x, key) -> (outputs, new_state)`` in
        training mode (batch statistics, dropout drawn from ``key``), or
        ``None`` when training and evaluation are the same function.

    Example:
      >>> model = bj.models.mlp([8], num_outputs=2)
      >>> params = model.init(jax.random.key(0), jnp.zeros((1, 3)))
      >>> model.apply(params, jnp.zeros((5, 3))).shape
      (5, 2)
    """

    init: Callable[[PRNGKey, Array], Params]
    apply: Callable[[Params, Array], Array]
    train_apply: Callable[[Params, ModelState, Array, PRNGKey], tuple[Array, ModelState]] | None = None


def to_dict(tree: Any) -> Any:
    """Plain nested dicts from any (possibly frozen) mapping."""
    if isinstance(tree, Mapping):
        return {k: to_dict(v) for k, v in tree.items()}
    return tree


def _path_str(path: tuple) -> str:
    parts = []
    for entry in path:
        for attr in ("key", "name", "idx"):
            if hasattr(entry, attr):
                parts.append(str(getattr(entry, attr)))
                break
        else:
            parts.append(str(entry))
    return "/".join(parts)


def _shapes_by_path(tree: Params) -> dict[str, tuple[int, ...]]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {_path_str(path): tuple(jnp.shape(leaf)) for path, leaf in leaves}


def check_params(expected: Params, given: Params, x_shape: tuple[int, ...]) -> None:
    """Raises ValueError naming the first leaf whose path or shape differs.

    Runs in Python on static shapes, so it costs nothing inside ``jit``; under
    ``vmap`` the shapes seen are per-sample, so stacked parameters pass.
    """
    want, got = _shapes_by_path(expected), _shapes_by_path(given)
    missing = [p for p in want if p not in got]
    unexpected = [p for p in got if p not in want]
    if missing or unexpected:
        hint = ""
        if any(p.startswith("params/") for p in unexpected):
            hint = " Pass the inner dict, not flax's {'params': ...} wrapper."
        raise ValueError(
            f"params do not match the model for inputs of shape {tuple(x_shape)}: "
            f"missing leaves {missing}, unexpected leaves {unexpected}.{hint}"
        )
    for path, shape in want.items():
        if got[path] != shape:
            raise ValueError(
                f"params leaf {path!r} has shape {got[path]} but the model expects "
                f"{shape} for inputs of shape {tuple(x_shape)}."
            )
