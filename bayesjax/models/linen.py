"""flax.linen modules as :class:`~bayesjax.models.model.Model`s."""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from bayesjax.models.model import Model, check_params, to_dict
from bayesjax.types import Array, Params, PRNGKey


def from_flax(module: nn.Module) -> Model:
    """Wraps a ``flax.linen`` module as a :class:`Model`.

    ``init`` returns ``module.init(key, x)["params"]`` as a plain nested dict,
    and ``apply(params, x)`` is ``module.apply({"params": params}, x)``. Only
    modules whose sole variable collection is ``"params"`` are supported
    (no ``batch_stats``: a Bayesian posterior over weights needs a pure
    function of the weights).

    Args:
      module: a linen module mapping a batch ``x`` to outputs.

    Returns:
      The :class:`Model`.

    Raises:
      ValueError: from ``init`` if the module creates collections other than
        ``"params"``; from ``apply`` if ``params`` do not match the structure
        or shapes the module expects for ``x`` (the message names the leaf).

    Example:
      >>> class Affine(nn.Module):
      ...     @nn.compact
      ...     def __call__(self, x):
      ...         return nn.Dense(1)(x)
      >>> model = from_flax(Affine())
      >>> params = model.init(jax.random.key(0), jnp.zeros((1, 4)))
      >>> params["Dense_0"]["kernel"].shape
      (4, 1)
    """
    expected_cache: dict[Any, Params] = {}

    def init(key: PRNGKey, x: Array) -> Params:
        variables = module.init(key, jnp.asarray(x))
        extra = sorted(set(variables) - {"params"})
        if extra:
            raise ValueError(
                f"from_flax supports modules whose only variable collection is "
                f"'params'; {type(module).__name__} also creates {extra}."
            )
        return to_dict(variables.get("params", {}))

    def expected_params(x: Array) -> Params:
        cache_key = (tuple(x.shape), jnp.dtype(x.dtype).name)
        if cache_key not in expected_cache:
            spec = jax.ShapeDtypeStruct(x.shape, x.dtype)
            expected_cache[cache_key] = jax.eval_shape(
                lambda x_: module.init(jax.random.key(0), x_).get("params", {}), spec
            )
        return expected_cache[cache_key]

    def apply(params: Params, x: Array) -> Array:
        x = jnp.asarray(x)
        check_params(expected_params(x), params, x.shape)
        return module.apply({"params": params}, x)

    return Model(init=init, apply=apply)


