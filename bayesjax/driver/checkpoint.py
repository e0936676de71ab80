"""Atomic, verified snapshots of a pytree of arrays (for resuming long runs).

A snapshot is one ``.npz`` file: the pytree's leaves (typed PRNG keys stored
as their key data) plus a JSON header with a caller-chosen ``identity`` (what
the run was) and a SHA-256 of the leaves. It is written to a temporary file,
flushed to disk and renamed over the old one, so a crash leaves either the
previous snapshot or the new one, never a torn file. Loading checks the
checksum and the identity, and that the leaves match a template pytree in
shape and dtype, so a snapshot of another run is refused rather than used.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile
import zipfile

import jax
import numpy as np

from bayesjax.types import ArrayTree


class CheckpointMismatch(ValueError):
    """The snapshot on disk belongs to a different run (or is damaged)."""


def _host_leaves(tree: ArrayTree) -> list[np.ndarray]:
    def to_host(leaf):
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        return np.asarray(leaf)

    return [to_host(leaf) for leaf in jax.tree.leaves(tree)]


def _digest(leaves: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for leaf in leaves:
        h.update(str((leaf.shape, leaf.dtype.str)).encode())
        h.update(np.ascontiguousarray(leaf).tobytes())
    return h.hexdigest()


def save(path: str | os.PathLike, tree: ArrayTree, identity: dict) -> None:
    """Writes ``tree`` and ``identity`` (JSON-serializable) atomically to ``path``."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    leaves = _host_leaves(tree)
    header = json.dumps({"identity": identity, "sha256": _digest(leaves)})
    arrays = {f"leaf{i}": leaf for i, leaf in enumerate(leaves)}
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as f:
        np.savez(f, header=np.frombuffer(header.encode(), np.uint8), **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(f.name, path)


def load(path: str | os.PathLike, like: ArrayTree, identity: dict) -> ArrayTree:
    """Reads the snapshot at ``path`` into the structure of ``like``.

    Args:
      path: a file written by :func:`save`.
      like: a pytree (arrays or ``jax.ShapeDtypeStruct``) with the expected
        structure, shapes and dtypes; PRNG-key leaves (default implementation)
        are restored as keys.
      identity: must equal the identity the snapshot was saved with.

    Raises:
      CheckpointMismatch: damaged file, other identity, or other shapes.
    """
    try:
        with np.load(path) as f:
            header = json.loads(f["header"].tobytes().decode())
            leaves = [f[f"leaf{i}"] for i in range(len(f.files) - 1)]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise CheckpointMismatch(f"checkpoint {path} cannot be read: {error}") from error
    if header.get("sha256") != _digest(leaves):
        raise CheckpointMismatch(f"checkpoint {path} is damaged (checksum mismatch)")
    if header.get("identity") != json.loads(json.dumps(identity)):
        raise CheckpointMismatch(f"checkpoint {path} was written by a different run: {header.get('identity')}")
    templates, treedef = jax.tree.flatten(like)
    if len(templates) != len(leaves):
        raise CheckpointMismatch(f"checkpoint {path} holds {len(leaves)} arrays, the run has {len(templates)}")
    restored = []
    for template, leaf in zip(templates, leaves):
        if jax.dtypes.issubdtype(template.dtype, jax.dtypes.prng_key):
            leaf = jax.random.wrap_key_data(leaf)
        if tuple(leaf.shape) != tuple(template.shape) or leaf.dtype != template.dtype:
            raise CheckpointMismatch(
                f"checkpoint {path} has an array of shape {tuple(leaf.shape)} {leaf.dtype}, "
                f"the run expects {tuple(template.shape)} {template.dtype}"
            )
        restored.append(leaf)
    return jax.tree.unflatten(treedef, restored)
