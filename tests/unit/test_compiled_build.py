"""The compiled build of the hot modules (issue 15): used only when its manifest matches
the sources, never shadowing them, and what runs is visible (controller/compiled.py,
controller/build_compiled.py)."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller import build_compiled, compiled

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
REPO = Path(__file__).resolve().parents[2]


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    """A source tree with two modules (``pkg.a`` compiled, importing ``pkg.dep``) and a
    build of it whose manifest matches."""
    root, build = tmp_path / "src", tmp_path / "build"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("from pkg import dep\n")
    (root / "pkg" / "dep.py").write_text("X = 1\n")
    (build / "pkg").mkdir(parents=True)
    (build / "pkg" / f"a{SUFFIX}").write_bytes(b"not really an extension")
    (build / f"g__mypyc{SUFFIX}").write_bytes(b"nor this")
    inputs = {rel: compiled.sha256_file(root / rel) for rel in ("pkg/a.py", "pkg/dep.py")}
    (build / compiled.MANIFEST).write_text(json.dumps({
        "format": compiled.MANIFEST_FORMAT, "python": compiled.python_tag(), "mypyc": "9.9",
        "modules": {"pkg.a": {"source": "pkg/a.py", "ext": f"pkg/a{SUFFIX}"}},
        "shared": {"g__mypyc": f"g__mypyc{SUFFIX}"}, "inputs": inputs}))
    return root, build


def test_a_matching_manifest_is_current_and_maps_names_to_the_build_dir(tmp_path: Path) -> None:
    root, build = _tree(tmp_path)
    check = compiled.check_build(root, build, mypyc_version="9.9")
    assert check.ok, check
    finder = compiled.finder_for(check, build)
    spec = finder.find_spec("pkg.a", None)
    assert spec is not None and spec.origin == str(build / "pkg" / f"a{SUFFIX}")
    assert isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)
    assert finder.find_spec("g__mypyc", None) is not None
    assert finder.find_spec("pkg.dep", None) is None        # not compiled: the source


def test_an_edited_source_makes_the_build_stale_and_names_the_module(tmp_path: Path) -> None:
    root, build = _tree(tmp_path)
    (root / "pkg" / "a.py").write_text("from pkg import dep  # edited\n")
    check = compiled.check_build(root, build, mypyc_version="9.9")
    assert not check.ok and check.stale == ["pkg.a"]


def test_an_edited_dependency_makes_the_build_stale(tmp_path: Path) -> None:
    """A module the compiled one imports was analysed by the build (types, constants
    mypyc may inline): editing it is stale too."""
    root, build = _tree(tmp_path)
    (root / "pkg" / "dep.py").write_text("X = 2\n")
    check = compiled.check_build(root, build, mypyc_version="9.9")
    assert not check.ok and check.stale == ["pkg/dep.py (a dependency)"]


def test_other_interpreter_mypyc_or_missing_file_is_not_current(tmp_path: Path) -> None:
    root, build = _tree(tmp_path)
    assert not compiled.check_build(root, build, mypyc_version="9.8").ok
    manifest = json.loads((build / compiled.MANIFEST).read_text())
    (build / compiled.MANIFEST).write_text(json.dumps({**manifest, "python": "cpython-39"}))
    assert not compiled.check_build(root, build, mypyc_version="9.9").ok
    (build / compiled.MANIFEST).write_text(json.dumps(manifest))
    (build / f"g__mypyc{SUFFIX}").unlink()
    assert not compiled.check_build(root, build, mypyc_version="9.9").ok
    assert compiled.check_build(root, tmp_path / "none").reason == "no compiled build"


def _activate_in_subprocess(root: Path, build: Path, env: dict[str, str]) -> tuple[str, str]:
    """activate() on (root, build) in a fresh interpreter: its STATUS line and stderr.

    The import of ``controller`` decides for the real tree first (pure: MIPVPN_PURE=1,
    nothing installed); then MIPVPN_PURE takes MIPVPN_PURE_AFTER's value and activate()
    runs on the fake tree."""
    code = "\n".join([
        "import os, pathlib",
        "from controller import compiled as c",
        "c.installed_mypyc = lambda: '9.9'",
        "os.environ['MIPVPN_PURE'] = os.environ.get('MIPVPN_PURE_AFTER', '')",
        f"s = c.activate(pathlib.Path({str(root)!r}), pathlib.Path({str(build)!r}))",
        "print(s.mode, '|', s.reason)"])
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                         env={**os.environ, "MIPVPN_PURE": "1", **env},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip(), out.stderr


def test_a_stale_build_runs_pure_with_one_warning_naming_the_module(tmp_path: Path) -> None:
    root, build = _tree(tmp_path)
    (root / "pkg" / "a.py").write_text("# edited\n")
    status, err = _activate_in_subprocess(root, build, {"MIPVPN_PURE_AFTER": ""})
    assert status.startswith("pure |") and "pkg.a" in status
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "pkg.a" in lines[0] and "pure Python" in lines[0], err


def test_mipvpn_pure_forces_pure_python_without_looking(tmp_path: Path) -> None:
    root, build = _tree(tmp_path)
    status, err = _activate_in_subprocess(root, build, {"MIPVPN_PURE_AFTER": "1"})
    assert status == "pure | MIPVPN_PURE=1" and err == ""


def test_a_current_build_installs_the_finder(tmp_path: Path) -> None:
    root, build = _tree(tmp_path)
    status, err = _activate_in_subprocess(root, build, {"MIPVPN_PURE_AFTER": ""})
    assert status == "compiled | current" and err == ""


def test_no_extension_file_lives_next_to_the_sources() -> None:
    """The build goes to .build/compiled/, so an edited source is never shadowed by a
    stale .so next to it."""
    found = [str(p) for p in (REPO / "controller").rglob("*.so")]
    found += [str(p) for p in (REPO / "controller").rglob("*.pyd")]
    assert found == []


def test_what_runs_is_what_the_status_says() -> None:
    """In a compiled process every compiled module came from the build dir; in a pure
    one none did."""
    from controller.proto.diameter import decoding
    if compiled.STATUS.mode == "compiled":
        assert isinstance(decoding.__loader__, importlib.machinery.ExtensionFileLoader)
        assert str(decoding.__file__).startswith(str(compiled.BUILD_DIR))
        assert "controller.proto.diameter.decoding" in compiled.loaded_compiled()
    else:
        assert str(decoding.__file__).endswith("decoding.py")
        assert compiled.loaded_compiled() == []


def test_the_compiled_set_and_its_dependencies() -> None:
    sources = build_compiled.compiled_sources()
    assert "controller/proto/diameter/decoding.py" in sources
    assert "controller/core/home_agent.py" in sources
    assert not set(sources) & build_compiled.EXCLUDED
    assert not [s for s in sources if s.endswith("__init__.py")]
    deps = build_compiled.dependency_closure(REPO, ["controller/proto/diameter/decoding.py"])
    assert "controller/model/vpn.py" in deps          # VpnInfo: decoded here
    assert all(d.startswith("controller/") for d in deps)


def test_version_says_which_build_runs() -> None:
    from controller.cli import version_text
    text = version_text()
    assert text.startswith("mipvpn ") and compiled.STATUS.describe() in text


@pytest.mark.parametrize("value", ["1", "yes"])
def test_pure_env_values(value: str, tmp_path: Path) -> None:
    root, build = _tree(tmp_path)
    status, _ = _activate_in_subprocess(root, build, {"MIPVPN_PURE_AFTER": value})
    assert status.startswith("pure | MIPVPN_PURE=1")


def test_a_changed_module_set_is_rebuilt(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A build whose files all match but whose module set is not build_compiled's
    (a module added to a compiled package, or the set edited) is not current."""
    manifest = {"modules": {"pkg.a": {"source": "pkg/a.py", "ext": "x"}}}
    monkeypatch.setattr(compiled, "check_build",
                        lambda: compiled.Check(True, "current", manifest=manifest))
    monkeypatch.setattr(build_compiled, "compiled_sources", lambda: ["pkg/a.py"])
    assert build_compiled.main(["--check"]) == 0
    monkeypatch.setattr(build_compiled, "compiled_sources", lambda: ["pkg/a.py", "pkg/b.py"])
    assert build_compiled.main(["--check"]) == 1
    assert "set of compiled modules changed" in capsys.readouterr().out
