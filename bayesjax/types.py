"""Protocol types shared by every bayesjax module.

Parameters are arbitrary pytrees of arrays; a batch is a ``(inputs, targets)``
pair; every random function takes an explicit :data:`PRNGKey`.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, Tuple

import jax

PRNGKey = jax.Array
Array = jax.Array
ArrayTree = Any
Params = ArrayTree
State = Any
Info = Any
Batch = Tuple[Array, Array]

ApplyFn = Callable[[Params, Array], Array]
"""A pure model function ``apply(params, x) -> outputs``."""


class LogDensity(Protocol):
    """A (possibly stochastic, minibatch) log density ``f(params, batch) -> scalar``."""

    def __call__(self, params: Params, batch: Batch) -> Array: ...
