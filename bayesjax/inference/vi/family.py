"""What a Gaussian variational family provides to the generic VI step.

A family q_phi(theta) = N(mu, Sigma(phi)) is described by a handful of pure
functions of its state (a NamedTuple whose first fields, named in
``fields``, are the variational parameters phi that the optimizer updates):

* ``init(key, params)``: the variational parameters at the start, centred on
  ``params``;
* ``draw(key, state)``: one reparametrized draw theta = mu + L(phi) eps, a
  differentiable function of phi;
* ``entropy(state)``: H[q] = 1/2 log det(2 pi e Sigma), in closed form;
* ``mean(state)`` and ``variance(state)``: mu and diag(Sigma) as trees like
  the parameters (for the analytic expected log prior);
* ``factorized``: whether q is fully factorized (mean-field), which local
  reparametrization requires.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from bayesjax.types import Array, Params, PRNGKey, State


class Family(NamedTuple):
    """A Gaussian variational family as pure functions (see module docstring).

    Attributes:
      name: short name, e.g. ``"meanfield"``.
      state_type: the family's state NamedTuple (variational fields, then
        ``opt_state`` and ``count``).
      fields: names of the variational fields of the state, in order.
      init: ``(key, params) -> dict`` of the variational fields.
      draw: ``(key, state) -> params``, one reparametrized draw from q.
      entropy: ``state -> scalar``, H[q].
      mean: ``state -> params``, the mean mu.
      variance: ``state -> params``, the marginal variances diag(Sigma).
      factorized: True for a fully factorized (mean-field) family.
    """

    name: str
    state_type: type
    fields: tuple[str, ...]
    init: Callable[[PRNGKey, Params], dict]
    draw: Callable[[PRNGKey, State], Params]
    entropy: Callable[[State], Array]
    mean: Callable[[State], Params]
    variance: Callable[[State], Params]
    factorized: bool = False


def variational(state: State, family: Family) -> tuple:
    """The variational parameters phi of ``state``, as a tuple in ``family.fields`` order."""
    return tuple(getattr(state, name) for name in family.fields)


def with_variational(state: State, family: Family, phi: tuple) -> State:
    """``state`` with its variational fields replaced by ``phi``."""
    return state._replace(**dict(zip(family.fields, phi)))
