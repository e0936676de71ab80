"""Metrics of a Bayesian model average: accuracy, likelihood, calibration, OOD, agreement.

Every metric reads a :class:`~bayesjax.predictive.ClassificationPredictive` or
:class:`~bayesjax.predictive.RegressionPredictive` (the output of
:func:`bayesjax.predictive.predictive`) and returns a scalar ``jnp`` array.
Each is one function: it validates its inputs once, at the public entry, and
then runs plain ``jnp`` code, so it jits, vmaps (e.g. over a leading
temperature or seed axis of a stacked predictive) and runs on any device.
Shapes are checked when traced, so a mismatch raises ``ValueError`` under
``jax.jit`` as well; label values are range-checked only when they are
concrete (outside ``jit``). :func:`evaluate` compiles the standard set as one
program per shape.

Regression models in bayesjax are usually trained on standardized targets
``y_std_units = (y_orig - y_mean) / y_std``. The regression metrics take that
``y_std`` and report in ORIGINAL units, which is what the UCI tables
(Hernandez-Lobato & Adams 2015; Lakshminarayanan et al. 2017) report: an RMSE
scales by ``y_std``; a density transforms by the Jacobian,
``p(y_orig) = p(y_std_units) / y_std``, so an NLL shifts by ``+ log(y_std)``.

:func:`evaluate` bundles the standard set into a dict of Python floats.

The rooms: :mod:`~bayesjax.metrics.classification` (accuracy, ECE, Brier),
:mod:`~bayesjax.metrics.likelihood` (NLL of either task),
:mod:`~bayesjax.metrics.regression` (RMSE, Gaussian NLL),
:mod:`~bayesjax.metrics.ood` (AUROC), :mod:`~bayesjax.metrics.comparison`
(agreement, total variation between two predictives),
:mod:`~bayesjax.metrics.evaluation` (the bundle) and
:mod:`~bayesjax.metrics.validation` (the input checks).

Example:
  >>> import jax.numpy as jnp
  >>> from bayesjax.metrics import accuracy, evaluate
  >>> from bayesjax.predictive import ClassificationPredictive
  >>> probs = jnp.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
  >>> pred = ClassificationPredictive(jnp.log(probs), jnp.zeros(3))
  >>> y = jnp.array([0, 1, 1])
  >>> round(float(accuracy(pred, y)), 4)
  0.6667
  >>> sorted(evaluate(pred, y))
  ['accuracy', 'brier', 'ece', 'nll']
"""
from bayesjax.metrics.classification import accuracy, brier, ece, reliability_bins
from bayesjax.metrics.comparison import agreement, total_variation
from bayesjax.metrics.evaluation import CLASSIFICATION_METRICS, REGRESSION_METRICS, evaluate
from bayesjax.metrics.likelihood import nll
from bayesjax.metrics.ood import auroc
from bayesjax.metrics.regression import gaussian_nll, rmse

__all__ = [
    "accuracy",
    "nll",
    "ece",
    "reliability_bins",
    "brier",
    "rmse",
    "gaussian_nll",
    "auroc",
    "agreement",
    "total_variation",
    "evaluate",
]
