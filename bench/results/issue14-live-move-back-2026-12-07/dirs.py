# ruff: noqa  (a measurement script kept as it was run)
"""Per run: mn1's and mn2's loss per direction of move, and how mn1's new FA brought the tunnel up."""
import json, sys, statistics as st
for f in sys.argv[1:]:
    d = json.load(open(f))
    pm = (d.get("prepared_check") or {}).get("per_move") or []
    print(f.split('/')[-1], d["code"], d["machine"]["time"][11:16], f"busy {d.get('cpu_busy_pct')} %")
    for mn in ("mn1", "mn2"):
        mv = [m for m in d["moves"] if m["mn"] == mn]
        for a, b in (("fa1", "fa2"), ("fa2", "fa1")):
            sel = [(i, m) for i, m in enumerate(mv) if m["from"] == a and m["to"] == b]
            up = [m["lost"]["mn_to_cn"] for _, m in sel]; dn = [m["lost"]["cn_to_mn"] for _, m in sel]
            hows = sorted({pm[i] for i, _ in sel if i < len(pm)}) if mn == "mn1" else ""
            print(f"  {mn} {a}>{b}: uplink lost median {st.median(up)} {up}; downlink median {st.median(dn)} {dn} {hows}")
