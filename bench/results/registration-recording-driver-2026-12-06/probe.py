# ruff: noqa  (a measurement script kept as it was run)
# population probe: user/sys CPU, faults, ctx switches of the server per registration, and idle CPU
import sys, time, json
from bench.registration_server import Server
from bench.registration_load import LoadGenerator

def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        x = f.read().rsplit(")", 1)[1].split()
    tick = 100.0
    d = {"minflt": int(x[7]), "majflt": int(x[9]), "utime": int(x[11]) / tick, "stime": int(x[12]) / tick}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches", "VmRSS"):
                d[k] = int(v.split()[0])
    return d

users = int(sys.argv[1]); extra = sys.argv[2:]
srv = Server("--serve", "--users", str(users), *extra)
gen = LoadGenerator(srv.info, users)
pid = srv.info["pid"]
gen.closed_loop(16, max(1.0, min(users / 300.0, 30.0)), warmup=0.0)
srv.wait_idle(); srv.call(cmd="freeze")
out = {"users": users, "extra": extra}
a = stat(pid); time.sleep(4.0); b = stat(pid)
out["idle_per_s"] = {k: round((b[k] - a[k]) / 4.0, 4) for k in ("utime", "stime", "minflt", "voluntary_ctxt_switches")}
for rep in range(2):
    a = stat(pid); r = gen.closed_loop(8, 4.0); b = stat(pid)
    n = r["completed"]
    out[f"run{rep}"] = {"n": n, "rate": r["rate"], "cpu_us": r["server_cpu_us_per_reg"],
        **{k + "_per_reg": round((b[k] - a[k]) / n * (1e6 if k in ("utime", "stime") else 1), 2)
           for k in ("utime", "stime", "minflt", "majflt", "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")},
        "rss_kb": b["VmRSS"], "threads": r["server_thread_cpu_us_per_reg"]}
    srv.wait_idle()
import os
names={}
for t in os.listdir(f"/proc/{pid}/task"):
    names[f"{pid}/{t}"]=open(f"/proc/{pid}/task/{t}/comm").read().strip()
out["names"]=names
print(json.dumps(out))
srv.close() if hasattr(srv, "close") else None
