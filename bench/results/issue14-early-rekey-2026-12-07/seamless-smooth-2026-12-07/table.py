# ruff: noqa  (a measurement script kept as it was run)
"""One row per run of bench.handover_paired: medians of mn1 (mechanism) and mn2 (baseline)."""
import json, sys
def med(s, k):
    v = s.get(k) or {}
    return v.get("median") if isinstance(v, dict) else v
print("| run | code | CPU busy | downlink lost mn1 (mn2) | uplink lost mn1 (mn2) | downlink gap ms mn1 (mn2) | HA rekey done after FA tunnel up (ms) | mn1 moves > 20 uplink lost |")
print("|---|---|---|---|---|---|---|---|")
for f in sys.argv[1:]:
    d = json.load(open(f)); on, off = d["mechanism"], d["baseline"]
    big = sum(1 for m in d["moves"] if m["mn"] == "mn1" and m["lost"]["mn_to_cn"] > 20)
    big = f"{big} of {on['moves']}"
    print(f"| {f.split('/')[-1]} {d['machine']['time'][11:16]} | {d['code']} | {d.get('cpu_busy_pct')} % | "
          f"{med(on,'lost_cn_to_mn')} ({med(off,'lost_cn_to_mn')}) | {med(on,'lost_mn_to_cn')} ({med(off,'lost_mn_to_cn')}) | "
          f"{med(on,'gap_ms_cn_to_mn')} ({med(off,'gap_ms_cn_to_mn')}) | {med(on,'tunnel_up_to_ha_rekey_done_ms')} | {big} |")
