# ruff: noqa  (a measurement script kept as it was run)
"""Per run of runs/seamless-{base,fix}-N.json: the side, code, build dir, load, and for
mn1 (seamless on) and mn2 (off) the medians of the gap and of the packets lost per move
(MN->CN / CN->MN), mn1/mn2 of the gap medians, and how many of mn1's moves had their
uplink held (an ``uplink_held_first`` mark: base only, the fix holds nothing); then the
medians over the runs of each side.

    python summary.py runs/seamless-*.json
"""

import json
import statistics as st
import sys
from pathlib import Path


def med(side, key):
    return (side.get(key) or {}).get("median")


rows = []
for path in sys.argv[1:]:
    r = json.loads(Path(path).read_text())
    name = Path(path).stem
    side = name.split("-")[1]
    held = sum(1 for m in r["moves"] if m["mn"] == "mn1"
               and "uplink_held_first" in ((m.get("walk") or {}).get("timeline_ms") or {}))
    v = {}
    for who, mn in (("mechanism", "mn1"), ("baseline", "mn2")):
        for k in ("gap_ms", "lost"):
            for d in ("mn_to_cn", "cn_to_mn"):
                v[f"{mn} {k} {d}"] = med(r[who], f"{k}_{d}")
    for d in ("mn_to_cn", "cn_to_mn"):
        v[f"ratio gap {d}"] = v[f"mn1 gap_ms {d}"] / v[f"mn2 gap_ms {d}"]
    n1 = sum(1 for m in r["moves"] if m["mn"] == "mn1")
    rows.append(dict(name=name, side=side, code=r["code"],
                     build=r["machine"]["build"].get("build_dir", "?"),
                     load=(r["machine"]["loadavg"][0], (r.get("load_after") or [None])[0]),
                     valid=r.get("valid"), held=f"{held}/{n1}", v=v))

hdr = (f"{'run':18} {'code':8} {'load':10} {'held':6} {'mn1 gap up/down':>16} "
       f"{'mn2 gap up/down':>16} {'ratio up/down':>13} {'mn1 lost up/down':>16} "
       f"{'mn2 lost up/down':>16} valid build")
print(hdr)
for r in rows:
    v = r["v"]
    pr = lambda a, b, f="{:.1f}": f"{f.format(v[a])} / {f.format(v[b])}"
    ld = f"{r['load'][0]:.1f}->{r['load'][1]:.1f}"
    print(f"{r['name']:18} {r['code']:8} {ld:10} {r['held']:6} "
          f"{pr('mn1 gap_ms mn_to_cn', 'mn1 gap_ms cn_to_mn'):>16} "
          f"{pr('mn2 gap_ms mn_to_cn', 'mn2 gap_ms cn_to_mn'):>16} "
          f"{pr('ratio gap mn_to_cn', 'ratio gap cn_to_mn', '{:.2f}'):>13} "
          f"{pr('mn1 lost mn_to_cn', 'mn1 lost cn_to_mn', '{:g}'):>16} "
          f"{pr('mn2 lost mn_to_cn', 'mn2 lost cn_to_mn', '{:g}'):>16} {r['valid']} {r['build']}")

print("\nmedian over the runs of each side (of the per-run medians):")
keys = ["ratio gap mn_to_cn", "ratio gap cn_to_mn", "mn1 gap_ms mn_to_cn", "mn1 gap_ms cn_to_mn",
        "mn2 gap_ms mn_to_cn", "mn2 gap_ms cn_to_mn", "mn1 lost mn_to_cn", "mn1 lost cn_to_mn",
        "mn2 lost mn_to_cn", "mn2 lost cn_to_mn"]
for only_valid in (False, True):
    if only_valid:
        print("the same, valid runs only (the tool's check: >= 90 % of mn1's moves on the "
              "prepared IKE_SA):")
    for side in ("base", "fix"):
        sel = [r for r in rows if r["side"] == side and (r["valid"] or not only_valid)]
        if sel:
            print(f"  {side} ({len(sel)} runs): " + ", ".join(
                f"{k} {st.median(r['v'][k] for r in sel):.2f}" for k in keys))
