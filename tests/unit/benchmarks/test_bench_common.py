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


def test_every_result_says_how_busy_the_machine_was_during_the_run(monkeypatch) -> None:
    """The load average lags and smooths; the seamless test's stalls (docs/decisions.md
    2026-12-06, "the seamless test's probes at 500 pkt/s") came with both cores 100 %
    busy.  Every result carries the machine's CPU busy share between ``machine()`` (the
    start) and ``provenance`` (the end), from /proc/stat."""
    import bench.common as common

    # cpu  user nice system idle iowait irq softirq steal
    stats = iter(["cpu  100 0 50 800 50 0 0 0\n", "cpu  400 0 150 850 50 0 0 0\n"])
    monkeypatch.setattr(common, "_proc_stat", lambda: next(stats))
    start = common.machine()
    res = common.provenance("x", {"machine": start})
    # 300 user + 100 system busy of 450 jiffies
    assert res["cpu_busy_pct"] == round(100 * 400 / 450, 1)
    assert "cpu_jiffies" not in res["machine"]


def test_no_proc_stat_no_busy_share(monkeypatch) -> None:
    import bench.common as common

    def missing() -> str:
        raise OSError("no /proc")

    monkeypatch.setattr(common, "_proc_stat", missing)
    res = common.provenance("x", {"machine": common.machine()})
    assert res["cpu_busy_pct"] is None
