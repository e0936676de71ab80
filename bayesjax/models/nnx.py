"""flax.nnx modules as :class:`~bayesjax.models.model.Model`s: weights, BatchNorm statistics, dropout.

An nnx module holds its variables; :func:`from_nnx` splits it once into its
graph and three states: the weights (``nnx.Param``, the Bayesian part), the
model state (``nnx.BatchStat``) and the rest (dropout's random streams and
any other variables, held fixed). ``apply`` and ``train_apply`` merge them
back into a fresh module inside the traced function, so the model is pure:
it jits, vmaps over samples and never mutates the user's module.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from bayesjax.models.model import Model, ModelState, Variables, check_params
from bayesjax.types import Array, Params, PRNGKey


def _split(module: nnx.Module) -> tuple:
    return nnx.split(module, nnx.Param, nnx.BatchStat, ...)


def _pure(state: nnx.State) -> dict:
    return nnx.to_pure_dict(state)


def _filled(template: nnx.State, values: dict) -> nnx.State:
    """A copy of ``template`` holding ``values`` (a pure dict of the same structure)."""
    state = jax.tree.map(lambda leaf: leaf, template)
    nnx.replace_by_pure_dict(state, values)  # in place
    return state


def from_nnx(module: nnx.Module | Callable[[nnx.Rngs], nnx.Module]) -> Model:
    """Wraps a ``flax.nnx`` module as a :class:`Model`.

    Training mode is the module's ``train()`` (BatchNorm on the batch's
    statistics, dropout on), evaluation mode its ``eval()`` (a module with
    neither BatchNorm nor random streams has no training mode); MC dropout
    (:class:`Variables` with a ``dropout_key``) switches dropout on and keeps
    BatchNorm on its running statistics. Dropout draws from the step's key
    (every random stream of the module is reseeded from it), never from the
    module's own ``nnx.Rngs``.

    Args:
      module: an nnx module mapping a batch ``x`` to outputs, or a factory
        ``rngs -> module`` (e.g. ``lambda rngs: Net(rngs=rngs)``). With a
        factory, ``init(key, x)`` builds the module from ``nnx.Rngs(key)``
        (each chain or ensemble member its own initial weights); with a
        module, ``init`` returns that module's weights whatever the key.

    Returns:
      The :class:`Model`: ``init`` returns the weights as a plain nested dict
      (module attribute names, e.g. ``{"linear": {"kernel", "bias"}}``), or
      :class:`Variables` with ``{"bn": {"mean", "var"}}``-style state for a
      module with BatchNorm.

    Example:
      >>> from flax import nnx
      >>> class Net(nnx.Module):
      ...     def __init__(self, rngs):
      ...         self.hidden = nnx.Linear(3, 4, rngs=rngs)
      ...         self.dropout = nnx.Dropout(0.1, rngs=rngs)
      ...         self.out = nnx.Linear(4, 1, rngs=rngs)
      ...     def __call__(self, x):
      ...         return self.out(self.dropout(jax.nn.relu(self.hidden(x))))
      >>> model = from_nnx(lambda rngs: Net(rngs))
      >>> params = model.init(jax.random.key(0), jnp.zeros((1, 3)))
      >>> params["hidden"]["kernel"].shape, model.apply(params, jnp.ones((5, 3))).shape
      ((3, 4), (5, 1))
    """
    factory = None if isinstance(module, nnx.Module) else module
    template = module if factory is None else factory(nnx.Rngs(0))
    graph, params_template, stats_template, rest = _split(template)
    has_state = bool(jax.tree.leaves(stats_template))
    # Dropout's random streams are fed from the step's key; other variables are held as they are.
    rest_leaves, rest_def = jax.tree.flatten(rest)
    random = any(jnp.issubdtype(jnp.result_type(leaf), jax.dtypes.prng_key) for leaf in rest_leaves)

    def init(key: PRNGKey, x: Array) -> Params | Variables:
        built = module if factory is None else factory(nnx.Rngs(key))
        _, params, stats, _ = _split(built)
        del x  # nnx modules fix their input features when built
        return Variables(_pure(params), _pure(stats)) if has_state else _pure(params)

    def seeded_rest(key: PRNGKey) -> nnx.State:
        leaves = []
        for index, leaf in enumerate(rest_leaves):
            if jnp.issubdtype(jnp.result_type(leaf), jax.dtypes.prng_key):
                leaf = jax.random.fold_in(key, index)
            elif jnp.issubdtype(jnp.result_type(leaf), jnp.integer):
                leaf = jnp.zeros_like(leaf)  # the streams' counters
            leaves.append(leaf)
        return jax.tree.unflatten(rest_def, leaves)

    def merged(params: Params, state: ModelState, key: PRNGKey | None, x_shape) -> nnx.Module:
        check_params(_pure(params_template), params, x_shape)
        return nnx.merge(graph, _filled(params_template, params), _filled(stats_template, state if has_state else {}),
                         seeded_rest(jax.random.key(0) if key is None else key))

    def unpack(params: Params | Variables) -> Variables:
        variables = params if isinstance(params, Variables) else Variables(params)
        if has_state and not variables.state:
            raise ValueError(f"{type(template).__name__} has BatchNorm statistics: it needs "
                             f"bj.models.Variables(params, state) as model.init returns them, not bare weights "
                             f"(and, to train it, a log-joint built from the Model: bj.log_joint(model, ...))")
        return variables

    def apply(params: Params | Variables, x: Array) -> Array:
        x = jnp.asarray(x)
        weights, state, dropout_key = unpack(params)
        net = merged(weights, state, dropout_key, x.shape)
        net.eval()
        if dropout_key is not None:
            net.set_attributes(deterministic=False, raise_if_not_found=False)
        return net(x)

    def train_apply(params: Params, state: ModelState, x: Array, key: PRNGKey) -> tuple[Array, ModelState]:
        x = jnp.asarray(x)
        weights, state, _ = unpack(Variables(params, state))
        net = merged(weights, state, key, x.shape)
        net.train()
        outputs = net(x)
        return outputs, (_pure(nnx.state(net, nnx.BatchStat)) if has_state else state)

    # Without statistics or random streams, training is evaluation: no training mode to carry.
    return Model(init, apply, train_apply if has_state or random else None)
