"""The mechanism MN's downlink losses of one kept run, burst by burst, against its
registrations: ``python bursts.py RUN_DIR`` (the directory ``bench.handover_paired
--keep-dir`` kept; it reads ``probe-mn1-5001.json`` and ``mn1-events.jsonl``).  A lost
packet's send time is interpolated between its received neighbours."""

import bisect
import json
import sys
from pathlib import Path

run = Path(sys.argv[1])
probe = json.loads((run / "probe-mn1-5001.json").read_text())
got = {r[0]: r[1] for r in probe["received"]}
seqs = sorted(got)


def sent_at(seq: int) -> float | None:
    i = bisect.bisect(seqs, seq)
    if i == 0 or i >= len(seqs):
        return None
    a, b = seqs[i - 1], seqs[i]
    return got[a] + (got[b] - got[a]) * (seq - a) / (b - a)


bursts: list[list[float]] = []     # [sent at (ns), lost, last seq]
for seq in range(probe["sent"]):
    t = None if seq in got else sent_at(seq)
    if t is None:
        continue
    if bursts and seq == bursts[-1][2] + 1:
        bursts[-1][1] += 1
        bursts[-1][2] = seq
    else:
        bursts.append([t, 1, seq])
events = [json.loads(line) for line in (run / "mn1-events.jsonl").read_text().splitlines()]
regs = [e["t"] for e in events if e["event"] == "registered"]
for t, lost, _ in bursts:
    ts = t / 1e9
    before = [r for r in regs if r <= ts]
    after = [r for r in regs if r > ts]
    since = f"registration #{len(before) - 1} +{ts - before[-1]:.3f} s" if before else "-"
    nxt = f"{after[0] - ts:.3f} s" if after else "-"
    print(f"{ts:.3f}  lost {int(lost):3d}  after {since}  next registration in {nxt}")
