"""Issue 14: why the first packets after a move take 8-10 ms send -> receive.

    python bench/results/issue14-tunnel-set/first_packets.py LOG...

LOG: the output of a ``python -m bench.handover ... --keep-dir --json F`` run (names its
kept run directory and its JSON).  Per move and direction, the first 5 probe packets
whose send time is at or after the FA's ``tunnel_up`` - 5 ms: the first one's one-way
delay, the spread of their send times and of their receive times.  A batch (5 packets
sent over ~4 ms that arrive within 1 ms) was held somewhere and released at once: the
first packet's delay is the hold's age, not a cost of crossing a new SA.  Five that keep
one delay (within 1 ms) well above the steady state met a standing backlog: the path
stalled once and its queue drains no faster than the packets come.  Writes
``first_packets.json`` next to this file.  Standard library only; one clock
(CLOCK_MONOTONIC) for the probes and the walk."""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def rows_of(log: str) -> list[dict]:
    text = Path(log).read_text()
    run_dir = Path(re.search(r"run directory kept: (\S+)", text).group(1))
    moves = json.loads(Path(re.search(r"results: (\S+)", text).group(1)).read_text())
    moves = moves["runs"][0]["moves"]
    events = [json.loads(line) for line in (run_dir / "mn1-events.jsonl").open()]
    registered = [e["t"] for e in events if e["event"] == "registered"][1:]
    out = []
    for d, f in (("mn_to_cn", "probe-cn1-5001.json"), ("cn_to_mn", "probe-mn1-5001.json")):
        received = sorted(json.loads((run_dir / f).read_text())["received"],
                          key=lambda p: p[1])          # [seq, sent ns, received ns]
        steady = statistics.median((p[2] - p[1]) / 1e6 for p in received)
        for m, t_reg in zip(moves, registered):
            t = m["walk"]["timeline_ms"]
            if t.get("tunnel_up") is None or t.get("mn_registered") is None:
                continue
            tun = t_reg - (t["mn_registered"] - t["tunnel_up"]) / 1000
            first = [p for p in received if p[1] / 1e9 >= tun - 0.005][:5]
            if len(first) < 5:
                continue
            out.append({"direction": d, "move": f"{m['from']}->{m['to']}",
                        "first_delay_ms": (first[0][2] - first[0][1]) / 1e6,
                        "sent_spread_ms": (first[-1][1] - first[0][1]) / 1e6,
                        "recv_spread_ms": (first[-1][2] - first[0][2]) / 1e6,
                        "delay_spread_ms": (max(q[2] - q[1] for q in first)
                                            - min(q[2] - q[1] for q in first)) / 1e6,
                        "steady_p50_ms": steady})
    return out


def main(logs: list[str]) -> None:
    out = {Path(log).stem: rows_of(log) for log in logs}
    (HERE / "first_packets.json").write_text(json.dumps(out, indent=1) + "\n")
    rows = [r for v in out.values() for r in v]
    for d in ("mn_to_cn", "cn_to_mn"):
        rs = [r for r in rows if r["direction"] == d]
        batch = [r for r in rs if r["recv_spread_ms"] < 1.0 and r["sent_spread_ms"] > 3.0]
        # a standing backlog: the 5 keep one delay (within 1 ms), above twice steady
        standing = [r for r in rs if r not in batch and r["delay_spread_ms"] < 1.0
                    and r["first_delay_ms"] > 2 * r["steady_p50_ms"]]
        print(f"{d}: {len(rs)} moves; first packet's delay median "
              f"{statistics.median(r['first_delay_ms'] for r in rs):.1f} ms (steady "
              f"{statistics.median(r['steady_p50_ms'] for r in rs):.1f}); released as one "
              f"batch (5 sent over > 3 ms, received within 1 ms): {len(batch)}; their first "
              f"delay median {statistics.median(r['first_delay_ms'] for r in batch):.1f} ms; "
              f"a standing backlog (one delay, > 2x steady): {len(standing)}, first delay median "
              f"{statistics.median(r['first_delay_ms'] for r in standing):.1f} ms; the rest "
              f"{len(rs) - len(batch) - len(standing)}, median "
              f"{statistics.median(r['first_delay_ms'] for r in rs if r not in batch and r not in standing):.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
