"""Atomic, verified snapshots of a pytree of arrays (for resuming long runs).

A snapshot is one ``.npz`` file: the pytree's leaves (typed PRNG keys stored
as their key data) plus a JSON header with a caller-chosen ``identity`` (what
the run was), an ``extra`` record (how far it got) and a SHA-256 of both and
the leaves. It is written to a temporary file next to it, flushed to disk and
renamed over the old one, so a crash leaves either the previous snapshot or
the new one, never a torn file; :func:`prepare` removes temporary files that
killed writes left behind. Loading checks the checksum and the identity, and
that the leaves match a template pytree in shape and dtype, so a snapshot of
another run is refused rather than used. Nothing in the file is executed: no
pickle (object arrays are refused), the header is JSON.

With several processes (``jax.distributed``) every process calls
:func:`prepare`, :func:`save` and :func:`load` (collectives, in the same
order), and the processes must share one file system (as orbax-checkpoint
also assumes): process 0 alone prepares and writes, after gathering the
leaves of arrays that span processes (each host must hold the whole pytree),
the others wait until the file is complete (:mod:`bayesjax.driver.processes`),
and every process reads the same file.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import tempfile
from typing import Callable

import jax
import numpy as np

from bayesjax import sharding
from bayesjax.driver import processes
from bayesjax.types import ArrayTree

TEMPORARY_SUFFIX = ".tmp"
"""A snapshot being written is ``<name><8 random characters>.tmp`` in the snapshot's folder."""


class CheckpointMismatch(ValueError):
    """The snapshot on disk belongs to a different run (or is damaged)."""


def _host_leaves(tree: ArrayTree) -> list[np.ndarray]:
    def to_host(leaf):
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        return sharding.to_host(leaf)

    return [to_host(leaf) for leaf in jax.tree.leaves(tree)]


def _digest(leaves: list[np.ndarray], meta: str) -> str:
    h = hashlib.sha256(meta.encode())
    for leaf in leaves:
        h.update(str((leaf.shape, leaf.dtype.str)).encode())
        h.update(np.ascontiguousarray(leaf).tobytes())
    return h.hexdigest()


def _temporaries(path: pathlib.Path) -> list[pathlib.Path]:
    pattern = re.compile(re.escape(path.name) + r"[a-z0-9_]{8}" + re.escape(TEMPORARY_SUFFIX))
    return [p for p in path.parent.iterdir() if pattern.fullmatch(p.name)] if path.parent.is_dir() else []


def prepare(path: str | os.PathLike) -> None:
    """Before anything compiles: makes sure a snapshot can be written at ``path``, and cleans up after killed writes.

    Creates missing parent folders, writes and removes a probe file there,
    and deletes the temporary files of interrupted :func:`save` calls
    (``<name>XXXXXXXX.tmp``).

    With several processes, process 0 does this and the others wait for it.

    Raises:
      ValueError: ``path`` is a folder, a parent is a file, or the folder is not writable
        (RuntimeError on the other processes of a ``jax.distributed`` run).
    """
    processes.on_process_zero(lambda: _prepare(pathlib.Path(path)), f"prepare checkpoint {path}")


