# ruff: noqa  (a measurement script kept as it was run)
"""Per-commit latency of StateStore.write, the checkpoint thread against the writer's
own automatic checkpoint (SQLite's default 1,000 pages: the code before), alternating
blocks in one process, same records (4 per registration, ~1 KB each, 10,000 users).

    python write_ab.py OUT.json [rounds] [registrations] [sync] [work_us]
"""
import json, os, sys, tempfile, time, statistics
import controller.adapters.state as state
from controller.adapters.state import StateStore

out = sys.argv[1]; rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
regs = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
sync = sys.argv[4] if len(sys.argv) > 4 else "normal"
# the rest of a registration's work between two flushes (CPU in this thread, GIL held): µs
work_us = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
ROLES = ("aaah", "ha", "aaaf:domain-a", "fa:fa1")

def record(i, role):
    return {"vpn_info": {"nai": f"u{i}@home.example", "blob": "k" * 850}, "expires": time.time() + 1800,
            "role": role, "i": i}

def run(variant):
    d = tempfile.mkdtemp(prefix="wab-")
    if variant == "inline":            # the code before: the writer checkpoints at 1,000 pages
        state.CHECKPOINT_BACKSTOP_PAGES = 1000
        store = StateStore(os.path.join(d, "vpn.db"), synchronous=sync, checkpoint_rows=10**12)
    else:   # "thread" (8,192 pages) or "threadN": the backstop at N pages
        state.CHECKPOINT_BACKSTOP_PAGES = int(variant[6:] or 8192)
        store = StateStore(os.path.join(d, "vpn.db"), synchronous=sync)
    lat = []; cpu0 = time.thread_time()
    for i in range(regs):
        t0 = time.perf_counter()
        for role in ROLES:     # one transaction per role, as the runtime's flush
            store.write([(role, f"u{i % 10000}@home.example", record(i, role))])
        t1 = time.perf_counter()
        lat.append((t1 - t0) * 1000)
        while (time.perf_counter() - t1) * 1e6 < work_us:
            pass
    cpu = time.thread_time() - cpu0
    wal = os.path.getsize(os.path.join(d, "vpn.db-wal")) if os.path.exists(os.path.join(d, "vpn.db-wal")) else 0
    store.close()
    lat.sort(); n = len(lat)
    return {"variant": variant, "median": round(lat[n // 2], 3), "p95": round(lat[int(n * .95)], 3),
            "p99": round(lat[int(n * .99)], 3), "p999": round(lat[int(n * .999)], 3), "max": round(lat[-1], 3),
            "mean": round(statistics.fmean(lat), 3), "writer_thread_cpu_us_per_reg": round(cpu / n * 1e6, 1),
            "checkpoints_by_thread": store.checkpoints, "wal_bytes_at_end": wal,
            "load": open("/proc/loadavg").read().split()[:3]}

res = []
for r in range(rounds):
    for v in (os.environ.get("VARIANTS") or "inline,thread").split(","):
        x = run(v); x["round"] = r; res.append(x); print(json.dumps(x), flush=True)
json.dump({"sync": sync, "work_us": work_us, "registrations": regs, "rounds": res}, open(out, "w"), indent=1)
