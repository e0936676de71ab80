"""The package's layout (DESIGN.md, "Layout"): imports point down only.

Reads every module of ``bayesjax`` with ``ast`` (imports inside functions
included, ``if TYPE_CHECKING:`` blocks excluded) and checks that there is no
import loop, that no inference method imports the driver, that the core
imports neither the experiments nor the command line, that nothing imports
the package's own face (``import bayesjax``), that no private name crosses
a module boundary, and that a long file says it is one concept.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bayesjax"
MAX_LINES = 400


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_nodes(tree: ast.AST):
    """Import statements anywhere in the module except under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module
    base = module.split(".")
    if not MODULES[module].name == "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str) -> list[tuple[str, str | None]]:
    """``(imported module, imported name or None)`` pairs of ``module``, within bayesjax."""
    found = []
    for node in import_nodes(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name.split(".")[0] == "bayesjax"]
            continue
        target = resolve(module, node)
        if target.split(".")[0] != "bayesjax":
            continue
        for alias in node.names:
            submodule = f"{target}.{alias.name}"
            found.append((submodule, None) if submodule in MODULES else (target, alias.name))
    return found


GRAPH = {module: sorted({target for target, _ in imports(module)}) for module in MODULES}


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_every_import_resolves_to_a_module_of_the_package():
    missing = [(m, t) for m, targets in GRAPH.items() for t in targets if t not in MODULES]
    assert missing == []


def test_there_is_no_import_loop():
    index, low, on_stack, stack, loops, counter = {}, {}, set(), [], [], [0]

    def connect(module):  # Tarjan's strongly connected components
        index[module] = low[module] = counter[0]
        counter[0] += 1
        stack.append(module)
        on_stack.add(module)
        for target in GRAPH.get(module, []):
            if target not in index:
                connect(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1 or module in GRAPH.get(module, []):
                loops.append(sorted(component))

    for module in MODULES:
        if module not in index:
            connect(module)
    assert loops == []


@pytest.mark.parametrize("lower, upper", [
    ("bayesjax.inference", "bayesjax.run"),
    ("bayesjax.inference", "bayesjax.driver"),
])
def test_no_method_imports_the_driver(lower, upper):
    wrong = [(m, t) for m, targets in GRAPH.items() if in_package(m, lower) for t in targets if in_package(t, upper)]
    assert wrong == []


def test_the_core_imports_neither_experiments_nor_the_command_line():
    core = [m for m in MODULES if not in_package(m, "bayesjax.experiments") and m != "bayesjax.cli"]
    wrong = [(m, t) for m in core for t in GRAPH[m]
             if in_package(t, "bayesjax.experiments") or t == "bayesjax.cli"]
    assert wrong == []


def test_no_module_imports_the_package_face():
    wrong = [m for m, targets in GRAPH.items() if m != "bayesjax" and "bayesjax" in targets]
    assert wrong == []


def module_aliases(module: str) -> dict[str, str]:
    """Names bound to bayesjax modules in ``module``: ``from bayesjax.x import y`` or ``import bayesjax.x as y``."""
    aliases = {}
    for node in import_nodes(ast.parse(MODULES[module].read_text())):
        for alias in node.names:
            if isinstance(node, ast.Import):
                target = alias.name
            else:
                target = f"{resolve(module, node)}.{alias.name}"
            if target in MODULES and target != module:
                aliases[alias.asname or alias.name.split(".")[0]] = target
    return aliases


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_private_name_crosses_a_module_boundary():
    wrong = []
    for module in MODULES:
        for target, name in imports(module):
            if any(is_private(part) for part in target.split(".")) or (name is not None and is_private(name)):
                wrong.append((module, target, name))
        aliases = module_aliases(module)
        for node in ast.walk(ast.parse(MODULES[module].read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and is_private(node.attr)):
                wrong.append((module, aliases[node.value.id], node.attr))
    assert wrong == []


def test_a_long_file_says_it_is_one_concept():
    long = []
    for module, path in MODULES.items():
        lines = path.read_text().count("\n")
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and "one concept" not in docstring.lower():
            long.append((module, lines))
    assert long == []
