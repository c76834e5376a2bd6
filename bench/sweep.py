"""Sweep to the breaking point (issue 16): one mobility experiment at a growing number of
mobile nodes, until a run breaks.

    python -m bench.sweep --mns 50,100,200,300 --duration 120 \\
        --lock /tmp/mipvpn-integration.lock --json bench/results/experiment-sweep.json

For each N, in order: a generated topology (``--cells`` grid, ``--domains``, N MNs of one
template, ``--seed``) and an experiment (random walk, ``--dwell`` seconds, ``--duration``,
``--probes`` MNs probed at 100 pkt/s) are written to a private directory, and
``python -m controller.cli experiment SPEC --out DIR`` runs as a child process (under
``flock LOCK`` with ``--lock``: the lock is held per run, so other work can run between
two).  Its ``report.json`` gives the row: moves, completed, failed, bindings at the end,
move latency and controller time percentiles, CPU and memory of the run's processes.

A run **breaks** (:func:`verdict`) when it does not finish with a report (bring-up or the
first registrations timed out, the runner failed), when a move failed or an MN was left
without a binding, or when the runner itself says it is not OK.  The sweep stops at the
first broken run; the result names that N and why (``breaking_point``).  Before each run
the machine's available memory must cover the run (:func:`memory_needed`: a Python
interpreter per MN client, measured 34 MiB, plus the rest); otherwise the sweep stops
there (``stopped_before``) instead of pushing a shared machine into the OOM killer.

Root (Mininet, OVS, strongSwan); runs in a private network namespace (re-executes itself
under ``unshare -n``).  Absolute figures depend on the machine's other load: the JSON
records the load average before and after (``machine``, ``load_after``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import (REPO, bench_parser, command_line, parse_bench_args, print_machine,
                          pyplot, reexec_in_private_netns, save_plot, save_results)

MN_CLIENT_MIB = 34        # RSS of one MN client (docs/benchmarks.md § 8)
BASE_MIB = 1500           # controller, charons, OVS, Mininet shells, probes (§ 8: ~1 GiB)
HEADROOM_MIB = 2048       # left for the machine's other work


def topology_doc(mns: int, cells: str, domains: int, seed: int) -> dict[str, Any]:
    """A generated topology (controller/topogen.py) with ``mns`` mobile nodes."""
    return {"name": f"sweep-{cells}-{mns}",
            "generate": {"cells": cells, "domains": domains, "mns": mns,
                         "cn_gateways": 1, "seed": seed}}


def experiment_doc(topology: Path, mns: int, duration: float, dwell: tuple[float, float],
                   probes: int, seed: int) -> dict[str, Any]:
    """The experiment (docs/experiments.md) over ``topology``: a random walk."""
    return {"name": f"sweep-{mns}", "description": f"bench.sweep: {mns} MNs",
            "topology": str(topology), "duration": duration,
            "mobility": {"model": "random_walk", "seed": seed, "dwell": list(dwell)},
            "probes": {"sample": min(probes, mns), "rate": 100},
            "sample_interval": 5, "move_timeout": 15}


def write_specs(work: Path, mns: int, args: Any) -> Path:
    """Write the topology and experiment of one run into ``work``; the experiment's path."""
    topo = work / f"topology-{mns}.yaml"
    topo.write_text(yaml.safe_dump(topology_doc(mns, args.cells, args.domains, args.seed),
                                   sort_keys=False))
    spec = work / f"experiment-{mns}.yaml"
    spec.write_text(yaml.safe_dump(experiment_doc(topo, mns, args.duration, args.dwell,
                                                  args.probes, args.seed), sort_keys=False))
    return spec


def memory_needed(mns: int) -> int:
    """MiB a run of ``mns`` MNs needs free before it starts (with headroom)."""
    return mns * MN_CLIENT_MIB + BASE_MIB + HEADROOM_MIB


