"""Medians of the seamless-smooth MN's (mn1's) moves per run file, from each move's
``walk.timeline_ms``: python3 medians.py DIR (reads DIR/N-before.json, N-after.json)."""
import glob
import json
import statistics as st
import sys

SEGMENTS = (("RRQ->tunnel up", "rrq_at_fa", "tunnel_up"),
            ("AMA->HA binding", "ama_at_fa", "ha_bind"),
            ("HA tunnel step", "ha_bind", "ha_tunnel_set"),
            ("FA tunnel step", "flows_installed", "tunnel_up"),
            ("RRQ->HA rekey done", "rrq_at_fa", "ha_rekey_done"))


def med(moves, a, b):
    v = [m["walk"]["timeline_ms"][b] - m["walk"]["timeline_ms"][a] for m in moves
         if a in m["walk"]["timeline_ms"] and b in m["walk"]["timeline_ms"]]
    return round(st.median(v), 1) if v else None


print("| run | busy % | " + " | ".join(s[0] for s in SEGMENTS)
      + " | downlink gap | downlink lost |")
print("|---" * (len(SEGMENTS) + 4) + "|")
for f in sorted(glob.glob(sys.argv[1] + "/*-*.json")):
    d = json.load(open(f))
    ms = [m for m in d["moves"] if m["mn"] == "mn1"]
    gaps = [m["gap_ms"]["cn_to_mn"] for m in ms if m["gap_ms"].get("cn_to_mn") is not None]
    lost = [m["lost"]["cn_to_mn"] for m in ms]
    print(f"| {f.split('/')[-1][:-5]} | {d.get('cpu_busy_pct')} | "
          + " | ".join(str(med(ms, a, b)) for _, a, b in SEGMENTS)
          + f" | {round(st.median(gaps), 1)} | {st.median(lost)} |")
