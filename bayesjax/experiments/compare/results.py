"""What a comparison writes: ``results.json``, ``results.csv`` (:mod:`bayesjax.experiments.outputs`) and its figures."""
from __future__ import annotations

import pathlib

import numpy as np

from bayesjax.experiments import outputs, plots
from bayesjax.experiments.compare.fit import Fitted
from bayesjax.experiments.compare.problem import Problem

REFERENCE = "hmc"
"""The method the others' predictives are compared with (agreement, total variation)."""


def bands_methods(names: list[str]) -> list[str]:
    """MAP (the standard NN) and one Bayesian NN: the reference, else the deep ensemble, else the first other."""
    bayesian = [n for n in (REFERENCE, "deep_ensemble", *names) if n in names and n != "map"]
    return [n for n in ("map",) if n in names] + bayesian[:1]


def write_results(problem: Problem, rows: list[dict], skipped: dict, predictives: dict, fits: dict[str, Fitted],
                  out: pathlib.Path) -> None:
    """Writes the rows, the settings and the figures into ``out`` (created here).

    ``results.json`` holds the provenance and configuration of
    :func:`bayesjax.experiments.outputs.write_results`, each method's
    budget, the methods skipped or failed (with the reason), the reference
    and the rows; ``results.csv`` the rows.

    Args:
      problem: the comparison's problem (its configuration and data).
      rows: one row per method (see :func:`~bayesjax.experiments.compare.driver.run_compare`).
      skipped: method -> why it was left out or failed.
      predictives: method -> its test-set predictive.
      fits: method -> its fitted posterior (1-D regression evaluates it on a grid for ``bands.png``).
      out: results folder.
    """
    config, dataset = problem.config, problem.dataset
    outputs.write_results(
        out, config, rows, budgets={n: config.budget(n)._asdict() for n in predictives}, skipped=skipped,
        reference=REFERENCE if REFERENCE in predictives else None,
        timing="train_seconds and predict_seconds exclude JAX compilation, reported as compile_seconds")
    if dataset.task == "classification":
        plots.reliability_grid(predictives, dataset.y_test, out / "reliability.png")
        for name, pred in predictives.items():
            plots.reliability_diagram({name: pred}, dataset.y_test, out / f"reliability_{name}.png")
    elif dataset.x_train.ndim == 2 and dataset.x_train.shape[1] == 1:
        x = dataset.x_train[:, 0]
        low, high = x.min(), x.max()
        grid = np.linspace(low - 0.5 * (high - low), high + 0.5 * (high - low), 300, dtype=x.dtype)
        bands = {n: fits[n].predict(fits[n].args, grid[:, None]) for n in bands_methods(list(predictives))}
        plots.predictive_bands(bands, grid, x, dataset.y_train, out / "bands.png", y_mean=dataset.y_mean,
                               y_std=dataset.y_std)
