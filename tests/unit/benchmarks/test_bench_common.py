"""The benchmarks' shared ``main()`` preamble (``bench.common.bench_parser`` and
``parse_bench_args``; issue 12)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bench.common import bench_parser, parse_bench_args

BENCH = Path(__file__).resolve().parents[3] / "bench"
# fuzz_codecs keeps its own short parser (no results file, no plot); __init__ adds the
# `mipvpn bench` sub-command to the CLI's parser
OWN_PARSER = {"fuzz_codecs.py", "__init__.py", "common.py",
              # parts of bench.registration (its main is in registration.py)
              "registration_server.py", "registration_load.py", "registration_report.py"}


def test_parser_and_common_options() -> None:
    ap = bench_parser("scale", "The doc.")
    assert ap.prog == "python -m bench.scale" and ap.description == "The doc."
    args = parse_bench_args(ap, ["--json", "out.json"])
    assert args.json == "out.json" and args.no_plot is False
    args = parse_bench_args(bench_parser("persistence", None), [], plot=False)
    assert args.json is None and not hasattr(args, "no_plot")


@pytest.mark.parametrize("path", sorted(p for p in BENCH.glob("*.py")
                                        if p.name not in OWN_PARSER), ids=lambda p: p.name)
def test_each_benchmark_uses_the_shared_preamble(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute)
           and n.attr == "ArgumentParser"]
    assert own == [], f"{path.name} builds its own ArgumentParser; use bench_parser"
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)
              and isinstance(n.func, ast.Name)}
    assert "bench_parser" in called
