"""mininet_scripts.experiment (no root): the experiment file is checked with the key
named, the plan (trace, probed MNs) repeats, a recorded trace replays to the same
moves, the process cost counts our children, the report is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from controller.cli import main
from controller.mobility import moves_of
from mininet_scripts.experiment import (ExperimentError, load_experiment, plan,
                                        process_usage)
from mininet_scripts.experiment_report import distribution, write_report

ROOT = Path(__file__).resolve().parents[3]
CI = ROOT / "experiments" / "ci-small.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "e.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, where", [
    ("name: x\ntopology: topology/grid-2x2.yaml\n", "e.yaml: duration: missing"),
    ("name: x\ntopology: t\nduration: 10\nmobility: {model: random_walk}\ncolour: 1\n",
     "e.yaml: colour: unknown key"),
    ("name: x\ntopology: t\nduration: 0\nmobility: {model: random_walk}\n",
     "e.yaml: duration: 0 is not seconds"),
    ("name: x\ntopology: t\nduration: 10\n", "e.yaml: mobility: give exactly one"),
    ("name: x\ntopology: t\nduration: 10\nmobility: {model: random_walk}\ntrace: t.csv\n",
     "e.yaml: mobility: give exactly one"),
    ("name: x\ntopology: t\nduration: 10\nmobility: {model: fly}\n",
     "e.yaml: mobility.model: 'fly' is not one of"),
    ("name: x\ntopology: t\nduration: 10\nmobility: {model: random_walk}\n"
     "probes: {sample: -1}\n", "e.yaml: probes.sample: -1 is not an integer"),
    ("name: x\ntopology: t\nduration: 10\nmobility: {model: random_walk}\n"
     "move_timeout: 0\n", "e.yaml: move_timeout: 0 is not seconds"),
    ("[1, 2]\n", "e.yaml: an experiment is a mapping"),
])
def test_bad_experiment_named(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ExperimentError) as err:
        load_experiment(write(tmp_path, text))
    assert str(err.value).startswith(str(tmp_path / where))


def test_plan_repeats_and_probes_a_sample() -> None:
    spec = load_experiment(CI)
    graph, start, trace, sample = plan(spec)
    again = plan(load_experiment(CI))
    assert (trace, sample) == (again[2], again[3])
    assert graph.number_of_nodes() == 4 and len(start) == 10 and len(sample) == 2
    assert moves_of(trace) and all(s.t < 30 for s in trace)
    shorter = plan(spec, duration=10)[2]
    assert shorter == [s for s in trace if s.t < 10]


def test_topology_without_generate_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\ntopology: topology/default.yaml\nduration: 10\n"
                           "mobility: {model: random_walk}\n")
    with pytest.raises(ExperimentError, match="has no generate spec"):
        plan(load_experiment(path))


def test_record_then_replay_same_moves(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    for fmt in ("csv", "json"):
        rec = tmp_path / f"trace.{fmt}"
        assert main(["experiment", str(CI), "--dry-run", "--record-trace", str(rec)]) == 0
        replayed = plan(load_experiment(CI), replay=str(rec))[2]
        assert replayed == plan(load_experiment(CI))[2]
        assert main(["experiment", str(CI), "--dry-run", "--replay-trace", str(rec)]) == 0
    out = capsys.readouterr().out
    assert "10 MNs over 4 cells" in out


def test_replayed_trace_checked_against_the_topology(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("t,mn,cell\n3,mn1,acc9\n")
    assert main(["experiment", str(CI), "--dry-run", "--replay-trace", str(bad)]) == 2
    assert f"{bad}: step 0 (3, mn1, acc9): no cell 'acc9'" in capsys.readouterr().err


def test_process_usage_counts_children() -> None:
    child = subprocess.Popen([sys.executable, "-c",
                              "import time; print('up', flush=True); time.sleep(30)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "up\n"  # loaded
        usage = process_usage(0, [child.pid])
        assert usage["processes"] == 1 and usage["rss_kib"] > 1000
        assert usage["by_kind"]["other"]["processes"] == 1
    finally:
        child.kill()
        child.wait()


def test_distribution() -> None:
    assert distribution([]) == {"n": 0, "p50": None, "p90": None, "p99": None, "max": None}
    d = distribution([float(x) for x in range(1, 101)])
    assert (d["n"], d["p50"], d["p90"], d["max"]) == (100, 51.0, 91.0, 100.0)


def synthetic_result() -> dict[str, Any]:
    moves = [{"mn": "mn1", "t": 1.0 + i, "from": "fa1", "to": "fa2", "kind": "intra-domain",
              "state": "completed", "latency_ms": 60.0 + i,
              "gap_ms": {"mn_to_cn": 70.0 + i, "cn_to_mn": 80.0},
              "lost": {"mn_to_cn": i, "cn_to_mn": 2}} for i in range(5)]
    series = [{"t": float(t), "processes": 50, "rss_mib": 700.0, "cpu_percent": 50.0,
               "loadavg_1m": 2.0, "tunnels": {"up": 10}, "bindings": 10, "sas_total": 20}
              for t in range(0, 30, 3)]
    return {"experiment": "syn", "topology": "grid", "mobility": {"model": "random_walk"},
            "ok": True, "failures": [], "moves": moves,
            "registrations": [{"t": 1.0, "ms": 40.0, "kind": "intra-domain"}],
            "signalling_load": {"fa:fa1": {"events_per_s": 0.5}},
            "rrq_per_s_per_fa": {"fa1": 0.2, "fa2": 0.3}, "series": series,
            "summary": {"mns": 10, "cells": 4, "duration_s": 30, "moves": 5, "completed": 5,
                        "failed": 0, "by_kind": {}, "gap_ms": {}, "lost": {},
                        "move_latency_ms": {}, "controller_ms": {}, "bring_up_s": 2,
                        "all_registered_s": 1, "cost": {}}}


def test_report_written(tmp_path: Path) -> None:
    paths = write_report(synthetic_result(), tmp_path)
    names = {p.name for p in paths}
    assert {"report.json", "report.html", "gap_cdf.png", "loss_cdf.png", "tunnels.png",
            "load.png", "cost.png", "registration_latency.png"} <= names
    page = (tmp_path / "report.html").read_text()
    assert "OK" in page and 'src="gap_cdf.png"' in page
    assert all(p.stat().st_size > 1000 for p in paths if p.suffix == ".png")
