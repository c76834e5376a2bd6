"""An experiment's report: the JSON result and an HTML page with PNG plots.

``results`` turns an ``ExperimentRun`` (moves, probes, REST samples) into the JSON-able
result; ``write_report`` writes ``report.json``, the PNGs and ``report.html`` into a
directory.  Plots (matplotlib, files only, as ``plots.py``):

* ``gap_cdf.png``, ``loss_cdf.png``: per-move data-plane gap and packets lost (probed
  MNs, both directions); ``move_latency_cdf.png``: link move -> registered at the MN;
* ``registration_latency.png``: the controller's RRQ-at-FA -> RRP-sent time of every
  registration over the run, by kind;
* ``tunnels.png``: intended tunnels (up) and the SAs the charons report, over time;
* ``load.png``: per element, counted events per second (``/v1/counters``), and per FA
  the Registration Requests per second (``/v1/handovers``);
* ``cost.png``: processes' RSS sum and CPU over time.

Re-plot a kept result: ``python -m mininet_scripts.experiment_report report.json DIR``.
"""

from __future__ import annotations

import html
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 3)


def distribution(values: Sequence[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": _pct(values, 0.5), "p90": _pct(values, 0.9),
            "p99": _pct(values, 0.99), "max": round(max(values), 3) if values else None}


def _probe_windows(run: Any) -> dict[str, tuple[Any, Any]]:
    from mininet_scripts.probe import analyse, load_result
    out = {}
    for p in run.probes:
        if not (p["mn_out"].exists() and p["cn_out"].exists()):
            continue
        mn_probe, cn_probe = load_result(str(p["mn_out"])), load_result(str(p["cn_out"]))
        ev = [(f"move{k}", int(m["t_move"] * 1e9)) for k, m in enumerate(run.moves)
              if m["mn"] == p["mn"]]
        out[p["mn"]] = (analyse(cn_probe["received"], mn_probe["sent"], ev,
                                sender=mn_probe, receiver=cn_probe).windows,
                        analyse(mn_probe["received"], cn_probe["sent"], ev,
                                sender=cn_probe, receiver=mn_probe).windows)
    return out


def results(run: Any, t_reg: dict[str, float], bring_up_s: float,
            registered_all_s: float, bindings: dict[str, str]) -> dict[str, Any]:
    """The JSON-able result of a finished ``ExperimentRun``."""
    topo, t0 = run.topo, run.t0
    handovers = sorted(run.handovers.values(), key=lambda h: h["seq"])
    windows = _probe_windows(run)
    seen: Counter[str] = Counter()
    moves = []
    for m in run.moves:
        k = seen[m["mn"]]
        seen[m["mn"]] += 1
        nai = topo.mobile_nodes[m["mn"]].nai
        rec = next((h for h in handovers if h["nai"] == nai and h["foreign_agent"] == m["to"]
                    and h["marks"].get("rrq_at_fa", 0) >= m["t_move"] - 0.01), {})
        entry: dict[str, Any] = {
            "mn": m["mn"], "t": round(m["t_move"] - t0, 3), "scheduled": m["t"],
            "from": m["from"], "to": m["to"], "kind": rec.get("kind", "?"),
            "state": m["state"], "link_move_ms": m["link_move_ms"]}
        if m.get("why"):
            entry["why"] = m["why"]
        if m["registered"] is not None:
            entry["latency_ms"] = round((m["registered"]["t"] - m["t_move"]) * 1000, 3)
        if "controller_total" in rec.get("phases_ms", {}):
            entry["controller_ms"] = rec["phases_ms"]["controller_total"]
        if m["mn"] in windows:
            to_cn, to_mn = windows[m["mn"]]
            entry["gap_ms"] = {"mn_to_cn": round(to_cn[k].gap_ms, 3),
                               "cn_to_mn": round(to_mn[k].gap_ms, 3)}
            entry["lost"] = {"mn_to_cn": to_cn[k].lost, "cn_to_mn": to_mn[k].lost}
        moves.append(entry)
    regs = [{"t": round(h["marks"]["rrq_at_fa"] - t0, 3), "nai": h["nai"], "kind": h["kind"],
             "foreign_agent": h["foreign_agent"], "accepted": h["accepted"],
             "ms": h["phases_ms"].get("controller_total")}
            for h in handovers if "rrq_at_fa" in h["marks"]]
    samples = run.samples
    span = (samples[-1]["t"] - samples[0]["t"]) if len(samples) > 1 else 0.0
    load: dict[str, dict[str, float]] = {}
    if span > 0 and "counters" in samples[0] and "counters" in samples[-1]:
        first, last = samples[0]["counters"], samples[-1]["counters"]
        for role, counters in last.items():
            if not isinstance(counters, dict):
                continue
            rates = {name: round((v - first.get(role, {}).get(name, 0)) / span, 4)
                     for name, v in counters.items() if isinstance(v, (int, float))}
            load[role] = {"events_per_s": round(sum(rates.values()), 4),
                          "by_counter": {n: r for n, r in rates.items() if r}}
    in_run = [r for r in regs if 0 <= r["t"] <= (samples[-1]["t"] if samples else 0)]
    per_fa = {fa: round(n / span, 4) if span else 0.0
              for fa, n in sorted(Counter(r["foreign_agent"] for r in in_run).items())}
    series = []
    prev = None
    for s in samples:
        u = s["usage"]
        cpu = None
        if prev is not None and s["t"] > prev["t"]:
            cpu = round(100.0 * (u["cpu_ticks"] - prev["usage"]["cpu_ticks"])
                        / TICKS / (s["t"] - prev["t"]), 1)
        series.append({"t": s["t"], "processes": u["processes"],
                       "rss_mib": round(u["rss_kib"] / 1024, 1), "cpu_percent": cpu,
                       "loadavg_1m": round(s["loadavg"][0], 2),
                       "tunnels": s.get("tunnels"), "bindings": s.get("bindings"),
                       "sas_total": sum(v for v in (s.get("sas") or {}).values() if v),
                       "sas": s.get("sas"), "error": s.get("error"),
                       "sample_s": s["took_s"]})
        prev = s
    completed = [m for m in moves if m["state"] == "completed"]
    gaps = [v for m in moves if "gap_ms" in m for v in m["gap_ms"].values()]
    lost = [v for m in moves if "lost" in m for v in m["lost"].values()]
    cpus = [r["cpu_percent"] for r in series if r["cpu_percent"] is not None]
    peak = max(samples, key=lambda s: s["usage"]["rss_kib"])["usage"] if samples else {}
    summary = {
        "mns": len(topo.mobile_nodes),
        "cells": sum(1 for s in topo.switches.values() if s.role == "access"),
        "duration_s": run.duration, "moves": len(moves), "completed": len(completed),
        "failed": len(moves) - len(completed),
        "by_kind": dict(Counter(m["kind"] for m in moves)),
        "gap_ms": distribution(gaps), "lost": distribution(lost),
        "move_latency_ms": distribution([m["latency_ms"] for m in completed
                                         if "latency_ms" in m]),
        "controller_ms": distribution([r["ms"] for r in in_run if r["ms"] is not None]),
        "bring_up_s": round(bring_up_s, 1), "all_registered_s": round(registered_all_s, 1),
        "bindings_at_end": len(bindings),
        "cost": {"processes": peak.get("processes"),
                 "rss_mib_peak": round(peak.get("rss_kib", 0) / 1024, 1),
                 "by_kind": {k: {"processes": v["processes"],
                                 "rss_mib": round(v["rss_kib"] / 1024, 1)}
                             for k, v in (peak.get("by_kind") or {}).items()},
                 "cpu_percent_by_kind": _cpu_by_kind(samples),
                 "cpu_percent_mean": round(sum(cpus) / len(cpus), 1) if cpus else None,
                 "cpu_percent_max": max(cpus) if cpus else None,
                 "cpus": os.cpu_count(),
                 "loadavg_1m_max": max((r["loadavg_1m"] for r in series), default=None)}}
    failures = list(run.failures)
    return {"experiment": run.exp["name"], "topology": topo.name,
            "mobility": run.exp.get("mobility") or {"trace": run.exp.get("trace")},
            "probed": run.sample, "summary": summary,
            "ok": not failures and len(completed) == len(moves),
            "failures": failures, "moves": moves, "registrations": regs,
            "first_registration_ms": t_reg, "signalling_load": load,
            "rrq_per_s_per_fa": per_fa, "series": series,
            "charon_restarts": run.demo.charon_restarts}


def _cpu_by_kind(samples: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Mean CPU % per kind of process between the first and the last sample (ticks of
    the processes alive at both; a process that exited in between is not counted)."""
    if len(samples) < 2 or samples[-1]["t"] <= samples[0]["t"]:
        return {}
    first, last = samples[0]["usage"]["by_kind"], samples[-1]["usage"]["by_kind"]
    span = samples[-1]["t"] - samples[0]["t"]
    return {k: round(100.0 * max(0, v["cpu_ticks"] - first.get(k, {}).get("cpu_ticks", 0))
                     / TICKS / span, 1) for k, v in sorted(last.items())}


# ---------------------------------------------------------------------------- plots


def _cdf(ax: Any, values: Sequence[float], label: str) -> None:
    if not values:
        return
    s = sorted(values)
    ax.step(s, [(i + 1) / len(s) for i in range(len(s))], where="post", label=label)


def plots(res: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    moves = res["moves"]

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=80)
        plt.close(fig)
        paths.append(out / name)

    for key, xlabel, name in (("gap_ms", "data-plane gap per move (ms)", "gap_cdf.png"),
                              ("lost", "packets lost per move", "loss_cdf.png")):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for d, label in (("mn_to_cn", "MN → CN"), ("cn_to_mn", "CN → MN")):
            _cdf(ax, [m[key][d] for m in moves if key in m], label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("fraction of moves")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        ax.set_title(f"{res['experiment']}: {key} (probed MNs)")
        save(fig, name)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for kind in sorted({m["kind"] for m in moves}):
        _cdf(ax, [m["latency_ms"] for m in moves if m["kind"] == kind and "latency_ms" in m],
             kind)
    ax.set_xlabel("link move → registered at the MN (ms)")
    ax.set_ylabel("fraction of moves")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    save(fig, "move_latency_cdf.png")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for kind in sorted({r["kind"] for r in res["registrations"]}):
        pts = [(r["t"], r["ms"]) for r in res["registrations"]
               if r["kind"] == kind and r["ms"] is not None]
        if pts:
            ax.scatter(*zip(*pts), s=8, label=kind)
    ax.set_xlabel("time in the run (s)")
    ax.set_ylabel("RRQ at FA → RRP sent (ms)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    save(fig, "registration_latency.png")
    series = res["series"]
    ts = [r["t"] for r in series]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(ts, [(r["tunnels"] or {}).get("up", 0) for r in series], label="tunnels up "
            "(controller)")
    ax.plot(ts, [r["sas_total"] for r in series], label="SAs (charons, all gateways)")
    ax.plot(ts, [r["bindings"] or 0 for r in series], label="bindings")
    ax.set_xlabel("time in the run (s)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    save(fig, "tunnels.png")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    load = res["signalling_load"]
    roles = sorted(load, key=lambda r: -load[r]["events_per_s"])[:20]
    a1.barh(roles, [load[r]["events_per_s"] for r in roles])
    a1.set_xlabel("counted events / s")
    a1.set_title("per element (/v1/counters)")
    fas = sorted(res["rrq_per_s_per_fa"], key=lambda f: int("".join(filter(str.isdigit, f))
                                                              or 0))
    a2.bar(fas, [res["rrq_per_s_per_fa"][f] for f in fas])
    a2.set_ylabel("Registration Requests / s")
    a2.set_title("per foreign agent")
    a2.tick_params(axis="x", rotation=90)
    save(fig, "load.png")
    fig, a1 = plt.subplots(figsize=(7, 3.5))
    a1.plot(ts, [r["rss_mib"] for r in series], color="tab:blue")
    a1.set_ylabel("RSS sum (MiB)", color="tab:blue")
    a2 = a1.twinx()
    a2.plot(ts, [r["cpu_percent"] for r in series], color="tab:red")
    a2.set_ylabel(f"CPU % (of {100 * (os.cpu_count() or 1)})", color="tab:red")
    a1.set_xlabel("time in the run (s)")
    save(fig, "cost.png")
    return paths


def _table(rows: Sequence[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}"
                               f"</td></tr>" for k, v in rows) + "</table>"


def write_report(res: dict[str, Any], out: Path) -> list[Path]:
    """``report.json``, the PNGs and ``report.html`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    pngs = plots(res, out)
    s = res["summary"]
    rows = [("verdict", "OK" if res["ok"] else "FAILED"), ("topology", res["topology"]),
            ("mobility", json.dumps(res["mobility"])), ("MNs / cells",
                                                        f"{s['mns']} / {s['cells']}"),
            ("duration (s)", s["duration_s"]),
            ("moves / completed / failed", f"{s['moves']} / {s['completed']} / {s['failed']}"),
            ("by kind", s["by_kind"]), ("gap (ms)", s["gap_ms"]), ("lost", s["lost"]),
            ("move → registered (ms)", s["move_latency_ms"]),
            ("controller RRQ → RRP (ms)", s["controller_ms"]),
            ("bring-up / all registered (s)", f"{s['bring_up_s']} / {s['all_registered_s']}"),
            ("cost", json.dumps(s["cost"])), ("command", res.get("command", "")),
            ("commit", res.get("commit", ""))]
    fails = "".join(f"<li>{html.escape(f)}</li>" for f in res["failures"]) or "<li>none</li>"
    imgs = "".join(f'<figure><img src="{p.name}"><figcaption>{p.stem}</figcaption></figure>'
                   for p in pngs)
    page = (f"<!doctype html><meta charset=utf-8><title>{html.escape(res['experiment'])}"
            f"</title><style>body{{font-family:sans-serif;margin:2em}}th{{text-align:left;"
            f"padding-right:1em}}figure{{display:inline-block;margin:.5em}}</style>"
            f"<h1>experiment {html.escape(res['experiment'])}</h1>{_table(rows)}"
            f"<h2>failures</h2><ul>{fails}</ul><h2>plots</h2>{imgs}")
    (out / "report.html").write_text(page)
    return [out / "report.json", out / "report.html", *pngs]


if __name__ == "__main__":
    result = json.loads(Path(sys.argv[1]).read_text())
    for path in write_report(result, Path(sys.argv[2])):
        print(path)
