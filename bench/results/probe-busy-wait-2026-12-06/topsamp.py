# ruff: noqa  (a measurement script kept as it was run)
import os, time, sys, collections
def snap():
    d = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit(): continue
        try:
            s = open(f"/proc/{pid}/stat").read()
            cmd = open(f"/proc/{pid}/cmdline").read().replace("\0", " ")[:90]
        except OSError: continue
        f = s[s.rfind(")")+2:].split()
        d[pid] = (int(f[11]) + int(f[12]), cmd or s[s.find("(")+1:s.rfind(")")])
    return d
time.sleep(float(sys.argv[1]))
a = snap(); t = time.time(); time.sleep(float(sys.argv[2])); b = snap(); dt = time.time() - t
tot = collections.Counter()
for pid, (ticks, cmd) in b.items():
    if pid in a: 
        tot[(pid, cmd)] += ticks - a[pid][0]
for (pid, cmd), v in tot.most_common(25):
    print(f"{v/dt:6.1f}%  {pid} {cmd}")
print("sum", sum(tot.values())/dt)
