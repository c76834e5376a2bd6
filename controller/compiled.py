"""Use the mypyc-compiled build of the hot modules when it matches the sources (issue 15).

`python -m controller.build_compiled` compiles a fixed set of modules (the codecs and the
roles, `build_compiled.compiled_sources`) into `.build/compiled/` at the checkout's root,
never next to the sources, and writes `manifest.json` there: the sha256 of every compiled
source and of every source of this package they import (the build read them), the Python
version and ABI, the mypyc version.

At `import controller` (`controller/__init__.py` calls `activate()`) the manifest is
checked against the files on disk. Only when everything matches is a meta-path finder
installed that maps the compiled modules' names to their extension files; otherwise the
process runs pure Python, and a stale build says so in ONE warning line naming the
stale module(s). It is all or nothing: compiled modules call each other natively, so a
pure copy of one of them next to compiled callers would not be what runs.
`MIPVPN_PURE=1` forces pure Python. `STATUS` says what this process runs (the CLI logs
it, `mipvpn --version` prints it, benchmark JSON records it).

Standard library only, and cheap: it runs in every process that imports `controller`.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

log = logging.getLogger("mipvpn.compiled")

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / ".build" / "compiled"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
PURE_ENV = "MIPVPN_PURE"


@dataclass
class Status:
    """What this process runs: `mode` "compiled" or "pure", and why."""

    mode: str = "pure"
    reason: str = "not checked"
    modules: list[str] = field(default_factory=list)
    mypyc: str | None = None
    build_dir: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "reason": self.reason,
            "modules": len(self.modules),
            "mypyc": self.mypyc,
            "build_dir": self.build_dir,
        }

    def describe(self) -> str:
        if self.mode == "compiled":
            return f"compiled ({len(self.modules)} modules, mypyc {self.mypyc})"
        return f"pure Python ({self.reason})"


STATUS = Status()


def python_tag() -> str:
    """The interpreter a build is valid for: version, implementation and ABI tag."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return f"{sys.implementation.cache_tag} {sys.version.split()[0]} {suffix}"


def installed_mypyc() -> str | None:
    try:
        from mypy.version import __version__
    except ImportError:
        return None
    return str(__version__)


def sha256_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass
class Check:
    """The outcome of comparing a manifest with the tree: `ok`, or why not."""

    ok: bool
    reason: str
    stale: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def check_build(root: Path = ROOT, build_dir: Path = BUILD_DIR,
                mypyc_version: str | None = None) -> Check:
    """Compare `build_dir`'s manifest with the sources under `root` (no import, no build).

    Stale means: a compiled module's source or a source it depends on differs from the
    hash the build recorded (or is gone), an extension file is missing, or the Python or
    mypyc version differs. The mypyc version is the installed one unless given.
    """
    mpath = build_dir / MANIFEST
    if not mpath.is_file():
        return Check(False, "no compiled build")
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError) as exc:
        return Check(False, f"unreadable manifest {mpath}: {exc}")
    if manifest.get("format") != MANIFEST_FORMAT:
        return Check(False, "manifest of another format", manifest=manifest)
    if manifest.get("python") != python_tag():
        return Check(False, f"built for {manifest.get('python')}, running {python_tag()}",
                     manifest=manifest)
    mypyc = installed_mypyc() if mypyc_version is None else mypyc_version
    if manifest.get("mypyc") != mypyc:
        return Check(False, f"built with mypyc {manifest.get('mypyc')}, installed {mypyc}",
                     manifest=manifest)
    modules: dict[str, dict[str, str]] = manifest.get("modules", {})
    inputs: dict[str, str] = manifest.get("inputs", {})
    changed = sorted(rel for rel, digest in inputs.items()
                     if sha256_file(root / rel) != digest)
    stale = sorted(name for name, entry in modules.items()
                   if entry["source"] in changed or not (build_dir / entry["ext"]).is_file())
    # a changed dependency (not compiled itself) makes every module stale that read it;
    # the manifest does not keep the graph, so name the changed files themselves
    deps = [rel for rel in changed
            if rel not in {entry["source"] for entry in modules.values()}]
    for extra in manifest.get("shared", {}).values():
        if not (build_dir / extra).is_file():
            stale.append(extra)
    if stale or deps:
        return Check(False, "stale", stale=stale + [f"{d} (a dependency)" for d in deps],
                     manifest=manifest)
    if not modules:
        return Check(False, "empty build", manifest=manifest)
    return Check(True, "current", manifest=manifest)


class CompiledFinder(importlib.abc.MetaPathFinder):
    """Maps module names to extension files of the compiled build (nothing else)."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        so = self.files.get(fullname)
        if so is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(so))
        return importlib.util.spec_from_file_location(fullname, so, loader=loader)


def finder_for(check: Check, build_dir: Path) -> CompiledFinder:
    manifest = check.manifest
    files = {name: build_dir / entry["ext"] for name, entry in manifest["modules"].items()}
    files.update({name: build_dir / rel for name, rel in manifest.get("shared", {}).items()})
    return CompiledFinder(files)


def activate(root: Path = ROOT, build_dir: Path = BUILD_DIR) -> Status:
    """Decide once per process (at `import controller`) and install the finder if current."""
    global STATUS
    if any(isinstance(f, CompiledFinder) for f in sys.meta_path):
        return STATUS
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        STATUS = Status("pure", f"{PURE_ENV}=1")
        return STATUS
    check = check_build(root, build_dir)
    if not check.ok:
        STATUS = Status("pure", check.reason if not check.stale else
                        "stale compiled build: " + ", ".join(check.stale))
        if check.manifest:
            # a build exists but does not match: say so once; no build at all is normal
            log.warning("compiled build in %s not used, running pure Python: %s%s",
                        build_dir, check.reason,
                        (": " + ", ".join(check.stale) + " changed since the build; "
                         "rebuild: python -m controller.build_compiled") if check.stale else "")
        return STATUS
    sys.meta_path.insert(0, finder_for(check, build_dir))
    STATUS = Status("compiled", "current", sorted(check.manifest["modules"]),
                    check.manifest.get("mypyc"), str(build_dir))
    return STATUS


def loaded_compiled() -> list[str]:
    """Modules of this process that were loaded from the compiled build."""
    return sorted(name for name in STATUS.modules
                  if isinstance(getattr(sys.modules.get(name), "__loader__", None),
                                importlib.machinery.ExtensionFileLoader))
