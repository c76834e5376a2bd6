# ruff: noqa  (a measurement script kept as it was run)
"""One probe on loopback sending to itself (mininet_scripts.probe.run_probe), 2 s at 500
and at 1,000 pkt/s: its CPU share and how late its sends went out.  Writes JSON.
Usage: python probe_alone.py OUT.json  (from the repository root)"""
import json, sys, time
from bench.common import machine
from mininet_scripts import probe
out = {"machine": machine(), "runs": []}
for rate in (500, 1000):
    c0, t0 = time.process_time(), time.time()
    r = probe.run_probe("127.0.0.1", "127.0.0.1", 47124, rate, 2.0, linger=0.05)
    cpu = (time.process_time() - c0) / (time.time() - t0) * 100
    iv = int(1e9 / rate)
    late = sorted((t - (r.start_ns + s * iv)) / 1000 for s, t in zip(r.seqs, r.send_ns))
    n = len(late)
    out["runs"].append({"rate": rate, "sent": r.sent, "received": n, "cpu_pct": round(cpu, 1),
                        "send_late_us": {"p50": round(late[n // 2]), "p99": round(late[int(n * .99)]),
                                         "max": round(late[-1])}})
out["machine"].pop("cpu_jiffies", None)
print(json.dumps(out["runs"]))
open(sys.argv[1], "w").write(json.dumps(out, indent=2))
