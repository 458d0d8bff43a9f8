"""The package's import graph runs one way: no circle, and no edge from a lower layer to a higher.

Every import statement counts, at the top of a module or inside a function (a lazy import still
ties the modules together); imports under ``if TYPE_CHECKING:`` do not, since they never run.
The layers are described in the README's development section.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tcgjobs"

#: Lowest first. A module may import modules of its own layer and the layers below it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("tcgjobs", "tcgjobs.errors", "tcgjobs.times", "tcgjobs.levels", "tcgjobs.parsers",
              "tcgjobs.logging", "tcgjobs.reporting", "tcgjobs.cancel")),
    ("declarations", ("tcgjobs.registry", "tcgjobs.catalog", "tcgjobs.config", "tcgjobs.schedule",
                      "tcgjobs.offsite.settings", "tcgjobs.offsite.location")),
    ("storage", ("tcgjobs.db", "tcgjobs.jobstatus")),
    ("io", ("tcgjobs.sources", "tcgjobs.backups", "tcgjobs.services", "tcgjobs.offsite")),
    ("runs", ("tcgjobs.context", "tcgjobs.runner", "tcgjobs.verdict", "tcgjobs.observers",
              "tcgjobs.jobstatus", "tcgjobs.health", "tcgjobs.config_check")),
    ("jobs", ("tcgjobs.jobs",)),
    ("interface", ("tcgjobs.cli", "tcgjobs.deploy", "tcgjobs.__main__")),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> int:
    best, rank = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    return rank


def _resolve(name: str) -> str | None:
    """The package module an imported name refers to (``tcgjobs.db.state`` for
    ``from tcgjobs.db import state``), or None outside the package."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(filter(None, (_resolve(alias.name) for alias in child.names)))
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for alias in child.names:
                    target = _resolve(f"{child.module}.{alias.name}") or _resolve(child.module)
                    if target:
                        found.add(target)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


GRAPH = {module: _imports(path) - {module} for module, path in MODULES.items()}


def test_every_module_belongs_to_a_layer():
    assert [module for module in MODULES if _layer(module) < 0] == []


def test_no_module_imports_from_a_higher_layer():
    upward = sorted(f"{module} ({LAYERS[_layer(module)][0]}) imports {target} "
                    f"({LAYERS[_layer(target)][0]})"
                    for module, targets in GRAPH.items() for target in targets
                    if _layer(target) > _layer(module))
    assert upward == []


def _find_cycle() -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(GRAPH):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def test_the_import_graph_has_no_circle():
    cycle = _find_cycle()
    assert cycle is None, " -> ".join(cycle or [])


@pytest.mark.parametrize(("edges", "cycle"), [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
])
def test_the_circle_finder_finds_circles_and_only_circles(edges, cycle, monkeypatch):
    monkeypatch.setattr(__import__(__name__, fromlist=["GRAPH"]), "GRAPH", edges)
    assert (_find_cycle() is not None) is cycle
