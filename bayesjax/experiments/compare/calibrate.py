"""A method's predictive calibrated post hoc on the validation split, scored on the test split.

With the validation split of :func:`~bayesjax.experiments.validation.hold_out`
(which no method trained on), every method's predictive gets the same two
recalibrations of :mod:`bayesjax.calibration`:

* classification: temperature scaling (Guo et al. 2017), the temperature
  fitted to the validation NLL and applied to the test predictive, reported as
  ``ts_temperature`` and the test ECE after it, ``ts_ece`` (before it: ``ece``);
  and split-conformal prediction sets at 1 - alpha coverage
  (:data:`~bayesjax.experiments.compare.config.CONFORMAL_ALPHA`), calibrated on
  the validation split with the score 1 - p(y | x) of the predictive as it is
  (not temperature scaled): their mean size ``conformal_size`` and empirical
  coverage ``conformal_coverage`` on the test split;
* regression: split-conformal intervals around the predictive mean, with
  scores normalized by the predictive standard deviation: the mean width
  ``conformal_width`` (original units) and ``conformal_coverage``.

A predictive with a non-finite value on either split gets NaN, as its metrics.
"""
from __future__ import annotations

import math

from bayesjax import calibration, metrics
from bayesjax.predictive import ClassificationPredictive
from bayesjax.trees import all_finite

CLASSIFICATION_COLUMNS = ("ts_temperature", "ts_ece", "conformal_size", "conformal_coverage")
REGRESSION_COLUMNS = ("conformal_width", "conformal_coverage")


def calibrate(pred_val, y_val, pred_test, y_test, *, alpha: float, y_std: float = 1.0) -> dict[str, float]:
    """The calibration columns of one method (see the module docstring).

    Args:
      pred_val: the method's predictive on the validation inputs.
      y_val: validation labels or standardized targets.
      pred_test: its predictive on the test inputs.
      y_test: test labels or standardized targets.
      alpha: the conformal miscoverage.
      y_std: the targets' standardization scale (regression widths in original units).

    Returns:
      :data:`CLASSIFICATION_COLUMNS` or :data:`REGRESSION_COLUMNS` -> float.
    """
    classification = isinstance(pred_test, ClassificationPredictive)
    columns = CLASSIFICATION_COLUMNS if classification else REGRESSION_COLUMNS
    if not (all_finite(pred_val) and all_finite(pred_test)):
        return dict.fromkeys(columns, math.nan)
    if not classification:
        intervals = calibration.conformal_intervals(pred_val, y_val, pred_test, y_test, alpha=alpha)
        return {"conformal_width": float(intervals.mean_width) * float(y_std),
                "conformal_coverage": float(intervals.coverage)}
    temperature = calibration.temperature_scale(pred_val, y_val)
    scaled = calibration.apply_temperature(pred_test, temperature)
    sets = calibration.conformal_sets(pred_val, y_val, pred_test, y_test, alpha=alpha)
    return {"ts_temperature": float(temperature), "ts_ece": float(metrics.ece(scaled, y_test)),
            "conformal_size": float(sets.mean_size), "conformal_coverage": float(sets.coverage)}
