# ruff: noqa  (a measurement script kept as it was run)
"""Where in a move mn1's uplink packets were lost (a supplement to first_second.py, same
t_move and interpolated send times), split by the move's own marks:

- "to reply": sent in [t_move - 50 ms, rrp_sent + 20 ms): the link move, the new FA's
  tunnel, the uplink hold's release and the redirect replacing the punt (base), the
  reply (the race of issue 14's uplink hold falls here);
- "to rekey": sent in [rrp_sent + 20 ms, ha_rekey_done + 30 ms): the HA's promotion
  rekey of the standing CHILD_SA;
- "rest": sent in [max(those), t_move + 400 ms).

Per side (base / fix), pooled over the runs' moves: median, mean, and the moves with
none lost in the phase.  Moves whose marks lack rrp_sent or ha_rekey_done are left out.

    python phases.py runs/seamless-*.json
"""

import json
import statistics as st
import sys
from pathlib import Path

from first_second import MS, count, lost_times, run_dir

pooled = {}
for path in sys.argv[1:]:
    r = json.loads(Path(path).read_text())
    d = run_dir(path)
    side = Path(path).stem.split("-")[1]
    for mn, port in (("mn1", 5001), ("mn2", 5002)):
        ev = [json.loads(l) for l in (d / f"{mn}-events.jsonl").read_text().splitlines() if l.strip()]
        rrqs = [e["t"] for e in ev if e["event"] == "rrq_sent" and e.get("attempt", 1) == 1]
        regs = [e["t"] for e in ev if e["event"] == "registered"]
        lt = lost_times(json.loads((d / f"probe-cn1-{port}.json").read_text())["received"])
        for k, m in enumerate([m for m in r["moves"] if m["mn"] == mn]):
            tl = m["walk"]["timeline_ms"]
            if k + 1 >= min(len(rrqs), len(regs)) or not all(
                    x in tl for x in ("mn_rrq_sent", "mn_registered", "rrp_sent")):
                continue
            t0 = (rrqs[k + 1] - tl["mn_rrq_sent"] / 1000) * 1e9
            if abs(t0 - (regs[k + 1] - tl["mn_registered"] / 1000) * 1e9) > 20 * MS:
                continue
            a = t0 + (tl["rrp_sent"] + 20) * MS
            b = t0 + (tl["ha_rekey_done"] + 30) * MS if "ha_rekey_done" in tl else a
            lo = t0 - 50 * MS
            a = max(a, lo)
            b = max(a, b)
            end = max(b, t0 + 400 * MS)
            v = (count(lt, lo, a), count(lt, a, b), count(lt, b, end))
            pooled.setdefault((side, mn, "all runs"), []).append(v)
            if r.get("valid"):
                pooled.setdefault((side, mn, "valid runs"), []).append(v)

print("uplink (MN->CN) packets lost per move, by phase: median / mean / moves with 0")
for (side, mn, which), xs in sorted(pooled.items(), key=lambda kv: (kv[0][2], kv[0][:2])):
    cols = list(zip(*xs))
    print(f"  {which:10} {side:4} {mn} ({len(xs)} moves): " + "; ".join(
        f"{name} {st.median(c):g} / {st.mean(c):.1f} / {sum(1 for v in c if v == 0)}"
        for name, c in zip(("to reply", "to rekey", "rest"), cols)))
