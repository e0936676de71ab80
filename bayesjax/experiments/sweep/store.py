"""Kill-safe cell files: atomic writes with a checksum, named by the configuration's fingerprint."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib

from bayesjax.experiments.sweep.config import SweepConfig


def checksum(record: dict) -> str:
    """SHA-256 of a record without its ``checksum`` field."""
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def cell_path(out: pathlib.Path, config: SweepConfig, temperature: float, seed: int) -> pathlib.Path:
    """Where a cell of ``config`` is kept: ``out/cells/<fingerprint>_T<T>_seed<seed>.json``."""
    return out / "cells" / f"{config.fingerprint()}_T{temperature:.6g}_seed{seed}.json"


def write_atomic(path: pathlib.Path, text: str) -> None:
    """Writes ``text`` to a temporary file, syncs it and renames it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_cell(path: pathlib.Path, config: SweepConfig) -> dict | None:
    """A finished cell's record, or None when missing, corrupted or from another configuration."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("checksum") != checksum(record):
        return None
    if record.get("fingerprint") != config.fingerprint():
        return None
    return record


def write_results(records: list[dict], config: SweepConfig, out: str | os.PathLike) -> None:
    """``results.json`` (config + cells) and ``results.csv`` in ``out``."""
    out = pathlib.Path(out)
    payload = {"config": dataclasses.asdict(config), "cells": records}
    write_atomic(out / "results.json", json.dumps(payload, indent=1))
    columns = list(records[0])
    lines = [",".join(columns)] + [",".join(repr(r[c]) for c in columns) for r in records]
    write_atomic(out / "results.csv", "\n".join(lines) + "\n")
