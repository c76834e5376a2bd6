"""The pure core imports no runtime machinery (DESIGN.md §3, STYLE.md: only the shim
imports os-ken's app framework; the core has no sockets, threads, clock or I/O).
The configuration imports nothing from the core (nor adapters, nor the runtime) and
has no import circle inside ``controller/config/`` (issue 12)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CONTROLLER = Path(__file__).resolve().parents[2] / "controller"
CORE = CONTROLLER / "core"
CONFIG = CONTROLLER / "config"
FORBIDDEN = ("os_ken.base", "os_ken.controller", "socket", "threading", "asyncio", "vici",
             "diameter.node", "sqlite3", "subprocess", "controller.adapters")


def imported_modules(path: Path, package: tuple[str, ...] = ("controller", "core")
                     ) -> set[str]:
    """Every module a file imports, at any depth (functions, TYPE_CHECKING blocks too);
    ``from a import b`` yields both ``a`` and ``a.b``; relative imports are resolved
    against ``package`` (the file's package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def forbidden_in(names: set[str]) -> list[str]:
    return sorted(n for n in names for f in FORBIDDEN if n == f or n.startswith(f + "."))


CORE_FILES = sorted(CORE.rglob("*.py"))


def test_core_files_found() -> None:
    assert {"vpn.py", "actions.py", "flows.py", "foreign_agent.py", "aaa_foreign.py",
            "aaa_home.py", "home_agent.py", "handover.py", "roles.py"} <= {
        p.name for p in CORE_FILES}


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_module_imports_nothing_forbidden(path: Path) -> None:
    assert forbidden_in(imported_modules(path)) == []


def test_checker_catches_each_form(tmp_path: Path) -> None:
    src = tmp_path / "bad.py"
    src.write_text("import socket\nfrom os_ken.controller import ofp_event\n"
                   "from os_ken import base\nimport diameter.node.node as n\n"
                   "def f():\n    import sqlite3\n"
                   "from controller.adapters.store import VpnStore\n"
                   "from .. import adapters\n")
    found = forbidden_in(imported_modules(src))
    assert {"socket", "os_ken.controller", "os_ken.base", "diameter.node.node", "sqlite3",
            "controller.adapters.store", "controller.adapters"} <= set(found)
    src.write_text("import socketserver_like\nfrom diameter.message import Message\n"
                   "import os_ken.lib.packet\n")
    assert forbidden_in(imported_modules(src)) == []


# ------------------------------------------------------------------ configuration

CONFIG_FORBIDDEN = ("controller.core", "controller.adapters", "controller.runtime")
CONFIG_FILES = sorted(CONFIG.rglob("*.py"))


def config_forbidden_in(names: set[str]) -> list[str]:
    return sorted(n for n in names for f in CONFIG_FORBIDDEN
                  if n == f or n.startswith(f + "."))


def test_config_files_found() -> None:
    assert {"__init__.py", "schema.py", "parser.py", "topology.py", "diameter.py",
            "allowance.py", "warnings.py"} <= {p.name for p in CONFIG_FILES}


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_config_imports_nothing_from_core(path: Path) -> None:
    assert config_forbidden_in(imported_modules(path, ("controller", "config"))) == []


def package_imports(root: Path, dotted: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (any depth, TYPE_CHECKING
    too); the package itself (``from pkg import x``) is its ``__init__``."""
    modules = {p.stem for p in root.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in sorted(root.glob("*.py")):
        edges: set[str] = set()
        for name in imported_modules(path, tuple(dotted.split("."))):
            if name != dotted and not name.startswith(dotted + "."):
                continue
            first = name[len(dotted) + 1:].split(".")[0] if name != dotted else ""
            edges.add(first if first in modules else "__init__")
        edges.discard(path.stem)
        graph[path.stem] = edges
    return graph


def import_circle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle of ``graph`` (``[a, b, a]``), or [] when it has none."""
    done: set[str] = set()
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        if node in stack:
            return stack[stack.index(node):] + [node]
        if node in done:
            return []
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt)
            if found:
                return found
        stack.pop()
        done.add(node)
        return []

    for start in sorted(graph):
        found = visit(start)
        if found:
            return found
    return []


def test_no_import_circle_inside_config() -> None:
    graph = package_imports(CONFIG, "controller.config")
    assert import_circle(graph) == []
    assert graph["schema"] == set()          # the leaf


def test_config_checkers_catch_each_form(tmp_path: Path) -> None:
    pkg = tmp_path / "config"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from controller.config.a import A\n")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\n"
                              "if TYPE_CHECKING:\n    from .b import B\n")
    (pkg / "b.py").write_text("def f():\n    from controller.config import a\n")
    (pkg / "c.py").write_text("from controller.core.foreign_agent import X\n"
                              "from ..adapters import store\nimport controller.runtime\n")
    circle = import_circle(package_imports(pkg, "controller.config"))
    assert circle[0] == circle[-1] and {"a", "b"} <= set(circle)
    assert {"controller.adapters", "controller.adapters.store", "controller.core.foreign_agent",
            "controller.runtime"} <= set(
        config_forbidden_in(imported_modules(pkg / "c.py", ("controller", "config"))))
    (pkg / "b.py").write_text("from controller.config.c import C\nimport controller.configure\n")
    assert import_circle(package_imports(pkg, "controller.config")) == []
    (pkg / "c.py").write_text("from controller.config.schema import X\nimport controller.corex\n")
    assert config_forbidden_in(imported_modules(pkg / "c.py", ("controller", "config"))) == []
