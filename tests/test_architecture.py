"""The dependency direction of DESIGN.md, module by module.

Between the top-level packages: api → crosswalk, geo; crosswalk → geo; geo → nothing of
ours; only ``api`` imports Flask, and not its OGC core (``api.ogc``) nor its parameter
types (``api.parameters``). Inside ``geo`` the domain packages point down only:
changes → geodata, access → platform → models, errors. The whole import graph (imports
inside functions included) has no cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("geo", "crosswalk", "api", "data")

# What each layer may import of ours (its own modules always).
MAY_IMPORT: dict[str, set[str]] = {
    "geo.errors": set(),
    "geo.models": {"geo.errors"},
    "geo.platform": {"geo.errors", "geo.models"},
    "geo.geodata": {"geo.errors", "geo.models", "geo.platform"},
    "geo.access": {"geo.errors", "geo.models", "geo.platform", "geo.geodata"},
    "geo.changes": {"geo.errors", "geo.models", "geo.platform", "geo.geodata", "geo.access"},
    "crosswalk": {"geo.errors", "geo.models", "geo.platform", "geo.geodata"},
    "data": {"geo.errors", "geo.models", "geo.platform", "geo.geodata", "geo.changes"},
    # The OGC core and the parameter types know no web framework (pygeoapi's api/ core).
    "api.parameters": {"geo.errors", "geo.geodata"},
    "api.ogc": {
        "geo.errors",
        "geo.models",
        "geo.platform",
        "geo.geodata",
        "geo.access",
        "geo.changes",  # (a collection links its latest snapshot's files)
        "api.parameters",
    },
    "api": {
        "geo.errors",
        "geo.models",
        "geo.platform",
        "geo.geodata",
        "geo.access",
        "geo.changes",
        "crosswalk",
        "data",
        "api.parameters",
        "api.ogc",
    },
}
FRAMEWORK_FREE = ("api.ogc", "api.parameters")
FRAMEWORKS = {"flask", "werkzeug"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imported_names(path: Path) -> Iterable[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from pkg import module` depends on the module
                inner = f"{node.module}.{alias.name}"
                yield inner if inner in MODULES else node.module


def _ours(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "geo" and len(parts) > 1:
        return ".".join(parts[:2])
    if parts[0] == "api" and len(parts) > 1 and ".".join(parts[:2]) in FRAMEWORK_FREE:
        return ".".join(parts[:2])
    return parts[0]


def _graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        targets = {_ours(n) for n in _imported_names(path)}
        graph[module] = {t for t in targets if t and t != module}
    return graph


def _violations(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for module, targets in graph.items():
        layer = _layer(module)
        allowed = MAY_IMPORT.get(layer, set()) | {layer}
        bad = sorted(t for t in targets if _layer(t) not in allowed)
        if bad:
            out[module] = bad
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_layer_imports_only_downward() -> None:
    assert _violations(_graph()) == {}


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycles(_graph()) == []


def test_only_api_imports_flask_and_not_its_core() -> None:
    outside = [
        name
        for name, path in MODULES.items()
        if _layer(name) != "api" and FRAMEWORKS & {n.split(".")[0] for n in _imported_names(path)}
    ]
    assert outside == []
    core = [m for m in MODULES if m == "api.ogc" or m.startswith("api.ogc.")]
    assert core and {_layer(m) for m in core} == {"api.ogc"}


def test_every_package_says_what_it_owns() -> None:
    packages = [n for n, p in MODULES.items() if p.name == "__init__.py" and n.count(".") <= 1]
    undocumented = [
        n for n in packages if not ast.get_docstring(ast.parse(MODULES[n].read_text("utf-8")))
    ]
    assert undocumented == []


def test_the_checks_see_a_violation_and_a_cycle() -> None:
    graph = {"geo.platform.a": {"geo.geodata.b"}, "geo.geodata.b": {"geo.platform.a"}}
    assert _violations(graph) == {"geo.platform.a": ["geo.geodata.b"]}
    assert _cycles(graph) == [["geo.geodata.b", "geo.platform.a"]]


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_each_layer_exists(layer: str) -> None:
    assert any(_layer(m) == layer for m in MODULES)


CROSSWALK_TABLES = ("crosswalk_run", "crosswalk_link", "crosswalk_release", "crosswalk_decision")


def test_only_the_crosswalk_reads_its_tables() -> None:
    """Others ask it through `geo.geodata.registry.partners` (the schema and its migrations
    declare the tables; nobody else names them)."""
    readers = sorted(
        name
        for name, path in MODULES.items()
        if not name.startswith(("crosswalk", "geo.models", "geo.platform.migrations"))
        and any(table in path.read_text(encoding="utf-8") for table in CROSSWALK_TABLES)
    )
    assert readers == []
