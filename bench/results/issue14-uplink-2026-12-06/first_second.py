# ruff: noqa  (a measurement script kept as it was run)
"""A supplement to bench.handover_paired's figures (its gap_ms and lost are unchanged):
per move, what the moving MN's own probes saw around its own link move, per direction.
The paired run's window of a move reaches to the midpoint of the same MN's next move
(~2-3 s), so the other MN's move in between, the preparation of the MN's next move
(~0.5 s after the reply: a standing CHILD_SA at the old FA, the live one re-asserted)
and the machine's stalls are all in it.  Here, from t_move (the emulated link move):

- "move": packets sent in [t_move - 50 ms, t_move + 400 ms) never received, and the
  largest interval between arrivals of the packets sent in it (ms);
- "after": packets sent in [t_move + 400 ms, t_move + 1,400 ms) never received.

A lost packet's send time: interpolated between its received neighbours (sequence
numbers), as mininet_scripts/probe.py does.  t_move: the MN client's first RRQ after the
move (mnN-events.jsonl, the probes' CLOCK_MONOTONIC) minus the move's ``mn_rrq_sent``
mark (ms after the move's start, in the JSON's walk).  The run directory: the log's
"run directory kept" line.

    python first_second.py runs/seamless-*.json
"""

import json
import re
import statistics as st
import sys
from bisect import bisect_left
from pathlib import Path

MS = 1_000_000


def run_dir(json_path):
    log = Path(json_path).with_suffix(".log").read_text()
    return Path(re.search(r"run directory kept: (\S+)", log).group(1))


def lost_times(rx):
    """Interpolated send times of the sequence numbers never received."""
    got = sorted({(q, s) for q, s, _r in rx})
    out = []
    for (a, ta), (b, tb) in zip(got, got[1:]):
        for q in range(a + 1, b):
            out.append(ta + (tb - ta) * (q - a) / (b - a))
    return sorted(out)


def count(ts, lo, hi):
    return bisect_left(ts, hi) - bisect_left(ts, lo)


def gap(rx_by_send, sends, lo, hi):
    i, j = bisect_left(sends, lo), bisect_left(sends, hi)
    recv = sorted(r for r in rx_by_send[i:j])
    return max((b - a for a, b in zip(recv, recv[1:])), default=0) / MS


def prep(rx):
    rows = sorted((s, r) for _q, s, r in rx)
    return lost_times(rx), [s for s, _ in rows], [r for _, r in rows]


def main():
    rows = []
    for path in sys.argv[1:]:
        r = json.loads(Path(path).read_text())
        d = run_dir(path)
        side = Path(path).stem.split("-")[1]
        port = {"mn1": 5001, "mn2": 5002}
        data = {}
        for mn in ("mn1", "mn2"):
            ev = [json.loads(l) for l in (d / f"{mn}-events.jsonl").read_text().splitlines() if l.strip()]
            rrqs = [e["t"] for e in ev if e["event"] == "rrq_sent" and e.get("attempt", 1) == 1]
            regs = [e["t"] for e in ev if e["event"] == "registered"]
            up = json.loads((d / f"probe-cn1-{port[mn]}.json").read_text())["received"]
            down = json.loads((d / f"probe-{mn}-{port[mn]}.json").read_text())["received"]
            data[mn] = (rrqs, regs, prep(up), prep(down))
        out = {"mn1": [], "mn2": []}
        skipped = 0
        seen = {"mn1": 0, "mn2": 0}
        for m in r["moves"]:
            mn = m["mn"]
            tl = m["walk"]["timeline_ms"]
            k = seen[mn]; seen[mn] += 1
            rrqs, regs, up, down = data[mn]
            if k + 1 >= min(len(rrqs), len(regs)) or "mn_rrq_sent" not in tl \
                    or "mn_registered" not in tl:
                skipped += 1
                continue
            t0 = (rrqs[k + 1] - tl["mn_rrq_sent"] / 1000) * 1e9
            # the same t_move from the client's "registered": a move where they disagree
            # (an RRQ retransmitted, a mark missing) is left out
            if abs(t0 - (regs[k + 1] - tl["mn_registered"] / 1000) * 1e9) > 20 * MS:
                skipped += 1
                continue
            vals = []
            for lt, sends, recvs in (up, down):
                vals += [count(lt, t0 - 50 * MS, t0 + 400 * MS),
                         gap(recvs, sends, t0 - 50 * MS, t0 + 400 * MS),
                         count(lt, t0 + 400 * MS, t0 + 1400 * MS)]
            out[mn].append(vals)
        rows.append((Path(path).stem, side, out))
        if skipped:
            print(f"{Path(path).stem}: {skipped} move(s) left out (t_move not consistent)")

    names = ["move lost up", "move gap up", "after lost up",
             "move lost down", "move gap down", "after lost down"]
    print(f"{'run':18} {'MN':4} n   " + "  ".join(f"{n:>15}" for n in names) + "  up 0 lost in move")
    agg = {}
    for name, side, out in rows:
        for mn in ("mn1", "mn2"):
            xs = out[mn]
            if not xs:
                continue
            meds = [st.median(c) for c in zip(*xs)]
            zero = sum(1 for v in xs if v[0] == 0)
            print(f"{name:18} {mn:4} {len(xs):2}  " + "  ".join(f"{v:>15.1f}" for v in meds)
                  + f"  {zero}/{len(xs)}")
            agg.setdefault((side, mn), []).append(meds)
            agg.setdefault((side, mn, "all"), []).extend(xs)
    print("\nmedian over the runs of each side (of the per-run medians):")
    for key, vals in sorted((k, v) for k, v in agg.items() if len(k) == 2):
        print(f"  {key[0]:4} {key[1]} ({len(vals)} runs): " + ", ".join(
            f"{n} {st.median(c):.1f}" for n, c in zip(names, zip(*vals))))
    print("\nall moves of each side pooled: median (mean)")
    for key, vals in sorted((k, v) for k, v in agg.items() if len(k) == 3):
        print(f"  {key[0]:4} {key[1]} ({len(vals)} moves): " + ", ".join(
            f"{n} {st.median(c):.1f} ({st.mean(c):.1f})" for n, c in zip(names, zip(*vals))))


if __name__ == "__main__":
    main()
