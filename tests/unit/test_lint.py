"""The linters are part of the unit suite (issue 12): ruff over the code and mypy --strict
over ``controller.core``, ``controller.model`` and ``controller.proto``, both with the
project's configuration in pyproject.toml.  A missing tool is a failure, not a skip:
``./run tests`` installs them with the ``[test]`` extra."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
REEXPORTING_PACKAGES = ("controller/proto/diameter/__init__.py",
                        "controller/proto/mip/__init__.py")


def _run(tool: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m <tool>`` from this interpreter's environment (the project venv)."""
    proc = subprocess.run([sys.executable, "-m", tool, *args], cwd=cwd, text=True,
                          capture_output=True, timeout=600)
    assert f"No module named {tool}" not in proc.stderr, (
        f"{tool} is not installed in {sys.prefix}: pip install -e '.[test]'")
    return proc


def _ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # --config: the project's settings only, whatever a user-level ruff config says
    return _run("ruff", "check", "--config", str(PYPROJECT), "--no-cache",
                "--output-format", "concise", *args, cwd=cwd)


def _mypy(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return _run("mypy", "--config-file", str(PYPROJECT), "--cache-dir", str(cache),
                "--no-color-output", "--no-error-summary", *args)


def test_ruff_passes() -> None:
    proc = _ruff(".")
    assert proc.returncode == 0, f"ruff check found problems:\n{proc.stdout}{proc.stderr}"


def test_mypy_strict_passes_on_core_model_proto(tmp_path: Path) -> None:
    # no targets on the command line: the packages come from [tool.mypy] files
    proc = _mypy(cache=ROOT / ".mypy_cache")
    assert proc.returncode == 0, f"mypy --strict found problems:\n{proc.stdout}{proc.stderr}"


def test_the_configured_linters_do_report(tmp_path: Path) -> None:
    """The two runs above can fail: the project's settings catch an unused import and an
    unannotated function (strict)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\n\ndef f(x):\n    return x\n")
    ruff = _ruff(str(bad), cwd=tmp_path)
    assert ruff.returncode != 0 and "F401" in ruff.stdout, ruff.stdout + ruff.stderr
    mypy = _mypy(str(bad), cache=tmp_path / "cache")
    assert mypy.returncode != 0 and "no-untyped-def" in mypy.stdout, mypy.stdout + mypy.stderr


#: core modules whose types are checked whole: no ``type: ignore`` silences a finding there
#: (issue 12: real types, e.g. the role protocols of core/role.py, instead)
WITHOUT_TYPE_IGNORE = ("controller/core/persist.py", "controller/core/dispatch.py",
                       "controller/core/role.py")


def type_ignores(text: str) -> list[int]:
    """Line numbers of ``# type: ignore`` comments in ``text``."""
    import io
    import tokenize
    return [tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(text).readline)
            if tok.type == tokenize.COMMENT
            and re.match(r"#\s*type:\s*ignore\b", tok.string)]


@pytest.mark.parametrize("rel", WITHOUT_TYPE_IGNORE)
def test_no_type_ignore_in_the_fully_typed_core_modules(rel: str) -> None:
    assert type_ignores((ROOT / rel).read_text(encoding="utf-8")) == []


def test_type_ignore_finder() -> None:
    text = ('x = f()  # type: ignore[misc]\ny = "# type: ignore"\n'
            '#type:ignore\nz = 1  # a type: ignore in words\n')
    assert type_ignores(text) == [1, 3]


def _imported_names(tree: ast.Module) -> list[str]:
    return sorted(alias.asname or alias.name for node in tree.body
                  if isinstance(node, ast.ImportFrom) and node.module != "__future__"
                  and node.module not in ("controller.proto.mip",)  # submodules
                  for alias in node.names)


def _all_of(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if (isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)):
            value = ast.literal_eval(node.value)
            return list(value)
    return None


def test_reexporting_packages_list_every_import_in_a_sorted_all() -> None:
    """mypy --strict disables implicit re-export: ``dia.X`` / ``mip.X`` type-check only
    for names in ``__all__``.  It holds exactly what the ``__init__`` imports, sorted."""
    for rel in REEXPORTING_PACKAGES:
        tree = ast.parse((ROOT / rel).read_text())
        exported = _all_of(tree)
        assert exported is not None, f"{rel} has no __all__"
        assert exported == sorted(exported), f"{rel}: __all__ is not sorted"
        assert exported == _imported_names(tree), (
            f"{rel}: __all__ differs from the imports: "
            f"missing {sorted(set(_imported_names(tree)) - set(exported))}, "
            f"extra {sorted(set(exported) - set(_imported_names(tree)))}")
