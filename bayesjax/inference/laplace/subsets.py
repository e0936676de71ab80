"""Which weights are Bayesian: all of them, the last layer, or named top-level modules.

A subset is a tuple of top-level parameter names (``("Dense_2",)``), or
``None`` for the whole tree. The weights outside it stay at the MAP.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from bayesjax.types import Params

SUBSETS = ("all", "last_layer")
_DENSE_NAME = re.compile(r"^Dense_(\d+)$")


def resolve(subset: str | Sequence[str], params: Params) -> tuple[str, ...] | None:
    """Turns ``"all"``, ``"last_layer"`` or a list of top-level names into a static subset.

    ``"last_layer"`` is the top-level ``Dense_<k>`` module with the largest
    ``k``: the output layer of ``bj.models.mlp`` and ``bj.models.cnn`` (and of
    any linen model whose last layer is its last ``nn.Dense``). For other
    names (nnx models, named linen layers) :func:`bayesjax.laplace` finds the
    output layer by tracing the model
    (:func:`~bayesjax.inference.laplace.layers.last_layer`) before calling this.

    Raises:
      ValueError: for an unknown subset, a name not in ``params``, or
        ``"last_layer"`` on parameters without a ``Dense_<k>`` module.
    """
    if isinstance(subset, str):
        if subset == "all":
            return None
        if subset != "last_layer":
            raise ValueError(f"subset must be one of {SUBSETS} or a sequence of top-level names, got {subset!r}")
        names = last_dense(params)
        if names is None:
            top = list(params) if isinstance(params, dict) else type(params).__name__
            raise ValueError(
                "subset='last_layer' needs a flax Dense output layer named 'Dense_<k>' at the top of the "
                f"parameter tree (as in bj.models.mlp / cnn); found {top}. Pass subset=('<name>',) instead."
            )
        return names
    names = tuple(str(s) for s in subset)
    if not isinstance(params, dict):
        raise ValueError(f"a named subset needs dict parameters, got {type(params).__name__}")
    unknown = [n for n in names if n not in params]
    if unknown or not names:
        raise ValueError(f"subset names {unknown or names} not among the top-level parameters {list(params)}")
    return names


def last_dense(params: Params) -> tuple[str] | None:
    """The top-level linen ``Dense_<k>`` module with the largest ``k``, or ``None`` when there is none."""
    names = [k for k in params if _DENSE_NAME.match(str(k))] if isinstance(params, dict) else []
    return (max(names, key=lambda k: int(_DENSE_NAME.match(k).group(1))),) if names else None


def select(params: Params, names: tuple[str, ...] | None) -> Params:
    """The Bayesian part of ``params`` (leaves may carry leading batch axes)."""
    return params if names is None else {n: params[n] for n in names}


def merge(sub: Params, params: Params, names: tuple[str, ...] | None) -> Params:
    """``params`` with the subset replaced by ``sub``."""
    return sub if names is None else {**params, **sub}
