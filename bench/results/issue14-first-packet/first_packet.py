"""Issue 14: why the first packet after a move arrives ~30 ms after the new FA's
``tunnel_up`` (charon's "up"), from a kept run of the paired benchmark:

    python bench/results/issue14-first-packet/first_packet.py RUN_DIR RESULT_JSON OUT_JSON

RUN_DIR: the directory ``python -m bench.handover_paired ... --keep-dir`` kept (probe
files ``probe-*.json`` with [seq, send ns, receive ns] per packet, ``mnX-events.jsonl``);
RESULT_JSON: that run's ``--json``.  Everything on CLOCK_MONOTONIC (one clock for the
probes, the MN's events and the controller's marks).  ``tunnel_up`` in absolute time is
the MN's ``registered`` event minus the walk's (mn_registered - tunnel_up).

Per move and direction:
- the first packet *received* after tunnel_up: when it arrived and when it was sent
  (ms since tunnel_up) and its one-way delay;
- the first packet *sent* after tunnel_up that arrived: when it arrived, its delay;
- the probe's steady one-way delay (median over the whole run);
- sender pauses: the longest pause between two consecutive send times of the probe
  (paced at 1 ms: a longer pause is the sending process not running) in
  [tunnel_up - 50, + 50] ms and, for comparison, in [+500, +600] ms; and the largest
  batch of packets received within 0.2 ms of each other in those windows (a forwarder
  or the receiver that did not run, then delivered its backlog at once).
Standard library only.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def _window(recv: list[list[int]], up: float, lo: float, hi: float) -> tuple[float, int]:
    w = sorted((p for p in recv if lo <= (p[1] / 1e9 - up) * 1e3 <= hi), key=lambda p: p[1])
    sends = [p[1] for p in w]
    pause = max(((b - a) / 1e6 for a, b in zip(sends, sends[1:])), default=0.0)
    rx = sorted(p[2] for p in w)
    best, start = min(1, len(rx)), 0
    for i in range(1, len(rx)):
        while rx[i] - rx[start] > 200_000:
            start += 1
        best = max(best, i - start + 1)
    return pause, best


def rows_of(run_dir: Path, result: dict) -> list[dict]:
    out = []
    for idx, mn in ((1, "mn1"), (2, "mn2")):
        events = [json.loads(line) for line in (run_dir / f"{mn}-events.jsonl").open()]
        registered = [e["t"] for e in events if e["event"] == "registered"][1:]
        moves = [m for m in result["moves"] if m["mn"] == mn]
        for d, f in (("mn_to_cn", next(run_dir.glob(f"probe-cn*-500{idx}.json"))),
                     ("cn_to_mn", next(run_dir.glob(f"probe-{mn}-500{idx}.json")))):
            recv = json.loads(f.read_text())["received"]
            steady = statistics.median((p[2] - p[1]) / 1e6 for p in recv)
            for m, t_reg in zip(moves, registered):
                t = m["walk"]["timeline_ms"]
                if t.get("tunnel_up") is None or t.get("mn_registered") is None:
                    continue
                up = t_reg - (t["mn_registered"] - t["tunnel_up"]) / 1000

                def rel(ns: int, up: float = up) -> float:
                    return (ns / 1e9 - up) * 1e3

                after = [p for p in recv if p[2] / 1e9 >= up]
                sent_after = [p for p in recv if p[1] / 1e9 >= up]
                if not after or not sent_after:
                    continue
                rx = min(after, key=lambda p: p[2])
                tx = min(sent_after, key=lambda p: p[1])
                near, later = _window(recv, up, -50, 50), _window(recv, up, 500, 600)
                out.append({
                    "mn": mn, "direction": d, "move": f"{m['from']}->{m['to']}",
                    "mechanism": mn == "mn1",
                    "rrp_sent": t.get("rrp_sent", t["tunnel_up"]) - t["tunnel_up"],
                    "mn_registered": t["mn_registered"] - t["tunnel_up"],
                    "uplink_released": (t["uplink_released"] - t["tunnel_up"]
                                        if t.get("uplink_released") is not None else None),
                    "first_received_arrived": rel(rx[2]), "first_received_sent": rel(rx[1]),
                    "first_received_delay": (rx[2] - rx[1]) / 1e6,
                    "first_sent_after_up_arrived": rel(tx[2]),
                    "first_sent_after_up_delay": (tx[2] - tx[1]) / 1e6,
                    "steady_delay": steady,
                    "sender_pause_near_up": near[0], "rx_batch_near_up": float(near[1]),
                    "sender_pause_later": later[0], "rx_batch_later": float(later[1])})
    return out


def summary(rows: list[dict]) -> dict:
    out: dict = {}
    keys = [k for k in rows[0] if isinstance(rows[0][k], float)] if rows else []
    for mn in ("mn1", "mn2"):
        for d in ("mn_to_cn", "cn_to_mn"):
            mine = [r for r in rows if r["mn"] == mn and r["direction"] == d]
            if not mine:
                continue
            out[f"{mn} {d}"] = {"moves": len(mine), **{
                k: round(statistics.median(r[k] for r in mine if r[k] is not None), 1)
                for k in keys if any(r[k] is not None for r in mine)}}
    return out


def main(argv: list[str]) -> None:
    run_dir, result_path, out_path = Path(argv[0]), Path(argv[1]), Path(argv[2])
    result = json.loads(result_path.read_text())
    rows = rows_of(run_dir, result)
    s = summary(rows)
    out_path.write_text(json.dumps({"result": result_path.name,
                                    "code": result.get("code"),
                                    "load_start": result["machine"]["loadavg"],
                                    "load_after": result.get("load_after"),
                                    "medians": s, "rows": rows}, indent=1) + "\n")
    for name, vals in s.items():
        print(name, json.dumps(vals))


if __name__ == "__main__":
    main(sys.argv[1:])
