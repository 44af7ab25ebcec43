"""The package's imports go one way: no module reaches, however indirectly, a module that
reaches it back. Imports inside functions count (they hide cycles, not only start-up
cost); those under ``if TYPE_CHECKING:`` do not (they never run)."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

from tests.conftest import ROOT

PACKAGE = ROOT / "runs_manager"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def type_checking_nodes(tree: ast.AST) -> Set[int]:
    skipped: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return skipped


def imports() -> Dict[str, Set[str]]:
    """Each module of the package and the modules of the package it imports."""
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    edges: Dict[str, Set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(), str(path))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        skipped = type_checking_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            targets: List[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base for alias in node.names]
            for target in targets:
                while target not in paths and "." in target:
                    target = target.rpartition(".")[0]
                if target in paths and target != name:
                    edges[name].add(target)
    return edges


def cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    order: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    found: List[List[str]] = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for target in edges[node]:
            if target not in order:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], order[target])
        if low[node] == order[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in order:
            visit(node)
    return found


def test_the_package_has_no_import_cycle() -> None:
    edges = imports()
    assert len(edges) > 40 and "runs_manager.launchers.base" in edges["runs_manager.launchers.tmux"]
    found = cycles(edges)
    described = ["; ".join(f"{m} -> {', '.join(sorted(t for t in edges[m] if t in c))}" for m in c) for c in found]
    assert not found, "import cycles:\n" + "\n".join(described)


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
