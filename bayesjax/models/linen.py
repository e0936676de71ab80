"""flax.linen modules as :class:`~bayesjax.models.model.Model`s: weights, BatchNorm statistics, dropout.

A linen module's variables split into the weights (collection ``"params"``,
the Bayesian part) and every other collection (``"batch_stats"``, ...), the
model state. A module whose ``__call__`` takes a ``train`` argument gets a
training mode: ``train=True``, its state collections mutable, dropout drawn
from the ``"dropout"`` key (the flax convention: ``nn.BatchNorm(
use_running_average=not train)``, ``nn.Dropout(rate, deterministic=not train)``).
"""
from __future__ import annotations

import functools
import inspect

import flax.linen as nn
import jax
import jax.numpy as jnp

from bayesjax.models.model import Model, ModelState, Variables, check_params, to_dict
from bayesjax.types import Array, Params, PRNGKey

TRAIN_ARGUMENT = "train"
"""The keyword of a linen module's ``__call__`` that switches training mode on."""


def from_linen(module: nn.Module) -> Model:
    """Wraps a ``flax.linen`` module as a :class:`Model`.

    * Weights only, no ``train`` argument: ``init`` returns
      ``module.init(key, x)["params"]`` as a plain nested dict, and
      ``apply(params, x) = module.apply({"params": params}, x)``.
    * With a ``train`` argument: ``train_apply(params, state, x, key)`` calls
      it with ``train=True``, the state collections mutable and
      ``rngs={"dropout": key}``, and returns the outputs and the new state;
      ``apply`` calls it with ``train=False`` (BatchNorm's running statistics,
      no dropout), or with ``train=True`` and the sample's ``dropout_key``
      when :class:`Variables` carry one (MC dropout; refused for a module
      with state, whose one ``train`` flag would also switch BatchNorm to the
      statistics of the test batch).
    * With collections other than ``"params"`` (``"batch_stats"``): ``init``
      returns :class:`Variables` ``(params, state)``, and ``apply`` needs them.

    Args:
      module: a linen module mapping a batch ``x`` to outputs.

    Returns:
      The :class:`Model`.

    Raises:
      ValueError: from ``init`` if the module has state but no ``train``
        argument to update it; from ``apply`` if ``params`` do not match the
        structure or shapes the module expects for ``x`` (the message names
        the leaf), or if a model with state is given bare weights.

    Example:
      >>> class Net(nn.Module):
      ...     @nn.compact
      ...     def __call__(self, x, train: bool = False):
      ...         x = nn.BatchNorm(use_running_average=not train)(nn.Dense(4)(x))
      ...         return nn.Dense(1)(nn.Dropout(0.1, deterministic=not train)(x))
      >>> model = from_linen(Net())
      >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 3)))
      >>> sorted(variables.state), variables.params["Dense_0"]["kernel"].shape
      (['batch_stats'], (3, 4))
      >>> model.apply(variables, jnp.ones((5, 3))).shape
      (5, 1)
    """
    trainable = TRAIN_ARGUMENT in inspect.signature(module.__call__).parameters

    def initial_variables(key: PRNGKey, x: Array) -> dict:
        # "params" takes the key itself, so weights are those of module.init(key, x).
        return module.init({"params": key, "dropout": jax.random.fold_in(key, 1)}, x)

    def init(key: PRNGKey, x: Array) -> Params | Variables:
        variables = to_dict(initial_variables(key, jnp.asarray(x)))
        params = variables.pop("params", {})
        if not variables:
            return params
        if not trainable:
            raise ValueError(f"{type(module).__name__} creates {sorted(variables)} besides 'params' but its "
                             f"__call__ takes no `{TRAIN_ARGUMENT}` argument to update them in training: add "
                             f"`{TRAIN_ARGUMENT}: bool = False` (e.g. nn.BatchNorm(use_running_average=not "
                             f"{TRAIN_ARGUMENT}))")
        return Variables(params, variables)

    # An lru_cache, not a dict in the closure: a run's identity (bayesjax.driver.identity) walks closures, and
    # must not change once the model has been applied.
    @functools.lru_cache(maxsize=None)
    def expected_for(shape: tuple, dtype: str) -> dict:
        return jax.eval_shape(initial_variables, jax.random.key(0), jax.ShapeDtypeStruct(shape, dtype))

    def expected(x: Array) -> dict:
        return expected_for(tuple(x.shape), jnp.dtype(x.dtype).name)

    def unpack(params: Params | Variables, x: Array) -> Variables:
        want = expected(x)
        variables = params if isinstance(params, Variables) else Variables(params)
        if set(want) - {"params"} and not variables.state:
            raise ValueError(f"{type(module).__name__} has {sorted(set(want) - {'params'})}: it needs "
                             f"bj.models.Variables(params, state) as model.init returns them, not bare weights "
                             f"(and, to train it, a log-joint built from the Model: bj.log_joint(model, ...))")
        check_params(want.get("params", {}), variables.params, x.shape)
        return Variables(variables.params, variables.state or {}, variables.dropout_key)

    def apply(params: Params | Variables, x: Array) -> Array:
        x = jnp.asarray(x)
        weights, state, dropout_key = unpack(params, x)
        if dropout_key is None:
            kwargs = {TRAIN_ARGUMENT: False} if trainable else {}
            return module.apply({"params": weights, **state}, x, **kwargs)
        if state or not trainable:
            raise ValueError(f"MC dropout (a dropout_key in Variables) needs a module whose `{TRAIN_ARGUMENT}` "
                             f"switches on dropout only; {type(module).__name__} "
                             + ("also has state (BatchNorm would use the test batch's statistics)" if state
                                else f"takes no `{TRAIN_ARGUMENT}` argument"))
        return module.apply({"params": weights}, x, rngs={"dropout": dropout_key}, **{TRAIN_ARGUMENT: True})

    def train_apply(params: Params, state: ModelState, x: Array, key: PRNGKey) -> tuple[Array, ModelState]:
        x = jnp.asarray(x)
        params, state, _ = unpack(Variables(params, state), x)
        if not state:
            return module.apply({"params": params}, x, rngs={"dropout": key}, **{TRAIN_ARGUMENT: True}), state
        outputs, updated = module.apply({"params": params, **state}, x, rngs={"dropout": key}, mutable=sorted(state),
                                        **{TRAIN_ARGUMENT: True})
        return outputs, to_dict(updated)

    return Model(init, apply, train_apply if trainable else None)
