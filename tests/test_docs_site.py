"""The API site builds with warnings as errors, and its two build extensions do what they say.

The build (about 10 s on 2 cores) renders every page of ``mkdocs.yml``: the
docstrings of the public modules (griffe warns on a documented parameter
missing from a signature), every Sphinx role rewritten into a link
(``docs/sphinx_roles.py`` warns on one that names nothing) and the guides from
``notebooks/*.py`` (``docs/hooks.py``; a figure a guide saves must be in
``docs/figures/``). ``--strict`` turns each warning into a failed build.
"""
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_{name}", ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocstrings_handlers.python", reason="the docs extra (pip install -e '.[docs]')")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "WARNING" not in result.stderr, result.stderr[-4000:]
    builders = (site / "api" / "bayesjax.html").read_text()
    for name in ("sgld", "hmc", "map", "swag", "meanfield_vi", "laplace", "online", "mc_dropout", "from_blackjax"):
        assert f'id="bayesjax.{name}"' in builders, name
    assert ":func:" not in builders and "<autoref" not in builders  # every role became a link or code
    assert 'href="#bayesjax.LogJoint.loss"' in builders  # a role resolved to the page that renders it
    guides = {path.stem for path in (ROOT / "notebooks").glob("*.py") if not path.name.startswith("_")}
    assert guides and all((site / "guides" / f"{name}.html").is_file() for name in guides)


def test_roles_resolve_like_sphinx():
    roles = _load("sphinx_roles")
    assert roles.resolve("meth", "loss", "bayesjax.logjoint", "LogJoint") == "bayesjax.logjoint.LogJoint.loss"
    assert roles.resolve("func", "bayesjax.sgld", "bayesjax.run", None) == "bayesjax.inference.sgmcmc.build_sgld"
    assert roles.resolve("class", ".logjoint.LogJoint", "bayesjax.inference.map", None) == "bayesjax.logjoint.LogJoint"
    assert roles.resolve("mod", "logjoint", "bayesjax.run", None) == "bayesjax.logjoint"
    assert roles.resolve("func", "no_such_function", "bayesjax.run", None) is None
    assert roles.resolve("mod", "sgld", "bayesjax", None) is None  # a function is not a module


def test_guide_page_from_percent_notebook():
    hooks = _load("hooks")
    source = ('# ---\n# jupyter:\n#   kernelspec:\n#     name: python3\n# ---\n\n'
              '# %% [markdown]\n# # Title\n#\n# Some $x$.\n\n# %%\nfig = plot()\nsave_figure(fig, "trace")\n')
    page = hooks._markdown(source, "guide.py")
    assert page.startswith("# Title\n\nSome $x$.")
    assert "```python\nfig = plot()\nsave_figure(fig, \"trace\")\n```" in page
    assert "![trace](../figures/trace.png)" in page and "jupyter" not in page
