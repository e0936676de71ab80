"""The files an experiment writes: strict JSON and CSV with their provenance, written atomically.

``results.json`` is strict JSON (RFC 8259: a non-finite number is ``null``,
so ``json.loads`` in any language reads it) and ``results.csv`` is written
by the :mod:`csv` module with plain values (a float NaN as ``nan``, a
missing value empty). Both record what made them (:func:`provenance`): the
bayesjax and jax versions, the git commit of the checkout when there is
one, the devices, and a hash of the configuration (:func:`config_hash`).
Every file goes to a temporary name first and is renamed over the target
(:func:`write_atomic`), so a killed run never leaves half a file.

Example:
  >>> import json
  >>> text = json.dumps(plain({"nll": float("nan"), "widths": (50, 50)}), allow_nan=False)
  >>> text
  '{"nll": null, "widths": [50, 50]}'
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib.metadata
import io
import json
import math
import os
import pathlib
import subprocess

import jax

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
"""The folder holding the ``bayesjax`` package: a git checkout's root when installed from one."""


def plain(value):
    """``value`` with only JSON's types: dataclasses and mappings as dicts, sequences and arrays as lists,
    NumPy / JAX scalars as Python numbers, NaN and infinities as ``None``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if hasattr(value, "tolist"):  # NumPy and JAX arrays and scalars
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def nan_for_null(record: dict) -> dict:
    """A flat record read back from strict JSON: the ``null`` that :func:`plain` wrote for NaN is NaN again."""
    return {k: math.nan if v is None else v for k, v in record.items()}


def digest(value) -> str:
    """SHA-256 (hex) of ``value``'s canonical JSON (:func:`plain`, sorted keys)."""
    return hashlib.sha256(json.dumps(plain(value), sort_keys=True, allow_nan=False).encode()).hexdigest()


def config_hash(config) -> str:
    """A 16-hex-digit hash of a configuration (a dataclass, or a mapping of them): equal settings, equal hash."""
    return digest(config)[:16]


def git_commit(root: str | os.PathLike = REPOSITORY) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout whose root is ``root``; ``(None, None)`` when it is none.

    ``dirty`` says whether tracked files differ from the commit. A ``root``
    inside some other repository (an installed copy in a project's tree),
    no git, or a git that fails all give ``(None, None)``.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                              timeout=10).stdout

    try:
        top, commit = git("rev-parse", "--show-toplevel", "HEAD").split()
        if pathlib.Path(top).resolve() != pathlib.Path(root).resolve():
            return None, None
        return commit, bool(git("status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, ValueError, subprocess.SubprocessError):
        return None, None


def provenance() -> dict:
    """What produced an output: ``bayesjax_version`` (of the installed distribution; ``None`` when run from
    a folder that was never installed), ``jax_version``, ``git_commit``, ``git_dirty`` (both ``None``
    outside a git checkout) and ``devices`` (count and platform: results differ in the last float bits
    between device counts)."""
    try:
        version = importlib.metadata.version("bayesjax")
    except importlib.metadata.PackageNotFoundError:
        version = None
    commit, dirty = git_commit()
    return {"bayesjax_version": version, "jax_version": jax.__version__, "git_commit": commit,
            "git_dirty": dirty, "devices": f"{jax.device_count()} {jax.default_backend()}"}


def write_atomic(path: pathlib.Path, text: str) -> None:
    """Writes ``text`` to a temporary file beside ``path``, syncs it and renames it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: pathlib.Path, value) -> None:
    """``value`` as strict JSON (:func:`plain`; ``allow_nan=False``), atomically."""
    write_atomic(path, json.dumps(plain(value), indent=1, allow_nan=False) + "\n")


def write_results(out: str | os.PathLike, config, rows: list[dict], **sections) -> None:
    """``out/results.json`` and ``out/results.csv``: the rows with their provenance and configuration.

    ``results.json`` holds :func:`provenance`, ``config_hash``, ``config``,
    the extra ``sections`` and the ``results`` rows. ``results.csv`` has one
    line per row (its values, NaN as ``nan``, ``None`` empty) followed by
    the provenance and ``config_hash`` columns, the same on every line.

    Args:
      out: results folder (created if missing).
      config: the configuration (a dataclass, or a mapping of them).
      rows: dicts with the same keys, in column order.
      **sections: more JSON entries (budgets, skipped methods, notes).
    """
    out = pathlib.Path(out)
    stamp = {**provenance(), "config_hash": config_hash(config)}
    write_json(out / "results.json", {**stamp, "config": config, **sections, "results": rows})
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=[*rows[0], *stamp], lineterminator="\n")
    writer.writeheader()
    writer.writerows({**{k: v.tolist() if hasattr(v, "tolist") else v for k, v in row.items()}, **stamp}
                     for row in rows)
    write_atomic(out / "results.csv", table.getvalue())
