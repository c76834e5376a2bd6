# ruff: noqa  (a measurement script kept as it was run)
"""mn1's lost uplink packets around three marks of its moves (valid runs only; the same
t_move and interpolated send times as first_second.py): summed over the moves, per
10 ms bin from 100 ms before to 100 ms after the new FA's ``tunnel_up``, the client's
``mn_registered`` and the HA's promotion rekey done (``ha_rekey_done``).

    python marks_bins.py
"""

import glob
import json
from bisect import bisect_left
from pathlib import Path

from first_second import MS, lost_times, run_dir

for side in ("base", "fix"):
    hist = {}
    n = 0
    for path in sorted(glob.glob(f"runs/seamless-{side}-*.json")):
        r = json.loads(Path(path).read_text())
        if not r.get("valid"):
            continue
        d = run_dir(path)
        ev = [json.loads(l) for l in (d / "mn1-events.jsonl").read_text().splitlines() if l.strip()]
        rrqs = [e["t"] for e in ev if e["event"] == "rrq_sent" and e.get("attempt", 1) == 1]
        regs = [e["t"] for e in ev if e["event"] == "registered"]
        lt = lost_times(json.loads((d / "probe-cn1-5001.json").read_text())["received"])
        for k, m in enumerate([m for m in r["moves"] if m["mn"] == "mn1"]):
            tl = m["walk"]["timeline_ms"]
            if k + 1 >= min(len(rrqs), len(regs)) or not all(
                    x in tl for x in ("mn_rrq_sent", "mn_registered", "tunnel_up", "ha_rekey_done")):
                continue
            t0 = (rrqs[k + 1] - tl["mn_rrq_sent"] / 1000) * 1e9
            if abs(t0 - (regs[k + 1] - tl["mn_registered"] / 1000) * 1e9) > 20 * MS:
                continue
            n += 1
            for mark in ("tunnel_up", "mn_registered", "ha_rekey_done"):
                tm = t0 + tl[mark] * MS
                h = hist.setdefault(mark, [0] * 20)
                for i in range(-10, 10):
                    h[i + 10] += (bisect_left(lt, tm + (i + 1) * 10 * MS)
                                  - bisect_left(lt, tm + i * 10 * MS))
    print(f"{side}: {n} moves; lost uplink packets per 10 ms, -100 .. +100 ms around each mark")
    for mark, h in hist.items():
        print(f"  {mark:14} " + " ".join(f"{v:3d}" for v in h))
