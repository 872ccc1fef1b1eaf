"""The dependency direction of DESIGN.md: api → crosswalk, geo; crosswalk → geo; geo → none."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "geo": {"crosswalk", "api", "data", "flask"},
    "crosswalk": {"api", "data", "flask"},
    "data": {"api", "crosswalk", "flask"},
    "api": set(),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_downstream(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & FORBIDDEN[package])
        for path in _modules(package)
        if _imports(path) & FORBIDDEN[package]
    }
    assert offenders == {}


def test_only_api_imports_flask() -> None:
    outside = [
        str(p.relative_to(ROOT))
        for pkg in ("geo", "crosswalk", "data")
        for p in _modules(pkg)
        if {"flask", "werkzeug"} & _imports(p)
    ]
    assert outside == []


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from api.app import create_app\nimport flask\n")
    assert {"api", "flask"} <= _imports(bad)
