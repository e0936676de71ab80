"""``run_compare``: every method fitted (after what it starts from), timed, evaluated on the test split."""
from __future__ import annotations

import pathlib
import sys
from typing import NamedTuple

import jax

from bayesjax import metrics
from bayesjax.driver.posterior import DivergenceError
from bayesjax.experiments.compare.calibrate import calibrate
from bayesjax.experiments.compare.config import CONFORMAL_ALPHA, CompareConfig
from bayesjax.experiments.compare.fit import Fitted, fit
from bayesjax.experiments.compare.problem import Problem, setup
from bayesjax.experiments.compare.results import REFERENCE, write_results
from bayesjax.experiments.compare.stopwatch import Stopwatch
from bayesjax.experiments.recipes import METHODS


class Trained(NamedTuple):
    """A method's fit and its seconds (those of what it starts from included)."""

    fitted: Fitted
    train_seconds: float
    compile_seconds: float


def train(problem: Problem, name: str, trained: dict[str, Trained]) -> Trained:
    """Fits ``name`` (after what it requires), memoized in ``trained``."""
    if name in trained:
        return trained[name]
    recipe = METHODS[name]
    base = train(problem, recipe.requires, trained) if recipe.requires else None
    with Stopwatch() as watch:
        fitted = fit(problem, recipe, problem.config.budget(name), problem.method_key(name), base and base.fitted)
        jax.block_until_ready(jax.tree.leaves(fitted.args))
    seconds, compile_seconds = watch.seconds, watch.compile_seconds
    if base is not None:
        seconds, compile_seconds = seconds + base.train_seconds, compile_seconds + base.compile_seconds
    trained[name] = Trained(fitted, seconds, compile_seconds)
    return trained[name]


def evaluate(problem: Problem, fitted: Fitted) -> tuple[dict, object, float, float]:
    """The test-set metrics, the predictive, and its seconds without and of compilation.

    With a validation split the metrics include the post-hoc calibration of
    :func:`~bayesjax.experiments.compare.calibrate.calibrate` (its predictive
    on the validation inputs is not timed).
    """
    dataset = problem.dataset
    with Stopwatch() as watch:
        pred = jax.block_until_ready(fitted.predict(fitted.args, dataset.x_test))
    scores = metrics.evaluate(pred, dataset.y_test, y_std=dataset.y_std)
    if problem.x_ood is not None:
        pred_ood = fitted.predict(fitted.args, problem.x_ood)
        scores["ood_auroc"] = float(metrics.auroc(pred.entropy, pred_ood.entropy))
    if problem.validation is not None:
        x_val, y_val = problem.validation
        scores.update(calibrate(fitted.predict(fitted.args, x_val), y_val, pred, dataset.y_test,
                                alpha=CONFORMAL_ALPHA, y_std=dataset.y_std))
    return scores, pred, watch.seconds, watch.compile_seconds


def run_compare(config: CompareConfig, out: str | pathlib.Path, progress: bool = True) -> list[dict]:
    """Fits and evaluates every method; writes the results and figures to ``out``.

    Writes ``results.json`` (configuration, budgets, skipped or diverged
    methods, rows), ``results.csv``, for classification ``reliability.png``
    (a grid of every method's) and ``reliability_<method>.png``, and for 1-D regression
    ``bands.png`` (:func:`bayesjax.experiments.plots.predictive_bands`: the MAP against
    the reference, else the deep ensemble, else another Bayesian method).
    A method whose chains all diverge is reported and left out.

    Args:
      config: the comparison.
      out: results folder (created after the last method, so bad arguments write nothing).
      progress: one line per method on stderr.

    Returns:
      One row per method: ``method``, ``train_seconds``, ``predict_seconds``,
      ``compile_seconds``, the metrics of :func:`bayesjax.metrics.evaluate`,
      for classification ``ood_auroc``; with a validation split the
      calibration columns of :mod:`~bayesjax.experiments.compare.calibrate`
      (classification: ``ts_temperature``, ``ts_ece``, ``conformal_size``,
      ``conformal_coverage``; regression: ``conformal_width``,
      ``conformal_coverage``); ``prior_precision`` (the Laplace methods' prior
      precision as ``config.laplace_prior`` set it, else ``None``); and for
      classification ``agreement`` and ``total_variation`` (``None`` without
      the reference).
    """
    problem, names, skipped = setup(config)
    for name, reason in skipped.items():
        print(f"compare: skipping {name}: {reason}", file=sys.stderr)
    trained, predictives, rows = {}, {}, []
    for i, name in enumerate(names):
        try:
            result = train(problem, name, trained)
        except DivergenceError as error:
            skipped[name] = str(error)
            print(f"compare: {name} failed: {error}", file=sys.stderr)
            continue
        scores, pred, predict_seconds, predict_compile = evaluate(problem, result.fitted)
        rows.append({"method": name, "train_seconds": result.train_seconds, "predict_seconds": predict_seconds,
                     "compile_seconds": result.compile_seconds + predict_compile, **scores,
                     "prior_precision": result.fitted.prior_precision})
        predictives[name] = pred
        if progress:
            print(f"compare: [{i + 1}/{len(names)}] {name}: train {result.train_seconds:.1f} s, "
                  f"compile {rows[-1]['compile_seconds']:.1f} s", file=sys.stderr)
    if not rows:
        raise DivergenceError(f"every method diverged: {skipped}")
    reference = predictives.get(REFERENCE)
    if problem.dataset.task == "classification":
        for row in rows:
            pred = predictives[row["method"]]
            row["agreement"] = None if reference is None else float(metrics.agreement(reference, pred))
            row["total_variation"] = None if reference is None else float(metrics.total_variation(reference, pred))
    write_results(problem, rows, skipped, predictives, {n: trained[n].fitted for n in predictives}, pathlib.Path(out))
    return rows
