"""Issue 14 (prepared flows): what the committed runs of this folder say.

    python bench/results/issue14-prepared/analyse.py             # the tables of §3.3
    python bench/results/issue14-prepared/analyse.py --restore LOG...  # from kept runs

Without options: per group of runs (``runs.json``), the median (and p90) of each
segment of the walk after the link is up, over every move (per-move differences),
and registration -> tunnel ready.  ``--restore``: from the logs of ``python -m
bench.handover ... --keep-dir`` runs, when the path was back per direction, by the
send time of the first probe packet sent after the MN's RRQ that arrived, relative to
the FA's ``tunnel_up`` and the MN's registration (all CLOCK_MONOTONIC); writes
``restore.json``.  Standard library only."""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["link_up", "advertisement_sent", "mn_rrq_sent", "rrq_at_fa", "aaaf_local",
         "ama_at_fa", "ha_bind", "ha_tunnel_set", "rrp_from_ha", "fa_setup",
         "flows_installed", "tunnel_up", "rrp_sent", "mn_registered"]
SPANS = [("link_up", "mn_rrq_sent"), ("rrq_at_fa", "rrp_from_ha"), ("rrp_from_ha", "tunnel_up"),
         ("rrq_at_fa", "tunnel_up"), ("tunnel_up", "first_packet_mn_to_cn"),
         ("tunnel_up", "first_packet_cn_to_mn"), ("link_up", "first_packet_mn_to_cn"),
         ("link_up", "first_packet_cn_to_mn")]


def p90(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(0.9 * len(values)))]


def moves_of(files: list[str]) -> list[dict]:
    return [m for f in files for r in json.loads((HERE / f).read_text())["runs"]
            for m in r["moves"]]


def span(moves: list[dict], a: str, b: str) -> list[float]:
    out = []
    for m in moves:
        t = m["walk"]["timeline_ms"]
        if t.get(a) is not None and t.get(b) is not None:
            out.append(t[b] - t[a])
    return out


def tables() -> None:
    groups = json.loads((HERE / "runs.json").read_text())["groups"]
    for name, files in groups.items():
        moves = moves_of(files)
        print(f"{name}: {len(moves)} moves ({', '.join(files)})")
        for a, b in list(zip(ORDER, ORDER[1:])) + SPANS:
            v = span(moves, a, b)
            if v:
                print(f"  {a:>20s} -> {b:<22s} {statistics.median(v):7.2f}  p90 {p90(v):7.2f}")
        for d in ("mn_to_cn", "cn_to_mn"):
            v = [m["walk"]["protocol_added_ms"][d] for m in moves]
            print(f"  gap minus link move {d}: median {statistics.median(v):.1f} p90 {p90(v):.1f}")
        v = [m["registration_to_tunnel_ready_ms"] for m in moves]
        print(f"  registration -> tunnel ready: median {statistics.median(v):.1f} p90 {p90(v):.1f}")


def restore(log: str) -> list[dict]:
    text = Path(log).read_text()
    run_dir = Path(re.search(r"run directory kept: (\S+)", text).group(1))
    moves = json.loads(Path(re.search(r"results: (\S+)", text).group(1)).read_text())
    moves = moves["runs"][0]["moves"]
    events = [json.loads(line) for line in (run_dir / "mn1-events.jsonl").open()]
    registered = [e["t"] for e in events if e["event"] == "registered"][1:]
    probes = {"up": json.loads((run_dir / "probe-cn1-5001.json").read_text())["received"],
              "dn": json.loads((run_dir / "probe-mn1-5001.json").read_text())["received"]}
    rows = []
    for m, t_reg in zip(moves, registered):
        t = m["walk"]["timeline_ms"]
        if None in (t.get("mn_registered"), t.get("tunnel_up"), t.get("mn_rrq_sent")):
            continue
        t0 = t_reg - t["mn_registered"] / 1000
        tun, rrq = t0 + t["tunnel_up"] / 1000, t0 + t["mn_rrq_sent"] / 1000
        row = {"move": f"{m['from']}->{m['to']}", "reg_minus_tun": 1000 * (t_reg - tun)}
        for name, received in probes.items():      # [seq, sent ns, received ns]
            after = [p for p in received if p[1] / 1e9 > rrq]
            if after:
                first = min(after, key=lambda p: p[1])
                row[f"{name}_sent_minus_tun"] = 1000 * (first[1] / 1e9 - tun)
                row[f"{name}_sent_minus_reg"] = 1000 * (first[1] / 1e9 - t_reg)
                row[f"{name}_recv_minus_tun"] = 1000 * (first[2] / 1e9 - tun)
        rows.append(row)
    return rows


def main(argv: list[str]) -> None:
    if argv[:1] != ["--restore"]:
        tables()
        return
    out = {Path(log).stem: restore(log) for log in argv[1:]}
    (HERE / "restore.json").write_text(json.dumps(out, indent=1) + "\n")
    for name, rows in out.items():
        print(name, len(rows), "moves")
        for key in sorted({k for r in rows for k in r if k != "move"}):
            v = [r[key] for r in rows if key in r]
            print(f"  {key:20s} median {statistics.median(v):6.1f}  p90 {p90(v):6.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
