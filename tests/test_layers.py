"""The package is a one-way house: every import runs down (or across) the floors below, never up.

The imports of every module are read from its source, function-local ones included, so an import
that only runs inside a function still counts. A module imports only from its own floor or below;
no two modules import each other, directly or round a circle; and no module touches another
module's `_private` names. The README's architecture section shows the same table.
"""

from __future__ import annotations

import ast
import collections
import functools
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "keras_zoo"

# Floor of each module or package (a prefix covers everything below it); the longest prefix wins.
LAYERS = {
    "keras_zoo._io": 1, "keras_zoo._validate": 1, "keras_zoo._lazy": 1, "keras_zoo._version": 1,
    "keras_zoo.data": 1, "keras_zoo.registry": 1, "keras_zoo.distribute": 1,
    "keras_zoo.models": 2, "keras_zoo.recipes": 2, "keras_zoo.export": 2, "keras_zoo.evaluation": 2,
    "keras_zoo.robustness": 2,
    "keras_zoo.weights": 3, "keras_zoo.imagenet": 3, "keras_zoo.presets": 3, "keras_zoo.factory": 3,
    "keras_zoo.training": 4, "keras_zoo.transfer": 4, "keras_zoo.tuning": 4,
    "keras_zoo.experiments": 4, "keras_zoo.pretrain": 4,
    "keras_zoo.cli": 5, "keras_zoo.docs": 5,
    # The top-level package only maps public names to their modules (imported lazily, on use).
    "keras_zoo": 5,
}
# Private modules that are the package's shared utilities, not another module's internals.
SHARED_PRIVATE = {"_io", "_validate", "_lazy", "_version", "_custom_step", "_common"}


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def floor(module: str) -> int:
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len, default=None)
    if best is None:
        raise AssertionError(f"{module} has no floor in LAYERS: add it (and to the README's table)")
    return LAYERS[best]


def public_api() -> dict:
    """`keras_zoo.X` public names -> the module that defines X (the lazy table in __init__)."""
    tree = ast.parse(MODULES["keras_zoo"].read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            if getattr(target, "id", None) == "_API":
                return ast.literal_eval(node.value)
    raise AssertionError("keras_zoo/__init__.py has no _API table")


API = public_api()


def imports(module: str):
    """(imported module, names taken from it, line) for every import in `module`, nested ones too."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("keras_zoo"):
                    yield alias.name, (), node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if not base.startswith("keras_zoo"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in MODULES:  # `from keras_zoo.models import layers` imports a module
                    yield sub, (), node.lineno
                elif base == "keras_zoo" and alias.name in API:
                    yield API[alias.name], (alias.name,), node.lineno
                else:
                    yield base, (alias.name,), node.lineno


def edges() -> dict:
    graph = {}
    for module in MODULES:
        graph[module] = {}
        for target, names, line in imports(module):
            if target != module and target in MODULES:
                graph[module].setdefault(target, (names, line))
    return graph


GRAPH = edges()


def test_every_module_has_a_floor():
    for module in MODULES:
        floor(module)


def test_imports_never_run_up_a_floor():
    upward = [f"{m} (floor {floor(m)}) imports {t} (floor {floor(t)}) at line {line}"
              for m, targets in GRAPH.items() for t, (_, line) in targets.items()
              if floor(t) > floor(m)]
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def find_cycle(graph: dict):
    """One import circle of `graph` as a list of modules, or None."""
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in graph.get(node, {}):
            if state.get(nxt) == "open":
                return trail[trail.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, trail + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in graph:
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_there_is_no_import_circle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_no_module_touches_another_modules_private_names():
    offences = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom | ast.Import):
                for target, names, line in imports_of_node(module, node):
                    for name in names:
                        if (name.startswith("_") and not name.startswith("__") and name not in SHARED_PRIVATE
                                and target != module):
                            offences.append(f"{module}:{line} imports {target}.{name}")
                for alias in node.names:
                    full = f"{node.module}.{alias.name}" if isinstance(node, ast.ImportFrom) else alias.name
                    if full in MODULES:
                        aliases[alias.asname or alias.name.split(".")[0]] = full
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__") and node.attr not in SHARED_PRIVATE
                    and aliases[node.value.id] != module):
                offences.append(f"{module}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert not offences, "private names used across modules:\n" + "\n".join(offences)


@functools.lru_cache(maxsize=None)
def _imports_by_line(module):
    """`imports(module)` grouped by line, parsed once per module (the check above asks per node)."""
    by_line = collections.defaultdict(list)
    for target, names, line in imports(module):
        by_line[line].append((target, names, line))
    return by_line


def imports_of_node(module, node):
    yield from _imports_by_line(module).get(node.lineno, ())


@pytest.mark.parametrize("graph, circle", [
    ({"a": {"b": ()}, "b": {"c": ()}, "c": {"a": ()}}, ["a", "b", "c", "a"]),
    ({"a": {"b": ()}, "b": {}, "c": {"a": ()}}, None),
])
def test_the_circle_finder_finds_circles_and_only_circles(graph, circle):
    assert find_cycle(graph) == circle


def test_the_layer_check_would_catch_the_old_registry_reaching_up():
    # The registry used to import the presets and the weight store (floor 3) from inside functions.
    assert floor("keras_zoo.presets") > floor("keras_zoo.registry")
    assert floor("keras_zoo.weights") > floor("keras_zoo.registry")
    source = "def f():\n    from keras_zoo import weights\n"
    tree = ast.parse(source)
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))
    assert node.module == "keras_zoo" and f"{node.module}.{node.names[0].name}" in MODULES
