# ruff: noqa  (a measurement script kept as it was run)
"""Summarise this folder: per folder of alternating runs, the median server CPU µs per
registration (closed loop, 8 outstanding) of each label, each round's ratio to the first
label, the event-loop thread's share; Ir per registration from ir.txt.  Writes
summary.json and prints it.  The trees were `git archive` exports (their JSON says code
"unknown"): COMMITS names the commit of each label."""
import json, glob, os, statistics
HERE = os.path.dirname(os.path.abspath(__file__))
COMMITS = {
    "ab-loop": {"asyncio": "f895761", "uvloop": "f895761 --what-if uvloop", "split": "f895761 --split"},
    "ab-steps": {"base": "f895761", "memo": "56f4e65", "uvloop": "795c3bc"},
    "ab-final": {"before": "f895761", "after": "ba9080b", "after-inline": "ba9080b --what-if inline-gateways"},
    "ab-quiet": {"before": "f895761", "after": "ba9080b", "after-asyncio": "ba9080b --what-if asyncio-loop"},
}
out = {"commits": COMMITS, "folders": {}, "ir_per_registration_millions": {}}
for folder, labels in COMMITS.items():
    rows = {}
    for label in labels:
        runs = []
        for p in sorted(glob.glob(f"{HERE}/{folder}/{label}-[0-9]*.json")):
            r = json.load(open(p))
            s = r["saturation"][0]
            runs.append({"round": int(p.rsplit("-", 1)[1][:-5]), "cpu_us": s["server_cpu_us_per_reg"],
                         "rate": s["rate"], "loop_us": (s.get("server_thread_cpu_us_per_reg") or {}).get("mipvpn-loop"),
                         "load": r["machine"].get("loadavg"), "load_after": r.get("load_after")})
        runs.sort(key=lambda x: x["round"])
        rows[label] = runs
    first = next(iter(labels))
    summ = {}
    for label, runs in rows.items():
        base = {x["round"]: x["cpu_us"] for x in rows[first]}
        summ[label] = {"median_cpu_us": statistics.median(x["cpu_us"] for x in runs),
                       "cpu_us": [x["cpu_us"] for x in runs], "rate": [x["rate"] for x in runs],
                       "loop_thread_us": [x["loop_us"] for x in runs],
                       "ratio_to_" + first: [round(x["cpu_us"] / base[x["round"]], 3) for x in runs if x["round"] in base]}
    out["folders"][folder] = summ
for line in open(f"{HERE}/ir.txt"):
    if line.startswith("#") or not line.strip():
        continue
    parts = line.split()
    out["ir_per_registration_millions"][" ".join(parts[:-1])] = round(int(parts[-1]) / 100 / 1e6, 2)
json.dump(out, open(f"{HERE}/summary.json", "w"), indent=1)
for folder, summ in out["folders"].items():
    for label, s in summ.items():
        k = [k for k in s if k.startswith("ratio")][0]
        print(f"{folder:9s} {label:13s} median {s['median_cpu_us']:7.1f} us  {k} {s[k]}  rates {s['rate']}")
for k, v in out["ir_per_registration_millions"].items():
    print(f"Ir {v:5.2f} M  {k}")
