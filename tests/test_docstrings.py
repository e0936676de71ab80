"""Every cross-reference in the package's docstrings names something that exists.

Walks every module of ``bayesjax`` (``pkgutil`` + ``importlib``), reads the
docstrings of the module, its classes, functions and methods and its
attribute docstrings (the string after an assignment) with ``ast``, and
resolves each Sphinx role (``:func:``, ``:class:``, ``:mod:``, ``:meth:``,
``:attr:``, ``:data:``, ``:exc:``, ``:obj:``, with or without ``~``) the
way Sphinx looks a name up: inside the enclosing class, then the module,
then (for a name with a leading ``.``) in each enclosing package, then as
written, then in ``bayesjax``. A name resolves when its longest
importable module prefix imports and the rest are attributes (a dataclass
or NamedTuple field without a default counts as an attribute of its class).
"""
import ast
import importlib
import importlib.util
import inspect
import pathlib
import pkgutil

import pytest

import bayesjax

# The API site's extension resolves roles the same way; one implementation serves both.
_spec = importlib.util.spec_from_file_location("sphinx_roles", pathlib.Path(__file__).parents[1] / "docs" / "sphinx_roles.py")
SPHINX_ROLES = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(SPHINX_ROLES)
ROLE = SPHINX_ROLES.ROLE
MODULES = [bayesjax.__name__] + [info.name for info in pkgutil.walk_packages(bayesjax.__path__, "bayesjax.")]


def docstrings(tree: ast.Module):
    """``(enclosing class name or None, docstring)`` of every docstring in the module's source."""
    stack = [(tree, None)]
    while stack:
        node, owner = stack.pop()
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if (doc := ast.get_docstring(node, clean=False)) is not None:
                yield owner, doc
            owner = node.name if isinstance(node, ast.ClassDef) else owner
        body = node.body if isinstance(getattr(node, "body", None), list) else []
        for before, after in zip(body, body[1:]):
            if (isinstance(before, (ast.Assign, ast.AnnAssign)) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                yield owner, after.value.value
        stack.extend((child, owner) for child in ast.iter_child_nodes(node))


def resolves(role: str, target: str, module: str, owner: str | None) -> bool:
    return SPHINX_ROLES.resolve(role, target.split("<")[-1].rstrip(">").lstrip("~"), module, owner) is not None


def test_every_file_is_walked():
    walked = {pathlib.Path(importlib.import_module(module).__file__) for module in MODULES}
    assert set(pathlib.Path(bayesjax.__file__).parent.rglob("*.py")) == walked, "a folder without __init__.py?"


@pytest.mark.parametrize("module", MODULES)
def test_cross_references_resolve(module):
    source = inspect.getsource(importlib.import_module(module))
    broken = [f":{role}:`{target}`" for owner, doc in docstrings(ast.parse(source))
              for role, target in ROLE.findall(doc) if not resolves(role, target, module, owner)]
    assert not broken, f"{module}: unresolved {sorted(set(broken))}"
