"""Build the mypyc-compiled copy of the hot modules into `.build/compiled/` (issue 15).

    python -m controller.build_compiled            # build if missing or stale (cheap when current)
    python -m controller.build_compiled --force    # rebuild
    python -m controller.build_compiled --check    # exit 0 when current, 1 otherwise
    python -m controller.build_compiled --clean    # remove the build (then: pure Python)

The modules: the Diameter codec and messages, the MIPv4 codec, `controller/core` and the
VPN model (`controller/model`),
less what mypyc cannot keep as it behaves in Python (`compiled_sources`). The extension
files go to `.build/compiled/` at the checkout's root, never next to the sources, with a
manifest that `controller.compiled` checks at every import of `controller` (see there).
Needs mypy (the `[test]` extra), gcc and the Python headers; `./run` calls this and treats
a failure as "pure Python", never as a failed install.
"""

from __future__ import annotations

import argparse
import ast
import importlib.machinery
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from controller import compiled

GROUP = "mipvpn_compiled"

# What stays pure, and why (mypyc 2.4): package __init__ files (the MIPv4 one's PEP 562
# __getattr__ segfaulted at import when compiled; the others are re-exports),
# core/role.py (RoleKey, a str subclass), persist.py, expiry.py, visitors.py (builtin
# dict subclasses / multiple inheritance).  core/actions.py is compiled since issue 15's
# tenth steps: its classes allow interpreted subclasses (``mypyc_attr``), which the
# runtime and tests may define.
EXCLUDED = {
    "controller/core/role.py",
    "controller/core/persist.py",
    "controller/core/expiry.py",
    "controller/core/visitors.py",
}
PACKAGES = ("controller/proto/diameter", "controller/proto/mip", "controller/core",
            "controller/model")
SINGLE = ("controller/proto/mip_keys.py", "controller/proto/mip_rrq.py",
          "controller/proto/nai.py")


def compiled_sources(root: Path = compiled.ROOT) -> list[str]:
    """The compiled set, as paths relative to `root`, sorted."""
    out = [rel for rel in SINGLE if (root / rel).is_file()]
    for pkg in PACKAGES:
        for path in sorted((root / pkg).glob("*.py")):
            rel = path.relative_to(root).as_posix()
            if path.name != "__init__.py" and rel not in EXCLUDED:
                out.append(rel)
    return sorted(out)


def module_name(rel: str) -> str:
    return rel[:-3].replace("/", ".").removesuffix(".__init__")


def _module_file(root: Path, name: str) -> str | None:
    base = root / name.replace(".", "/")
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand.relative_to(root).as_posix()
    return None


def dependency_closure(root: Path, sources: list[str]) -> list[str]:
    """The sources of package `controller` that `sources` import, transitively (with them).

    The build analyses these (types, Final constants mypyc may inline), so an edit to
    any of them makes the build stale. Imports are read statically (ast).
    """
    seen: set[str] = set()
    todo = list(sources)
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        pkg_parts = module_name(rel).split(".")
        if not rel.endswith("__init__.py"):
            pkg_parts = pkg_parts[:-1]
        tree = ast.parse((root / rel).read_text(), rel)
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg_parts[: len(pkg_parts) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                names = [mod] + [f"{mod}.{a.name}" for a in node.names]
            for name in names:
                if name.split(".")[0] != "controller":
                    continue
                found = _module_file(root, name)
                if found:
                    todo.append(found)
    return sorted(seen)


def hash_inputs(root: Path, files: list[str]) -> dict[str, str]:
    out = {}
    for rel in files:
        digest = compiled.sha256_file(root / rel)
        if digest is None:
            raise SystemExit(f"build_compiled: cannot read {rel}")
        out[rel] = digest
    return out


def build(root: Path = compiled.ROOT, build_dir: Path = compiled.BUILD_DIR,
          quiet: bool = False) -> dict[str, Any]:
    """Compile into a fresh directory, then swap it in; returns the manifest."""
    from mypy.version import __version__ as mypyc_version
    from mypyc.build import mypycify
    from setuptools import setup  # type: ignore[import-untyped]

    sources = compiled_sources(root)
    inputs = dependency_closure(root, sources)
    before = hash_inputs(root, inputs)
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="compiled-", dir=build_dir.parent))
    out = work / "out"
    t0 = time.monotonic()
    cwd = os.getcwd()
    os.chdir(root)
    try:
        # mypy reads the project's [tool.mypy] (strict) from pyproject.toml; its
        # warn_unused_configs note would fail the build, hence the flag
        flags = ["--no-warn-unused-configs",
                 "--cache-dir", str(build_dir.parent / "mypy-cache")]
        exts = mypycify(flags + sources, target_dir=str(work / "c"), group_name=GROUP,
                        opt_level="3")
        args = ["build_ext", "--build-lib", str(out), "--build-temp", str(work / "o")]
        if quiet:
            args.insert(0, "--quiet")
        setup(name="mipvpn-compiled", ext_modules=exts, script_args=args)
    finally:
        os.chdir(cwd)
    if hash_inputs(root, inputs) != before:
        shutil.rmtree(work, ignore_errors=True)
        raise SystemExit("build_compiled: sources changed during the build; run it again")
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    modules = {}
    for rel in sources:
        name = module_name(rel)
        ext = name.replace(".", "/") + suffix
        if not (out / ext).is_file():
            raise SystemExit(f"build_compiled: no extension built for {name}")
        modules[name] = {"source": rel, "ext": ext}
    shared = {}
    for lib in out.glob(f"*__mypyc{suffix}"):
        shared[lib.name[: -len(suffix)]] = lib.name
    manifest = {
        "format": compiled.MANIFEST_FORMAT,
        "python": compiled.python_tag(),
        "mypyc": str(mypyc_version),
        "built_s": round(time.monotonic() - t0, 1),
        "modules": modules,
        "shared": shared,
        "inputs": before,
    }
    (out / compiled.MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    old = build_dir.parent / (build_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if build_dir.exists():
        build_dir.rename(old)
    out.rename(build_dir)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m controller.build_compiled",
                                 description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--force", action="store_true", help="rebuild even when current")
    ap.add_argument("--check", action="store_true",
                    help="only compare the build with the sources: exit 0 when current")
    ap.add_argument("--clean", action="store_true", help="remove the build")
    ap.add_argument("--quiet", action="store_true", help="less of the compiler's output")
    args = ap.parse_args(argv)
    if args.clean:
        shutil.rmtree(compiled.BUILD_DIR, ignore_errors=True)
        print(f"removed {compiled.BUILD_DIR}")
        return 0
    check = compiled.check_build()
    if check.ok:
        built = sorted(e["source"] for e in check.manifest["modules"].values())
        if built != compiled_sources():     # this file's set changed, or a module came
            check = compiled.Check(False, "the set of compiled modules changed",
                                   manifest=check.manifest)
    if args.check or (check.ok and not args.force):
        detail = ", ".join(check.stale) if check.stale else ""
        print(f"compiled build: {check.reason}" + (f" ({detail})" if detail else ""))
        return 0 if check.ok else 1
    print(f"compiled build: {check.reason}; building {len(compiled_sources())} modules"
          f" into {compiled.BUILD_DIR}", file=sys.stderr)
    t0 = time.monotonic()
    manifest = build(quiet=args.quiet)
    print(f"compiled build: {len(manifest['modules'])} modules"
          f" in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
