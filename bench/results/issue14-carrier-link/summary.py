"""Per run of runs/*.json: link model, load, and per MN the medians of the gap, the gap
minus the emulated link move, the packets lost beyond the link move (MN->CN / CN->MN)
and the link move itself; then the medians over the runs of each model.

    python summary.py runs/KIND-*.json
"""

import json
import statistics as st
import sys
from pathlib import Path

KEYS = (("gap_ms", "gap"), ("protocol_added_ms", "gap-link"), ("lost", "lost"),
        ("lost_beyond_link_move", "lost beyond"))


def med(side, key):
    return (side.get(key) or {}).get("median")


rows = []
for path in sys.argv[1:]:
    r = json.loads(Path(path).read_text())
    load = (r["machine"]["loadavg"][0], (r.get("load_after") or [None])[0])
    for who in ("mechanism", "baseline"):
        s = r[who]
        vals = {f"{k} {d}": med(s, f"{k}_{d}") for k, _ in KEYS
                for d in ("mn_to_cn", "cn_to_mn")}
        rows.append((Path(path).stem, r.get("link_model", "replug"), who, load,
                     vals, med(s, "link_move_ms"), s.get("registered"), s.get("moves")))

print(f"{'run':26} {'MN':9} {'load':11} {'gap up/down':>15} {'gap-link up/down':>17} "
      f"{'lost up/down':>14} {'lost>link up/down':>18} {'link move':>9} reg")
for name, model, who, load, v, lm, reg, n in rows:
    def pair(k):
        a, b = v[f"{k} mn_to_cn"], v[f"{k} cn_to_mn"]
        return f"{a:.1f} / {b:.1f}" if isinstance(a, (int, float)) else f"{a} / {b}"
    ld = f"{load[0]:.1f}->{load[1]:.1f}" if load[1] is not None else f"{load[0]:.1f}"
    print(f"{name:26} {who:9} {ld:11} {pair('gap_ms'):>15} {pair('protocol_added_ms'):>17} "
          f"{pair('lost'):>14} {pair('lost_beyond_link_move'):>18} {lm:9.1f} {reg}/{n}")

print("\nmedian over the runs of each model (of the per-run medians):")
for model in ("carrier", "replug"):
    for who in ("mechanism", "baseline"):
        sel = [r for r in rows if r[1] == model and r[2] == who]
        if not sel:
            continue
        out = []
        for k, label in KEYS:
            for d, arrow in (("mn_to_cn", "up"), ("cn_to_mn", "down")):
                xs = [r[4][f"{k} {d}"] for r in sel if r[4][f"{k} {d}"] is not None]
                out.append(f"{label} {arrow} {st.median(xs):.1f}" if xs else f"{label} {arrow} -")
        lm = st.median(r[5] for r in sel)
        print(f"  {model:7} {who:9} ({len(sel)} runs): " + ", ".join(out)
              + f", link move {lm:.1f} ms")
