"""Time mn_client.install_default_route (the MN's switch to the new FA after its RRP):
a veth in a private namespace, 30 calls, alternating two routers.

    unshare -n .venv/bin/python bench/results/issue14-first-packet/route_install.py \
        > bench/results/issue14-first-packet/route_install.json

(from the repository root)."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.getcwd())


def main() -> None:
    subprocess.run("ip link add h14cv0 type veth peer name h14cv1; ip link set h14cv0 up; "
                   "ip link set h14cv1 up; ip addr add 10.10.0.100/32 dev h14cv0",
                   shell=True, check=True)
    idx = socket.if_nametoindex("h14cv0")
    t0 = time.perf_counter()
    import pyroute2

    from mininet_scripts.mn_client import install_default_route
    first_import = (time.perf_counter() - t0) * 1e3
    ts = []
    for i in range(30):
        t = time.perf_counter()
        install_default_route(idx, "10.21.0.1" if i % 2 else "10.22.0.1",
                              "02:00:00:00:00:0%d" % (1 + i % 2))
        ts.append((time.perf_counter() - t) * 1e3)
    print(json.dumps({"import_ms": round(first_import, 2), "first_call_ms": round(ts[0], 2),
                      "median_ms": round(statistics.median(ts[1:]), 2),
                      "max_ms": round(max(ts[1:]), 2), "calls": [round(x, 2) for x in ts],
                      "loadavg": os.getloadavg(),
                      "pyroute2": getattr(pyroute2, "__version__", "?")}))


if __name__ == "__main__":
    main()
