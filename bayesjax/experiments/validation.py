"""The Laplace methods' prior precision, and the validation split that tunes it (``compare`` and ``sweep``).

:func:`hold_out` carves a validation split out of the training split (the
methods train on the rest); :func:`tune_prior` sets a Laplace posterior's
prior precision ``delta`` as the configuration's ``laplace_prior``
(:data:`LAPLACE_PRIORS`) says. With the MAP and the likelihood curvature
``K`` fixed, the tempered posterior precision at ``delta`` is

    P(delta) = (K + delta I) / T   (posterior tempering),    P(delta) = K / T + delta I   (likelihood tempering),

and ``"validation"`` picks, from the grid
:data:`~bayesjax.inference.laplace.gridsearch.DEFAULT_GRID`, the value whose
GLM predictive (probit link) has the lowest negative log-likelihood on the
``n`` held-out examples,

    delta* = argmin_{delta in grid} -1/n sum_i log p(y_i | x_i, D; delta),

as laplace-torch's ``optimize_prior_precision(method="gridsearch")``
(Daxberger et al. 2021, "Laplace Redux"); ``"evidence"`` maximizes the
Laplace log evidence in ``delta`` instead (MacKay 1992). Both are jittable,
so a sweep tunes each cell at its traced temperature.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax.data import Dataset
from bayesjax.inference.laplace.gridsearch import tune_prior_precision
from bayesjax.inference.laplace.marglik import optimize_prior_precision
from bayesjax.inference.laplace.posterior import PosteriorData
from bayesjax.types import Array, PRNGKey

VALIDATION_FRACTION = 0.1
"""Share of the training split held out for validation by default (methods train on the rest)."""
LAPLACE_PRIORS = ("untuned", "evidence", "validation")
"""How the Laplace methods set their prior precision: the prior's own ``1 / prior_scale^2``, the
Laplace evidence's maximum (``optimize_prior_precision()``), or the grid value of least validation NLL
(:func:`bayesjax.inference.laplace.gridsearch.tune_prior_precision`)."""


def check_laplace_prior(laplace_prior: str | None, validation_fraction: float, automatic: bool = False) -> None:
    """Raises ValueError on a ``laplace_prior`` not in :data:`LAPLACE_PRIORS` (``None`` passes when
    ``automatic``), a ``validation_fraction`` outside [0, 1), or ``laplace_prior="validation"``
    without a validation split."""
    if not (automatic and laplace_prior is None) and laplace_prior not in LAPLACE_PRIORS:
        raise ValueError(f"laplace_prior must be one of {LAPLACE_PRIORS}, got {laplace_prior!r}")
    fraction = validation_fraction
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise ValueError(f"validation_fraction must be a number in [0, 1), got {fraction!r}")
    if fraction == 0 and laplace_prior == "validation":
        raise ValueError("laplace_prior='validation' needs a validation split: validation_fraction > 0")


def hold_out(dataset: Dataset, fraction: float, key: PRNGKey) -> tuple[Dataset, tuple | None]:
    """Splits ``round(fraction * N)`` training examples off as the validation split.

    The examples are drawn uniformly without replacement by ``key`` (the same
    for every method of a run); both parts keep the training order. The data
    stay standardized with the whole training split's statistics.

    Returns:
      ``(dataset, validation)``: the data set whose training split is the
      rest, and ``(x_val, y_val)``; ``(dataset, None)`` for ``fraction=0``.

    Raises:
      ValueError: when the validation or the training part would be empty.
    """
    if fraction == 0:
        return dataset, None
    num_data = len(dataset.y_train)
    num_val = round(fraction * num_data)
    if not 1 <= num_val < num_data:
        raise ValueError(f"validation_fraction={fraction} of {num_data} training examples leaves {num_val} for "
                         f"validation and {num_data - num_val} for training; both need at least one")
    order = np.asarray(jax.random.permutation(key, num_data))
    val, train = np.sort(order[:num_val]), np.sort(order[num_val:])
    rest = dataset._replace(x_train=dataset.x_train[train], y_train=dataset.y_train[train])
    return rest, (dataset.x_train[val], dataset.y_train[val])


def tune_prior(post: PosteriorData, tuning: str, validation: tuple | None = None) -> tuple[PosteriorData, Array]:
    """A Laplace posterior at the prior precision ``tuning`` asks for, and that precision (jittable).

    The MAP and the curvature stay, and so do the posterior's tempering
    factors (its temperature may be traced); only the prior precision
    changes, to one value for every Bayesian weight unless untuned:

    * ``"untuned"``: the posterior as it is (its first leaf's precision is reported).
    * ``"evidence"``: the maximum of the Laplace evidence (MacKay 1992;
      :func:`~bayesjax.inference.laplace.marglik.optimize_prior_precision`).
    * ``"validation"``: the value of
      :data:`~bayesjax.inference.laplace.gridsearch.DEFAULT_GRID` whose GLM
      predictive (probit link) has the lowest NLL on ``validation``
      (:func:`~bayesjax.inference.laplace.gridsearch.tune_prior_precision`).

    Args:
      post: the Laplace posterior.
      tuning: one of :data:`LAPLACE_PRIORS`.
      validation: ``(x_val, y_val)``, examples the MAP and the curvature did
        not see; required for ``"validation"``.

    Returns:
      ``(posterior, prior_precision)``, the precision a scalar.

    Raises:
      ValueError: ``"validation"`` without validation data.
    """
    if tuning == "validation":
        if validation is None:
            raise ValueError("prior tuning 'validation' needs validation data (x_val, y_val)")
        search = tune_prior_precision(post, *validation)
        return search.posterior, search.prior_precision
    if tuning == "evidence":
        post = optimize_prior_precision(post)
    return post, jnp.reshape(jax.tree.leaves(post.prior_precision)[0], (-1,))[0]
