import json, sys
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
from bench.handover_paired import whole_run
for f in sys.argv[1:]:
    r = json.load(open(f))
    mine = [m for m in r["moves"] if m["mn"] == "mn1"]; base = [m for m in r["moves"] if m["mn"] == "mn2"]
    print(f, "on", whole_run(r["probes"], "mn1", mine), "off", whole_run(r["probes"], "mn2", base))
