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
import builtins
import importlib
import inspect
import pathlib
import pkgutil
import re
import types

import pytest

import bayesjax

ROLE = re.compile(r":(?:py:)?(func|class|mod|meth|attr|data|exc|obj):`([^`]+)`")
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


def field(owner, name: str) -> bool:
    """Whether ``name`` is a declared field of the class ``owner`` (annotated, possibly without a value)."""
    return inspect.isclass(owner) and any(name in vars(base).get("__annotations__", {}) for base in owner.__mro__)


def lookup(dotted: str):
    """The object ``dotted`` names (longest importable module prefix, then attributes); ``LookupError`` if none."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if hasattr(obj, name):
                obj = getattr(obj, name)
            elif field(obj, name) and name == parts[-1]:
                return None
            else:
                break
        else:
            return obj
    if len(parts) == 1 and hasattr(builtins, dotted):
        return getattr(builtins, dotted)
    raise LookupError(dotted)


def resolves(role: str, target: str, module: str, owner: str | None) -> bool:
    target = target.split("<")[-1].rstrip(">").lstrip("~").removesuffix("()")
    packages = module.split(".")
    relative = [".".join(packages[:cut]) + target for cut in range(len(packages), 0, -1)] if target[0] == "." else []
    target = target.lstrip(".")
    candidates = ([f"{module}.{owner}.{target}"] if owner else []) + [
        f"{module}.{target}", *relative, target, f"{bayesjax.__name__}.{target}"]
    for candidate in candidates:
        try:
            obj = lookup(candidate)
        except LookupError:
            continue
        if role != "mod" or isinstance(obj, types.ModuleType):
            return True
    return False


def test_every_file_is_walked():
    walked = {pathlib.Path(importlib.import_module(module).__file__) for module in MODULES}
    assert set(pathlib.Path(bayesjax.__file__).parent.rglob("*.py")) == walked, "a folder without __init__.py?"


@pytest.mark.parametrize("module", MODULES)
def test_cross_references_resolve(module):
    source = inspect.getsource(importlib.import_module(module))
    broken = [f":{role}:`{target}`" for owner, doc in docstrings(ast.parse(source))
              for role, target in ROLE.findall(doc) if not resolves(role, target, module, owner)]
    assert not broken, f"{module}: unresolved {sorted(set(broken))}"
