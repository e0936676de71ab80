"""Every guide notebook (``notebooks/*.py``, jupytext percent format) runs to the end on a small budget.

Each guide runs as a script in its own process with
``BAYESJAX_NOTEBOOK_SMALL=1`` (``notebooks/_guide.py``: small step counts,
figures not saved), so a guide that no longer matches the API fails here. The
quickstart notebook is executed as a notebook by ``tests/test_docs.py``. A
guide takes 14-25 s, nearly all of it importing and XLA compiling: the whole
file took 151 s on the 2-core development machine under load 5 from other
jobs.
"""
import os
import pathlib
import subprocess
import sys

import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
GUIDES = sorted(path.stem for path in NOTEBOOKS.glob("*.py") if not path.name.startswith("_") and
                path.stem != "quickstart")


def test_the_guides_are_the_expected_ones():
    assert set(GUIDES) >= {"samplers", "laplace", "vi", "ensembles", "online", "cold_posterior", "flax_models",
                           "many_devices"}


@pytest.mark.parametrize("name", GUIDES)
def test_guide_is_a_percent_notebook(name):
    jupytext = pytest.importorskip("jupytext")
    notebook = jupytext.read(NOTEBOOKS / f"{name}.py")
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds[0] == "markdown" and notebook.cells[0].source.startswith("# "), "a guide opens with its title"
    assert "code" in kinds


@pytest.mark.parametrize("name", GUIDES)
def test_guide_runs_on_a_small_budget(name, tmp_path):
    env = dict(os.environ, BAYESJAX_NOTEBOOK_SMALL="1", MPLBACKEND="Agg", MPLCONFIGDIR=str(tmp_path))
    result = subprocess.run([sys.executable, str(NOTEBOOKS / f"{name}.py")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{name}.py failed:\n{result.stderr[-4000:]}"
