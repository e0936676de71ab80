"""``bayesjax compare``: every inference method on one data set, measured side by side.

Each method of :data:`METHODS` (the recipes of :mod:`bayesjax.experiments.recipes`)
is fitted on the same training split and its Bayesian model average is
evaluated on the test split. A validation split (``validation_fraction`` of
the training split, 10% by default, drawn once per run from the seed) is held
out first, and every method trains on the rest; on it the Laplace methods tune
their prior precision for prediction (``laplace_prior="validation"``, the
default; ``"evidence"`` and ``"untuned"`` remain, and the ``prior_precision``
column says which value each used) and every predictive is calibrated post hoc
(:mod:`.calibrate`: ECE after temperature scaling, split-conformal set sizes
or interval widths at 90% coverage, with their test coverage). The metrics:

* classification: accuracy, NLL, ECE, Brier, OOD AUROC (predictive entropy of
  the test inputs against a shifted copy of them, :func:`bayesjax.experiments.ood.ood_inputs`),
  and top-1 agreement and total variation against the HMC reference
  predictive (Izmailov et al. 2021, "What are Bayesian neural network
  posteriors really like?") when the reference ran;
* regression: RMSE, mixture NLL and Gaussian NLL in original units.

Times exclude JAX compilation: ``train_seconds`` is the wall clock of fitting
(the optimizer / sampler run and drawing the predictive's samples; for
Laplace, the curvature fit and its prior tuning plus the MAP it starts from) and
``predict_seconds`` that of the test-set predictive of the fitted posterior,
each minus the time JAX spent tracing, lowering and compiling (or loading
from the persistent cache), which is reported as ``compile_seconds``.

HMC (full batch, Stan window adaptation) is the reference. It runs only when
the model has at most ``hmc_max_params`` weights (:data:`HMC_MAX_PARAMS` by
default): each full-batch gradient costs N x D, and beyond that its default
budget is neither affordable nor long enough to mix. Even within it, it is a
short-budget reference, not Izmailov et al.'s: read agreement and total
variation as closeness to this reference.

One concept per file: :mod:`.config` (the settings and budgets),
:mod:`.problem` (what every method shares, the validation split of
:mod:`bayesjax.experiments.validation`), :mod:`.fit` (one method's fit),
:mod:`.calibrate` (post-hoc calibration), :mod:`.stopwatch` (compile-free
timing), :mod:`.driver` (:func:`run_compare`), :mod:`.results` (the files
written).

Example:
  >>> config = CompareConfig(dataset="iris", methods=("map", "sgld", "hmc"), steps=500)
  >>> rows = run_compare(config, "results/compare")  # doctest: +SKIP
"""
from bayesjax.experiments.compare.config import HMC_MAX_PARAMS, CompareConfig
from bayesjax.experiments.compare.driver import run_compare
from bayesjax.experiments.compare.fit import Fitted, fit
from bayesjax.experiments.compare.problem import Problem, setup
from bayesjax.experiments.compare.results import REFERENCE, bands_methods, write_results
from bayesjax.experiments.compare.stopwatch import Stopwatch
from bayesjax.experiments.recipes import METHODS, Budget, describe_methods

__all__ = [
    "HMC_MAX_PARAMS",
    "METHODS",
    "REFERENCE",
    "Budget",
    "CompareConfig",
    "Fitted",
    "Problem",
    "Stopwatch",
    "bands_methods",
    "describe_methods",
    "fit",
    "run_compare",
    "setup",
    "write_results",
]
