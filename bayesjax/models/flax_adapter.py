"""``from_flax``: a flax module of either API as a :class:`~bayesjax.models.model.Model`."""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
from flax import nnx

from bayesjax.models.linen import from_linen
from bayesjax.models.model import Model
from bayesjax.models.nnx import from_nnx


def from_flax(module: nn.Module | nnx.Module | Callable[[nnx.Rngs], nnx.Module]) -> Model:
    """Wraps a flax module, linen or nnx, as a :class:`Model`.

    A ``flax.linen`` module goes to :func:`~bayesjax.models.linen.from_linen`;
    a ``flax.nnx`` module, or a factory ``rngs -> nnx module``, to
    :func:`~bayesjax.models.nnx.from_nnx`. Modules with BatchNorm or dropout
    get a training mode; pass the returned Model (not its ``apply``) to
    :func:`bayesjax.log_joint` so every method carries their state.

    Args:
      module: the network.

    Returns:
      The :class:`Model`.

    Raises:
      TypeError: for anything else.

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
    if isinstance(module, nn.Module):
        return from_linen(module)
    if isinstance(module, nnx.Module) or callable(module):
        return from_nnx(module)
    raise TypeError(f"from_flax takes a flax.linen or flax.nnx module (or a factory rngs -> nnx module), "
                    f"got {type(module).__name__}")
