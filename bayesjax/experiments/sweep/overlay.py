"""Finished sweeps side by side: ``bayesjax plot`` reads their ``results.json`` and averages over seeds.

Priors, likelihoods and models are not axes of one sweep, so comparing them
(Fortuin et al. 2021's Gaussian against heavy-tailed priors; Kapoor et al.
2022's noisy-Dirichlet likelihood against the categorical) means overlaying
sweeps run one after another into their own folders.
"""
from __future__ import annotations

import json
import os
import pathlib

import numpy as np

from bayesjax.experiments import outputs, plots


def read_results(out: str | os.PathLike) -> dict[str, list[dict]]:
    """A finished sweep's cells: setting name (e.g. ``"augmentation off"``) -> its cell records.

    The records are those of ``out/results.json`` (written by
    :func:`~bayesjax.experiments.sweep.write_results`) without their
    ``setting`` field, with ``null`` read back as NaN.

    Raises:
      FileNotFoundError: ``out`` holds no ``results.json``.
      ValueError: the file is not a sweep's results.
    """
    path = pathlib.Path(out) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `bayesjax sweep --out {out}` first")
    payload = json.loads(path.read_text())
    rows = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(rows, list) or not rows or not all("setting" in r and "temperature" in r for r in rows):
        raise ValueError(f"{path} holds no sweep cells (records with a setting and a temperature)")
    settings: dict[str, list[dict]] = {}
    for row in rows:
        record = outputs.nan_for_null({k: v for k, v in row.items() if k != "setting"})
        settings.setdefault(row["setting"], []).append(record)
    return settings


def seed_means(curves: dict[str, list[dict]], metrics: tuple[str, ...]) -> list[dict]:
    """One row per curve and temperature: the number of seeds and each metric's mean over them.

    A diverged cell's metrics are NaN, so its temperature's mean is NaN too
    (never the mean of the survivors).
    """
    rows = []
    for name, records in curves.items():
        for temperature in sorted({r["temperature"] for r in records}):
            cells = [r for r in records if r["temperature"] == temperature]
            row = {"curve": name, "temperature": temperature, "seeds": len(cells)}
            row.update({m: float(np.mean([c[m] for c in cells])) for m in metrics})
            rows.append(row)
    return rows


def overlay(sweeps: list[tuple[str, str | os.PathLike]], path: str | os.PathLike,
            metrics: tuple[str, ...] = ("accuracy", "nll", "ece"), setting: str | None = None) -> list[dict]:
    """Finished sweeps' curves in one figure at ``path``, labelled ``"<label>, <setting>"``; returns :func:`seed_means`.

    Args:
      sweeps: ``(label, folder)`` pairs, each folder a sweep's ``--out``.
      path: the figure's file.
      metrics: record keys to draw, one panel each.
      setting: draw only this setting of each sweep (e.g. ``"augmentation off"``); None draws all.

    Raises:
      FileNotFoundError, ValueError: as :func:`read_results`, or a sweep without ``setting``.
    """
    curves = {}
    for label, folder in sweeps:
        settings = read_results(folder)
        if setting is not None and setting not in settings:
            raise ValueError(f"{folder} has no setting {setting!r}; it has {sorted(settings)}")
        curves.update({f"{label}, {name}": records for name, records in settings.items() if setting in (None, name)})
    plots.sweep_curves(curves, path, metrics=metrics)
    return seed_means(curves, metrics)
