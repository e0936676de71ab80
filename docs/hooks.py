"""mkdocs hook: each guide notebook (jupytext percent format, ``notebooks/*.py``) becomes a page.

Markdown cells are the page's text, code cells Python blocks; after a cell
that calls ``save_figure(fig, "name")`` the page shows ``docs/figures/name.png``
(written when the notebook runs at full budget), so a guide whose figure is
missing fails the strict build.
"""
from __future__ import annotations

import pathlib
import re

from mkdocs.structure.files import File

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
CELL = re.compile(r"^# %%(.*)$", re.M)
FIGURE = re.compile(r"""save_figure\(\s*\w+\s*,\s*["']([\w-]+)["']""")


def _markdown(source: str, name: str) -> str:
    """The Markdown page of one percent-format notebook."""
    source = re.sub(r"\A# ---\n(?:#.*\n)*?# ---\n", "", source)  # the jupytext header
    pieces = CELL.split(source)
    page = []
    for header, body in zip(pieces[1::2], pieces[2::2]):
        body = body.strip("\n")
        if "[markdown]" in header:
            page.append("\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines()))
        elif body:
            page.append(f"```python\n{body}\n```")
            page.extend(f"![{name}](../figures/{name}.png)" for name in FIGURE.findall(body))
    page.append(f"*The notebook: `notebooks/{name}`, a jupytext percent-format script "
                "(`jupytext --to ipynb` opens it in Jupyter).*")
    return "\n\n".join(page) + "\n"


def on_files(files, config):
    """Adds ``guides/<name>.md`` for every ``notebooks/<name>.py`` (helper modules start with ``_``)."""
    for path in sorted(NOTEBOOKS.glob("*.py")):
        if path.name.startswith("_"):
            continue
        content = _markdown(path.read_text(), path.name)
        files.append(File.generated(config, f"guides/{path.stem}.md", content=content))
    return files
