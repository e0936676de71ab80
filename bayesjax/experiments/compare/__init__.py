"""``bayesjax compare``: every inference method on one data set, measured side by side.

Each method of :data:`METHODS` (the recipes of :mod:`bayesjax.experiments.recipes`)
is fitted on the same training split and its Bayesian model average is
evaluated on the test split:

* classification: accuracy, NLL, ECE, Brier, OOD AUROC (predictive entropy of
  the test inputs against a shifted copy of them, :func:`bayesjax.experiments.ood.ood_inputs`),
  and top-1 agreement and total variation against the HMC reference
  predictive (Izmailov et al. 2021, "What are Bayesian neural network
  posteriors really like?") when the reference ran;
* regression: RMSE, mixture NLL and Gaussian NLL in original units.

Times exclude JAX compilation: ``train_seconds`` is the wall clock of fitting
(the optimizer / sampler run and drawing the predictive's samples; for
Laplace, the curvature fit plus the MAP it starts from) and
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
:mod:`.problem` (what every method shares), :mod:`.fit` (one method's fit),
:mod:`.stopwatch` (compile-free timing), :mod:`.driver` (:func:`run_compare`),
:mod:`.results` (the files written).

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
