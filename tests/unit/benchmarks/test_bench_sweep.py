"""bench.sweep without root: the specs it writes are a valid generated topology and
experiment (checked by the runner's own loader and planner), each run's row from its
report, and which run is the breaking point."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import pytest

from bench import sweep
from controller.config import load_topology
from mininet_scripts.experiment import load_experiment, plan


def _args(**kw: object) -> Namespace:
    base = {"cells": "4x4", "domains": 2, "duration": 60.0, "dwell": (30.0, 90.0),
            "probes": 2, "seed": 1}
    return Namespace(**{**base, **kw})


@pytest.mark.parametrize("mns", [1, 50, 300])
def test_the_specs_are_what_the_experiment_runner_accepts(tmp_path: Path, mns: int) -> None:
    spec_path = sweep.write_specs(tmp_path, mns, _args())
    spec = load_experiment(spec_path)
    graph, start, trace, sample = plan(spec)
    topo = load_topology(spec["topology"])
    assert len(topo.mobile_nodes) == mns and graph.number_of_nodes() == 16
    assert set(start) == set(topo.mobile_nodes) and len(sample) == min(2, mns)
    assert spec["duration"] == 60.0 and spec["mobility"]["dwell"] == [30.0, 90.0]
    assert all(0 <= step.t <= 60.0 for step in trace)


def _report(**summary: object) -> dict[str, object]:
    base = {"mns": 100, "cells": 16, "duration_s": 120.0, "moves": 240, "completed": 240,
            "failed": 0, "bindings_at_end": 100, "move_latency_ms": {"p50": 200.0,
                                                                     "p99": 900.0},
            "controller_ms": {"p50": 120.0, "p99": 600.0},
            "cost": {"processes": 250, "rss_mib_peak": 4400.0, "cpu_percent_mean": 140.0,
                     "cpu_percent_max": 170.0, "cpu_percent_by_kind": {"charon": 30.0}}}
    return {"ok": True, "failures": [], "summary": {**base, **summary}}


def test_rows_and_verdicts() -> None:
    held = sweep.row_of(100, _report(), 0, 300.0)
    assert held["moves_per_s"] == 2.0 and held["cpu_percent_mean"] == 140.0
    assert sweep.verdict(held) is None
    failed = sweep.row_of(200, _report(failed=3, completed=237), 1, 300.0)
    assert sweep.verdict(failed) == "3 of 240 moves failed"
    unbound = sweep.row_of(100, _report(bindings_at_end=97), 1, 300.0)
    assert sweep.verdict(unbound) == "3 MNs without a binding at the end"
    not_ok = sweep.row_of(100, {**_report(), "ok": False, "failures": ["mn7: stuck"]}, 1, 1.0)
    assert sweep.verdict(not_ok) == "the runner says not OK: mn7: stuck"
    none = sweep.row_of(300, None, 1, 200.0, "timed out waiting for mn250's first "
                                             "registration")
    assert sweep.verdict(none) == "no report (exit 1)" and "mn250" in none["error"]


def test_the_breaking_point_is_the_first_run_that_broke() -> None:
    rows = [{"mns": 50, "broke": None}, {"mns": 100, "broke": None},
            {"mns": 200, "broke": "3 of 500 moves failed"}]
    assert sweep.breaking_point(rows) == {"mns": 200, "why": "3 of 500 moves failed"}
    assert sweep.breaking_point(rows[:2]) is None
    text = sweep.table([sweep.row_of(100, _report(), 0, 300.0) | {"broke": None}])
    assert "held" in text and "200/900" in text


def test_memory_needed_grows_with_the_mn_clients() -> None:
    assert sweep.memory_needed(200) - sweep.memory_needed(100) == 100 * sweep.MN_CLIENT_MIB
    assert sweep.memory_available() >= 0


def test_the_result_names_the_module_that_made_it() -> None:
    args = _args(dwell=(30.0, 90.0))
    res = sweep.result({"cores": 2}, [{"mns": 50, "broke": None}], None, args, [50],
                       ["--mns", "50", "--duration", "60"])
    assert res["command"] == "python -m bench.sweep --mns 50 --duration 60"
    assert res["breaking_point"] is None and res["settings"]["dwell_s"] == [30.0, 90.0]
