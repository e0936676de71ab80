"""A griffe extension: the package's Sphinx roles (:func:`x`) become cross-references of the API site.

The docstrings cross-reference with Sphinx roles (``:func:``, ``:class:``,
``:mod:``, ``:meth:``, ``:attr:``, ...), which ``tests/test_docstrings.py``
resolves. This extension rewrites each role before mkdocstrings renders the
docstring: it looks the target up the way that test does (inside the
enclosing class, the module, each enclosing package for a leading ``.``, as
written, then in ``bayesjax``) and replaces the role with an autorefs link to
the object's canonical path, shown as ``~`` asks (last component) or as
written. An ``Example:`` section is read as Google style's ``Examples:``
(its ``>>>`` lines render as code), and ``:math:`x``` becomes ``$x$``
(MathJax renders it). The link is optional: an object that no page renders (a private
helper module) shows as code. A target that names nothing is a warning, so
``mkdocs build --strict`` fails on it.
"""
from __future__ import annotations

import importlib
import logging
import re
import types

import griffe

ROLE = re.compile(r":(?:py:)?(func|class|mod|meth|attr|data|exc|obj):`([^`]+)`")
MATH = re.compile(r":math:`([^`]+)`")
EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.M)
LOGGER = logging.getLogger("mkdocs.plugins.sphinx_roles")


def lookup(dotted: str):
    """The object ``dotted`` names (longest importable module prefix, then attributes); ``LookupError`` if none."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            annotated = any(name in vars(base).get("__annotations__", {}) for base in getattr(obj, "__mro__", ()))
            if hasattr(obj, name):
                obj = getattr(obj, name)
            elif annotated and name == parts[-1]:  # a dataclass / NamedTuple field without a default
                return None
            else:
                break
        else:
            return obj
    raise LookupError(dotted)


def canonical(obj, written: str) -> str:
    """Where mkdocstrings renders ``obj``: its defining module and qualified name, else the path as written."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and "<" not in qualname:
        return f"{module}.{qualname}"
    return written


def resolve(role: str, target: str, module: str, owner: str | None) -> str | None:
    """The canonical path of a role's target seen from ``module`` (and class ``owner``), or None."""
    target = target.removesuffix("()")
    packages = module.split(".")
    relative = [".".join(packages[:cut]) + target for cut in range(len(packages), 0, -1)] if target[0] == "." else []
    target = target.lstrip(".")
    candidates = ([f"{module}.{owner}.{target}"] if owner else []) + [
        f"{module}.{target}", *relative, target, f"bayesjax.{target}"]
    for candidate in candidates:
        try:
            obj = lookup(candidate)
        except LookupError:
            continue
        if role != "mod" or isinstance(obj, types.ModuleType):
            return canonical(obj, candidate)
    return None


def rewrite(text: str, obj: griffe.Object) -> str:
    """``text`` with every Sphinx role replaced by an optional autorefs link (warns on one that names nothing)."""
    module = obj.module.path
    owner = obj.name if obj.is_class else (obj.parent.name if obj.parent is not None and obj.parent.is_class else None)

    def link(match: re.Match) -> str:
        role, written = match.groups()
        title, target = (written.split("<")[0].strip(), written.split("<")[-1].rstrip(">")) if "<" in written else (
            None, written)
        shown = target.lstrip("~").removesuffix("()")
        path = resolve(role, shown, module, owner)
        if path is None:
            LOGGER.warning("%s: %s names nothing", obj.path, match.group(0))
            return f"`{shown}`"
        label = title or (shown.split(".")[-1] if target.startswith("~") else shown.lstrip("."))
        return f'<autoref identifier="{path}" optional><code>{label}</code></autoref>'

    return ROLE.sub(link, text)


class SphinxRoles(griffe.Extension):
    """Rewrites the Sphinx roles of every docstring of a loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        stack = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is not None:
                # Google style's examples section is "Examples:"; the package writes "Example:" too.
                examples = EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
                obj.docstring.value = MATH.sub(r"$\1$", rewrite(examples, obj))
            stack.extend(member for member in obj.members.values() if not member.is_alias)