def memory_available() -> int:
    """MemAvailable of /proc/meminfo, MiB (0 when unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def row_of(mns: int, report: dict[str, Any] | None, exit_code: int, wall_s: float,
           tail: str = "") -> dict[str, Any]:
    """One run's figures from its ``report.json`` (None: it wrote none)."""
    row: dict[str, Any] = {"mns": mns, "exit_code": exit_code, "wall_s": round(wall_s, 1)}
    if report is None:
        row["error"] = tail[-600:]
        return row
    s = report.get("summary", {})
    cost = s.get("cost", {})
    row.update({
        "ok": bool(report.get("ok")), "failures": list(report.get("failures", []))[:10],
        "cells": s.get("cells"), "duration_s": s.get("duration_s"),
        "moves": s.get("moves"), "completed": s.get("completed"), "failed": s.get("failed"),
        "moves_per_s": (round(s["moves"] / s["duration_s"], 2)
                        if s.get("moves") is not None and s.get("duration_s") else None),
        "bindings_at_end": s.get("bindings_at_end"),
        "all_registered_s": s.get("all_registered_s"), "bring_up_s": s.get("bring_up_s"),
        "move_latency_ms": s.get("move_latency_ms"), "controller_ms": s.get("controller_ms"),
        "gap_ms": s.get("gap_ms"), "lost": s.get("lost"),
        "processes": cost.get("processes"), "rss_mib_peak": cost.get("rss_mib_peak"),
        "cpu_percent_mean": cost.get("cpu_percent_mean"),
        "cpu_percent_max": cost.get("cpu_percent_max"),
        "cpu_percent_by_kind": cost.get("cpu_percent_by_kind"),
        "loadavg_1m_max": cost.get("loadavg_1m_max")})
    return row


def verdict(row: dict[str, Any]) -> str | None:
    """Why this run broke, or None when it held."""
    if "error" in row or row.get("exit_code") not in (0, 1):
        return f"no report (exit {row.get('exit_code')})"
    if row.get("failed"):
        return f"{row['failed']} of {row['moves']} moves failed"
    if row.get("bindings_at_end") is not None and row["bindings_at_end"] < row["mns"]:
        return f"{row['mns'] - row['bindings_at_end']} MNs without a binding at the end"
    if not row.get("ok"):
        return "the runner says not OK: " + "; ".join(row.get("failures") or ["?"])
    return None


