"""Where on-disk data is looked for: an explicit root, else an environment variable, else default folders."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["candidates", "first_with"]


def candidates(root, variable: str, defaults: list[Path], subfolders: list[str]) -> list[Path]:
    """Folders to search: ``root`` alone when given, else ``$variable`` then ``defaults``, each
    followed by its ``subfolders``; absolute and without repeats.

    Example:
        >>> from pathlib import Path
        >>> from bayesjax.data.files import candidates
        >>> [str(p) for p in candidates("/data", "UNUSED", [], ["a", "a/b"])]
        ['/data/a', '/data/a/b']
    """
    env = os.environ.get(variable)
    bases = [Path(root)] if root is not None else ([Path(env)] if env else []) + defaults
    return list(dict.fromkeys((base / sub).resolve() for base in bases for sub in subfolders))


def first_with(folders: list[Path], files: tuple[str, ...]) -> Path | None:
    """Returns the first of ``folders`` holding all ``files``, or None."""
    return next((c for c in folders if all((c / f).is_file() for f in files)), None)
