"""The pure core imports no runtime machinery (DESIGN.md §3, STYLE.md: only the shim
imports os-ken's app framework; the core has no sockets, threads, clock or I/O)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "controller" / "core"
FORBIDDEN = ("os_ken.base", "os_ken.controller", "socket", "threading", "asyncio", "vici",
             "diameter.node", "sqlite3", "subprocess", "controller.adapters")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (functions, TYPE_CHECKING blocks too);
    ``from a import b`` yields both ``a`` and ``a.b``; relative imports are resolved."""
    package = ["controller", "core"]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
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
