# ruff: noqa  (a measurement script kept as it was run)
import os, time, sys, json
out = open(sys.argv[1], "w")
def cpu():
    f = open("/proc/stat").readline().split()[1:]
    v = list(map(int, f)); return sum(v), v[3] + v[4]
t_end = time.time() + float(sys.argv[2])
prev = cpu()
while time.time() < t_end:
    time.sleep(0.5)
    rows = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit(): continue
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError: continue
        if not exe.endswith("charon"): continue
        try:
            cmd = open(f"/proc/{pid}/cmdline").read()
            env = open(f"/proc/{pid}/environ").read()
            name = [e for e in env.split("\0") if e.startswith("STRONGSWAN_CONF")]
            udp = open(f"/proc/{pid}/net/udp").read().splitlines()[1:]
            snmp = [l for l in open(f"/proc/{pid}/net/snmp").read().splitlines() if l.startswith("Udp:")]
        except OSError: continue
        socks = []
        for l in udp:
            p = l.split()
            port = int(p[1].split(":")[1], 16)
            rxq = int(p[4].split(":")[1], 16)
            socks.append((port, rxq, int(p[-1])))
        rows[pid] = {"conf": name[0][-40:] if name else "", "udp": socks, "snmp": snmp[1]}
    c = cpu(); busy = 1 - (c[1]-prev[1]) / max(1, c[0]-prev[0]); prev = c
    out.write(json.dumps({"t": time.time(), "busy": round(busy, 3), "charon": rows}) + "\n"); out.flush()