def _prepare(path: pathlib.Path) -> None:
    if path.is_dir():
        raise ValueError(f"checkpoint {path} is a folder: pass a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=TEMPORARY_SUFFIX):
            pass
    except OSError as error:
        reason = next((f"{p} is a file" for p in path.parents if p.exists() and not p.is_dir()),
                      error.strerror or str(error))
        raise ValueError(f"checkpoint {path} cannot be written: {reason}") from error
    for stale in _temporaries(path):
        stale.unlink(missing_ok=True)


def save(path: str | os.PathLike, tree: ArrayTree, identity: dict, extra: dict | None = None) -> None:
    """Writes ``tree``, ``identity`` and ``extra`` (JSON-serializable) atomically to ``path``.

    With several processes, every process gathers the leaves, process 0
    writes the file, and no process returns before it is complete.
    """
    leaves = _host_leaves(tree)
    processes.on_process_zero(lambda: _write(pathlib.Path(path), leaves, identity, extra), f"write checkpoint {path}")


def _write(path: pathlib.Path, leaves: list[np.ndarray], identity: dict, extra: dict | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"identity": identity, "extra": extra or {}})
    header = json.dumps({"meta": meta, "sha256": _digest(leaves, meta)})
    arrays = {f"leaf{i}": leaf for i, leaf in enumerate(leaves)}
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=TEMPORARY_SUFFIX, delete=False) as f:
        np.savez(f, header=np.frombuffer(header.encode(), np.uint8), **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(f.name, path)


def _differences(saved, wanted, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(wanted, dict):
        return [d for k in sorted(set(saved) | set(wanted), key=str)
                for d in _differences(saved.get(k), wanted.get(k), f"{prefix}{k}.")]
    return [] if saved == wanted else [prefix[:-1]]


def load(path: str | os.PathLike, like: ArrayTree | Callable[[dict], ArrayTree], identity: dict) -> tuple[ArrayTree, dict]:
    """Reads the snapshot at ``path`` into the structure of ``like``.

    Every process of a ``jax.distributed`` run reads the file itself; the
    leaves come back as host arrays (place them with
    :func:`bayesjax.sharding.from_host`).

    Args:
      path: a file written by :func:`save`.
      like: a pytree (arrays or ``jax.ShapeDtypeStruct``) with the expected
        structure, shapes and dtypes, or a function of the snapshot's
        ``extra`` record that returns one (called once the identity matched;
        it may raise :class:`CheckpointMismatch`); PRNG-key leaves (default
        implementation) are restored as keys.
      identity: must equal the identity the snapshot was saved with.

    Returns:
      The restored pytree and the snapshot's ``extra`` record.

    Raises:
      CheckpointMismatch: a damaged or unreadable file (truncated, bit-flipped,
        empty, not a snapshot), another identity, or other shapes; the message
        names the path.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            header = json.loads(f["header"].tobytes().decode())
            leaves = [f[f"leaf{i}"] for i in range(len(f.files) - 1)]
        meta = header["meta"]
        checksum_ok = header.get("sha256") == _digest(leaves, meta)
        meta = json.loads(meta)
        saved_identity, extra = meta["identity"], meta["extra"]
    except Exception as error:  # a damaged file fails in many ways (zip, npy, JSON, memory): all are "cannot be read"
        raise CheckpointMismatch(f"checkpoint {path} cannot be read ({type(error).__name__}: {error}); "
                                 f"delete it or pass another path") from error
    if not checksum_ok:
        raise CheckpointMismatch(f"checkpoint {path} is damaged (checksum mismatch); delete it or pass another path")
    wanted = json.loads(json.dumps(identity))
    if saved_identity != wanted:
        raise CheckpointMismatch(
            f"checkpoint {path} was written by a different run (it differs in: "
            f"{', '.join(_differences(saved_identity, wanted))}); delete it or pass another path"
        )
    templates, treedef = jax.tree.flatten(like(extra) if callable(like) else like)
    if len(templates) != len(leaves):
        raise CheckpointMismatch(f"checkpoint {path} holds {len(leaves)} arrays, the run has {len(templates)}")
    restored = []
    for template, leaf in zip(templates, leaves):
        if jax.dtypes.issubdtype(template.dtype, jax.dtypes.prng_key):
            try:
                leaf = jax.random.wrap_key_data(leaf)
            except (TypeError, ValueError) as error:
                raise CheckpointMismatch(f"checkpoint {path} holds no PRNG key where the run has one: {error}") from error
        if tuple(leaf.shape) != tuple(template.shape) or leaf.dtype != template.dtype:
            raise CheckpointMismatch(
                f"checkpoint {path} has an array of shape {tuple(leaf.shape)} {leaf.dtype}, "
                f"the run expects {tuple(template.shape)} {template.dtype}"
            )
        restored.append(leaf)
    return jax.tree.unflatten(treedef, restored), extra
