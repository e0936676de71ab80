"""What the guide notebooks share: the run budget and where their figures go.

``BAYESJAX_NOTEBOOK_SMALL=1`` (set by ``tests/test_notebooks.py``) runs a
guide with small budgets, to check that it executes; the figures it draws are
then not saved. Run without it, a guide uses its full budget and saves its
figures to ``docs/figures/``, where the API site shows them.
"""
from __future__ import annotations

import os
import pathlib

SMALL = os.environ.get("BAYESJAX_NOTEBOOK_SMALL") == "1"
FIGURES = pathlib.Path(__file__).resolve().parents[1] / "docs" / "figures"


def budget(full, small):
    """``small`` in a small run, else ``full``."""
    return small if SMALL else full


def save_figure(fig, name: str) -> None:
    """Saves ``fig`` as ``docs/figures/<name>.png`` after a full run; a small run keeps the saved one."""
    if not SMALL:
        FIGURES.mkdir(parents=True, exist_ok=True)
        fig.savefig(FIGURES / f"{name}.png", dpi=100, bbox_inches="tight")
