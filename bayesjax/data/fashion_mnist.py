"""Fashion-MNIST (Xiao et al. 2017), read from local IDX files (the MNIST file format)."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from bayesjax.data.dataset import Arrays
from bayesjax.data.files import candidates, first_with

__all__ = ["FILES", "fashion_mnist", "read_idx"]

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
"""The four gzip-compressed IDX files, in the order ``x_train, y_train, x_test, y_test``."""


def read_idx(path: Path) -> np.ndarray:
    """Reads a gzip-compressed IDX file (the MNIST format: magic, big-endian dims, data).

    Raises:
        ValueError: the file does not start with an IDX magic number.
    """
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (magic {raw[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, _IDX_DTYPES[code], count=int(np.prod(shape)), offset=4 + 4 * ndim).reshape(shape)


def fashion_mnist(split: int, root, test_fraction: float) -> Arrays:
    """Reads Fashion-MNIST's fixed 60,000/10,000 split from local IDX files.

    Searched: ``root`` when given, else ``$BAYESJAX_DATA``, then
    ``/usr/share/datasets`` and ``~/.keras/datasets``, each also with a
    ``fashion-mnist`` subfolder. ``test_fraction`` does not apply.
    """
    if split != 0:
        raise ValueError(f"fashion_mnist has 1 fixed train/test split (split=0); got split={split}")
    defaults = [Path("/usr/share/datasets"), Path.home() / ".keras" / "datasets"]
    folders = candidates(root, "BAYESJAX_DATA", defaults, [".", "fashion-mnist"])
    folder = first_with(folders, FILES)
    if folder is None:
        raise FileNotFoundError(
            f"Fashion-MNIST files {', '.join(FILES)} not found in any of: "
            f"{', '.join(str(c) for c in folders)}. Install them with "
            "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or put the 4 files in $BAYESJAX_DATA "
            "or pass root=."
        )
    x_train, y_train, x_test, y_test = (read_idx(folder / f) for f in FILES)
    return x_train[..., None], y_train, x_test[..., None], y_test
