"""During each move of one MN, the other MN's (not moving) probe delays: a shared stall?"""

import json
import sys
import statistics as st
from pathlib import Path

res = json.load(open(sys.argv[1]))
D = Path(sys.argv[2])
regs = {
    mn: [json.loads(line)["t"] for line in open(D / f"{mn}-events.jsonl") if '"registered"' in line][1:]
    for mn in ("mn1", "mn2")
}
idx = {"mn1": 0, "mn2": 0}
P = {
    k: json.load(open(D / f"probe-{k}.json"))["received"]
    for k in ("cn1-5001", "mn1-5001", "cn1-5002", "mn2-5002")
}
other = {"mn1": ("cn1-5002", "mn2-5002"), "mn2": ("cn1-5001", "mn1-5001")}
own = {"mn1": ("cn1-5001", "mn1-5001"), "mn2": ("cn1-5002", "mn2-5002")}


def delays(rec, lo, hi):
    return [(r[2] - r[1]) / 1e6 for r in rec if lo <= r[1] / 1e9 < hi]


out = {"mn1": [], "mn2": []}
for m in res["moves"]:
    mn = m["mn"]
    tl = m["walk"]["timeline_ms"]
    if tl.get("mn_registered") is None:
        idx[mn] += 1
        continue
    t0 = regs[mn][idx[mn]] - tl["mn_registered"] / 1000
    idx[mn] += 1
    lm = t0 + tl["link_moved"] / 1000
    row = []
    for k in other[mn]:
        base = delays(P[k], lm - 1.0, lm - 0.3)
        win = delays(P[k], lm, lm + 0.12)
        row.append(
            (
                round(st.median(base), 1) if base else None,
                round(max(win), 1) if win else None,
                round(st.median(win), 1) if win else None,
            )
        )
    out[mn].append(row)
    print(mn, "moves; other MN up (steady p50, max, p50 in 0..120ms after link_moved), down:", row)
print()
# bucketed: bystander one-way delay by send time since link_moved
idx = {"mn1": 0, "mn2": 0}
B = {}
for m in res["moves"]:
    mn = m["mn"]
    tl = m["walk"]["timeline_ms"]
    if tl.get("mn_registered") is None:
        idx[mn] += 1
        continue
    t0 = regs[mn][idx[mn]] - tl["mn_registered"] / 1000
    idx[mn] += 1
    lm = t0 + tl["link_moved"] / 1000
    for d, k in zip(("up", "down"), other[mn]):
        for b in range(-40, 160, 20):
            w = delays(P[k], lm + b / 1000, lm + (b + 20) / 1000)
            if w:
                B.setdefault((mn, d, b), []).append(max(w))
for mn in ("mn1", "mn2"):
    for d in ("up", "down"):
        print(
            f"{mn} moving; bystander {d}: median over moves of max delay per 20 ms send bucket:",
            " ".join(
                f"{b}:{st.median(B[(mn, d, b)]):.0f}"
                for b in range(-40, 160, 20)
                if (mn, d, b) in B
            ),
        )
