"""Per-hop times of the probes' first packets after each move (dumpcap in the gateways)."""

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, "/tmp/h14g")
OFF = time.time() - time.monotonic()
cap = Path("/tmp/h14g/cap")
D = Path(open(cap / "dir").read().split()[2])
res = json.load(open(cap / "run.json"))
MN = {"mn1": "10.10.0.100", "mn2": None}


# hop table: (gw, seq, direction, pkttype) -> first time (mono)
def load(gw):
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(cap / f"{gw}.pcapng"),
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "sll.pkttype",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
            "-e",
            "data.data",
        ],
        capture_output=True,
        text=True,
    ).stdout
    rows = {}
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) < 7 or not f[6]:
            continue
        t = float(f[0]) - OFF
        pk = f[1]
        src, dst = f[2], f[3]
        seq = int(f[6][:8], 16)
        key = (src, dst, seq, pk)
        rows.setdefault(key, t)
    return rows


caps = {gw: load(gw) for gw in ("fa1", "fa2", "ha", "cngw")}
print({gw: len(v) for gw, v in caps.items()})
# addresses
addrs = sorted({(k[0], k[1]) for k in caps["ha"]})
print("flows at ha:", addrs[:8])
json.dump(
    {gw: [[*k, v] for k, v in rows.items()] for gw, rows in caps.items()},
    open(cap / "hops.json", "w"),
)