def breaking_point(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first run that broke (``mns`` and ``why``), or None."""
    for row in rows:
        why = row.get("broke")
        if why:
            return {"mns": row["mns"], "why": why}
    return None


def run_one(mns: int, args: Any, work: Path) -> dict[str, Any]:
    spec = write_specs(work, mns, args)
    out = work / f"report-{mns}"
    cmd = [sys.executable, "-m", "controller.cli", "experiment", str(spec), "--out", str(out)]
    if args.lock:
        cmd = ["flock", args.lock, *cmd]
    print(f"--- {mns} MNs: {' '.join(cmd)}", flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          timeout=args.duration + 600 + 2 * mns)
    report_path = out / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    row = row_of(mns, report, proc.returncode, time.monotonic() - t0,
                 proc.stdout[-2000:] + proc.stderr[-2000:])
    row["broke"] = verdict(row)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    from controller.textutil import table as text_table

    def pct(d: Any, k: str) -> str:
        return f"{d[k]:.0f}" if isinstance(d, dict) and d.get(k) is not None else "-"
    return text_table(
        ["MNs", "MOVES/S", "MOVES", "FAILED", "BOUND", "MOVE P50/P99 MS", "CTRL P50/P99 MS",
         "CPU MEAN/MAX %", "RSS MIB", "VERDICT"],
        [[r["mns"], r.get("moves_per_s", "-"), r.get("moves", "-"), r.get("failed", "-"),
          r.get("bindings_at_end", "-"),
          f"{pct(r.get('move_latency_ms'), 'p50')}/{pct(r.get('move_latency_ms'), 'p99')}",
          f"{pct(r.get('controller_ms'), 'p50')}/{pct(r.get('controller_ms'), 'p99')}",
          f"{r.get('cpu_percent_mean', '-')}/{r.get('cpu_percent_max', '-')}",
          r.get("rss_mib_peak", "-"), r.get("broke") or "held"] for r in rows])


def plot(res: dict[str, Any], png: Path) -> None:
    plt = pyplot()
    rows = [r for r in res["runs"] if r.get("move_latency_ms")]
    if plt is None or not rows:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ns = [r["mns"] for r in rows]
    for key, label in (("p50", "move → registered p50"), ("p99", "p99")):
        ax1.plot(ns, [r["move_latency_ms"][key] for r in rows], marker="o", label=label)
    ax1.set_yscale("log")
    ax1.set_xlabel("mobile nodes"), ax1.set_ylabel("ms (log)"), ax1.legend()
    ax1.set_title("move latency")
    ax2.plot(ns, [100.0 * (r.get("failed") or 0) / max(1, r.get("moves") or 0) for r in rows],
             marker="o", label="moves failed %")
    ax2.plot(ns, [(r.get("cpu_percent_by_kind") or {}).get("controller") for r in rows],
             marker="s", label="controller CPU %")
    ax2.plot(ns, [r.get("cpu_percent_mean") for r in rows], marker="^",
             label="all the run's processes, CPU % (of 200)")
    ax2.set_xlabel("mobile nodes"), ax2.set_ylabel("%"), ax2.legend(fontsize=8)
    ax2.set_title(f"failures and CPU ({res['settings']['cells']} cells)")
    save_plot(fig, png)


def result(m: dict[str, Any], rows: list[dict[str, Any]], stopped: dict[str, Any] | None,
           args: Any, counts: list[int], argv: list[str] | None = None) -> dict[str, Any]:
    """The sweep's JSON (``command`` names this module: the file is
    ``experiment-sweep.json``, the module ``bench.sweep``)."""
    return {"machine": m, "runs": rows, "breaking_point": breaking_point(rows),
            "stopped_before": stopped,
            "settings": {"cells": args.cells, "domains": args.domains,
                         "duration_s": args.duration, "dwell_s": list(args.dwell),
                         "probes": args.probes, "seed": args.seed, "mns": counts},
            "command": command_line("sweep", argv)}


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser("sweep", __doc__)
    ap.add_argument("--mns", default="50,100,200,300", help="comma-separated, ascending")
    ap.add_argument("--cells", default="4x4")
    ap.add_argument("--domains", type=int, default=2)
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--dwell", default="30,90", help="min,max seconds in a cell")
    ap.add_argument("--probes", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lock", default=None, help="flock this file around each run")
    args = parse_bench_args(ap, argv)
    lo, hi = (float(x) for x in args.dwell.split(","))
    args.dwell = (lo, hi)
    counts = [int(x) for x in args.mns.split(",")]
    if os.geteuid() != 0:
        print("the sweep needs root (Mininet, Open vSwitch, strongSwan)", file=sys.stderr)
        return 2
    code = reexec_in_private_netns([sys.executable, "-m", "bench.sweep",
                                    *(argv if argv is not None else sys.argv[1:])])
    if code is not None:
        return code
    m = print_machine()
    rows: list[dict[str, Any]] = []
    stopped: dict[str, Any] | None = None
    work = Path(tempfile.mkdtemp(prefix="mipvpn-sweep-"))
    try:
        for mns in counts:
            need, have = memory_needed(mns), memory_available()
            if have < need:
                stopped = {"mns": mns, "why": f"memory: {have} MiB available, {need} MiB "
                                              "needed"}
                break
            row = run_one(mns, args, work)
            rows.append(row)
            print(table([row]), flush=True)
            if row["broke"]:
                break
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res = result(m, rows, stopped, args, counts, argv)
    print(table(rows))
    bp = res["breaking_point"]
    print(f"breaking point: {bp['mns']} MNs ({bp['why']})" if bp else
          f"no run broke up to {rows[-1]['mns'] if rows else 0} MNs"
          + (f"; not run at {stopped['mns']} MNs ({stopped['why']})" if stopped else ""))
    save_results("experiment-sweep", args.json, res, None if args.no_plot else plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
