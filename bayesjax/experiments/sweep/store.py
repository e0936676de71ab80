"""Kill-safe cell files: strict JSON written atomically with a checksum, named by the configuration's fingerprint."""
from __future__ import annotations

import json
import os
import pathlib

from bayesjax.experiments import outputs
from bayesjax.experiments.sweep.cells import COLUMNS
from bayesjax.experiments.sweep.config import SweepConfig


def checksum(record: dict) -> str:
    """SHA-256 of a record without its ``checksum`` field (NaN counted as the ``null`` it is written as)."""
    return outputs.digest({k: v for k, v in record.items() if k != "checksum"})


def cell_path(out: pathlib.Path, config: SweepConfig, temperature: float, seed: int) -> pathlib.Path:
    """Where a cell of ``config`` is kept: ``out/cells/<fingerprint>_T<T>_seed<seed>.json``."""
    return out / "cells" / f"{config.fingerprint()}_T{temperature:.6g}_seed{seed}.json"


def write_cell(path: pathlib.Path, record: dict) -> None:
    """Writes a finished cell's record (with its checksum) as strict JSON, atomically."""
    outputs.write_json(path, {**record, "checksum": checksum(record)})


def load_cell(path: pathlib.Path, config: SweepConfig) -> dict | None:
    """A finished cell's record (``null`` read back as NaN), or None when missing, corrupted, from another
    configuration, or written before cells recorded their ``cells_per_chunk`` or every one of
    :data:`~bayesjax.experiments.sweep.cells.COLUMNS` (then the cell is computed again)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("checksum") != checksum(record):
        return None
    if record.get("fingerprint") != config.fingerprint() or not {"cells_per_chunk", *COLUMNS} <= record.keys():
        return None
    return outputs.nan_for_null(record)


def write_results(rows: list[dict], configs: dict[str, SweepConfig], out: str | os.PathLike) -> None:
    """``results.json`` and ``results.csv`` in ``out`` (:func:`bayesjax.experiments.outputs.write_results`).

    Args:
      rows: cell records, each with a ``setting`` naming its configuration in ``configs``.
      configs: setting name (e.g. ``"augmentation off"``) -> its sweep configuration.
      out: results folder.
    """
    outputs.write_results(out, configs, rows)
