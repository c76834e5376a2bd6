# ruff: noqa  (a measurement script kept as it was run)
"""mn1's moves pooled over the runs of each side, by how its new FA brought the tunnel up
(prepared_check's per_move), with mn2's moves of the same turns as the baseline."""
import json, sys, statistics as st
from collections import defaultdict
for side in ("before", "after"):
    up, dn, base_up, small = defaultdict(list), defaultdict(list), defaultdict(list), defaultdict(int)
    for f in sorted(__import__("glob").glob(f"{side}-*.json")):
        d = json.load(open(f))
        pm = d["prepared_check"]["per_move"]
        m1 = [m for m in d["moves"] if m["mn"] == "mn1"]
        m2 = [m for m in d["moves"] if m["mn"] == "mn2"]
        for i, m in enumerate(m1):
            how = pm[i] if i > 0 else "first (standing)"
            up[how].append(m["lost"]["mn_to_cn"]); dn[how].append(m["lost"]["cn_to_mn"])
            base_up[how].append(m2[i]["lost"]["mn_to_cn"])
            small[how] += m["lost"]["mn_to_cn"] <= 2
    for how in up:
        print(f"{side:6} {how:16} n={len(up[how]):2}  mn1 uplink lost median {st.median(up[how]):6.1f}  "
              f"moves <= 2 lost {small[how]:2}  downlink median {st.median(dn[how]):5.1f}  "
              f"mn2 same turns uplink median {st.median(base_up[how]):6.1f}")
