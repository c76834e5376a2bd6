# ruff: noqa  (a measurement script kept as it was run)
"""Pairs of ab/{before,after}-N.json: server CPU µs per registration at 8 outstanding,
by thread, renewals vs first registrations, gateway calls; the ratio after/before per
pair and the medians.  Usage: python summary.py [ab dir] > summary.txt"""
import json, statistics, sys
from pathlib import Path
d = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "ab")
rows, ratios = [], []
def sat(f):
    r = json.loads(f.read_text())
    s = next(x for x in r["saturation"] if x["window"] == 8)
    return r, s
n = 1
out = {"before": [], "after": []}
while (d / f"before-{n}.json").exists() and (d / f"after-{n}.json").exists():
    cells = {}
    for label in ("before", "after"):
        r, s = sat(d / f"{label}-{n}.json")
        cells[label] = s
        out[label].append(s["server_cpu_us_per_reg"])
        th = s.get("server_thread_cpu_us_per_reg", {})
        print(f"pair {n} {label:6s} server {s['server_cpu_us_per_reg']:7.1f} us/reg  "
              f"loop {th.get('mipvpn-loop', 0):7.1f}  gateway threads "
              f"{sum(v for k, v in th.items() if k.startswith('vici-')):6.1f}  rate {s['rate']:6.0f}/s  "
              f"first {s.get('first_registrations')} renewals {s.get('renewals')}  "
              f"calls/reg {s.get('gateway_calls_per_reg')}")
    ratio = cells["after"]["server_cpu_us_per_reg"] / cells["before"]["server_cpu_us_per_reg"]
    ratios.append(ratio)
    print(f"pair {n} after/before {ratio:.3f}")
    n += 1
print(f"median before {statistics.median(out['before']):.0f} us/reg, after "
      f"{statistics.median(out['after']):.0f} us/reg; ratios {[round(x, 3) for x in ratios]}, "
      f"median {statistics.median(ratios):.3f}")
