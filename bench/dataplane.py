"""Data plane: tunnel throughput through the steered path vs bare strongSwan tunnels,
and OpenFlow messages per handover.

Brings up the default topology as ``mipvpn demo`` does (private OVS, controller
process, Mininet, one charon per gateway), registers mn1 through fa1, then in the same
run measures TCP throughput with iperf3 (started in the hosts with a timeout, stopped
by PID; never Mininet's iperf helpers):

- ``steered``: mn1 -> cn1 through the controller's path: access switch steering ->
  FA1 -> IPsec FA1<->HA -> HA -> IPsec HA<->CN-GW (static) -> CN-GW -> cn1;
- ``bare fa1<->ha``: a strongSwan tunnel loaded by hand (VICI, same IKE/ESP proposals,
  same kernel-libipsec) between the same two gateway namespaces, FA1 inside address ->
  HA inside address;
- ``bare ha<->cngw``: the same for the path's second leg;
- ``plain fa1->ha``: no IPsec (the emulation's ceiling).

Then ``--moves`` handovers fa1 <-> fa2 while ``dumpcap`` records the OpenFlow channel
(loopback, TCP 6653): FLOW_MOD, METER_MOD, GROUP_MOD and BARRIER_REQUEST per move and
per switch, checked against the runtime's ``flow_mods`` counter (``/v1/counters``).

Runs in a private network namespace (re-executes itself under ``unshare -n``).  Root.

    python -m bench.dataplane [--seconds 5] [--repeat 3] [--moves 6] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mininet_scripts.demo import _stop_proc
from bench.common import (out_paths, print_machine, pyplot, reexec_in_private_netns,
                          save_plot, summary, table, write_json)

IPERF_PORT = 5211
OF_TYPES = {14: "FLOW_MOD", 15: "GROUP_MOD", 20: "BARRIER_REQUEST", 29: "METER_MOD",
            13: "PACKET_OUT"}


def iperf(server: Any, server_ip: str, client: Any, client_ip: str, seconds: float,
          port: int = IPERF_PORT, mss: int = 0) -> dict[str, Any]:
    """One iperf3 TCP run client -> server; Mbit/s received, retransmits.  ``mss``:
    the client's TCP maximum segment size (0: the kernel's choice)."""
    srv = server.popen(["timeout", str(int(seconds + 15)), "iperf3", "-s", "-1", "-B",
                        server_ip, "-p", str(port)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        cli = client.popen(["timeout", str(int(seconds + 10)), "iperf3", "-c", server_ip,
                            "-B", client_ip, "-p", str(port), "-t", str(seconds), "-J",
                            *(["-M", str(mss)] if mss else [])],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = cli.communicate(timeout=seconds + 12)
        except subprocess.TimeoutExpired:
            _stop_proc(cli)
            return {"error": "iperf3 client timed out"}
    finally:
        _stop_proc(srv)
    try:
        data = json.loads(out)
    except ValueError:
        return {"error": (err or out)[-300:].decode(errors="replace")}
    if "error" in data:
        return {"error": data["error"]}
    end = data["end"]
    return {"mbit_s": round(end["sum_received"]["bits_per_second"] / 1e6, 1),
            "retransmits": end["sum_sent"].get("retransmits"),
            "cpu_sender_pct": round(end["cpu_utilization_percent"]["host_total"], 1),
            "cpu_receiver_pct": round(end["cpu_utilization_percent"]["remote_total"], 1)}


_TX_OFF = """import sys
from pyroute2.ethtool import Ethtool
e = Ethtool()
f = e.get_features(sys.argv[1])
for k in ("tx-checksum-ip-generic", "tx-checksum-ipv4", "tx-tcp-segmentation",
          "tx-generic-segmentation"):
    if k in f.features and f.features[k].available:
        f.features[k].enable = False
e.set_features(sys.argv[1], f)
"""


def tx_offload_off(host: Any, iface: str, run_dir: Path) -> str:
    """Turn TX checksum/segmentation offload off on ``iface`` inside ``host`` (a
    diagnostic: the steered path forwards the hosts' packets through a userspace TUN)."""
    script = run_dir / "tx_offload_off.py"
    script.write_text(_TX_OFF)
    return str(host.cmd(f"{sys.executable} {script} {iface} 2>&1"))


def bare_tunnel(run_dir: Path, topo: Any, a: str, b: str, a_ip: str, b_ip: str,
                security: Any) -> tuple[Any, Any, str]:
    """Load a tunnel a <-> b by hand through VICI (selectors a_ip/32 <-> b_ip/32),
    initiated by ``a``.  Returns both gateway drivers and the tunnel id."""
    from controller.adapters.strongswan import StrongSwanGateway
    from controller.core.vpn import QosSpec, TunnelEnd, TunnelSide
    from controller.runtime import vici_socket
    tid = f"bench/{a}-{b}"
    ea = TunnelEnd(a, topo.gateways[a].core.ip, (f"{a_ip}/32",))
    eb = TunnelEnd(b, topo.gateways[b].core.ip, (f"{b_ip}/32",))
    psk = secrets.token_bytes(32)
    ga = StrongSwanGateway(a, vici_socket(run_dir, a))
    gb = StrongSwanGateway(b, vici_socket(run_dir, b))
    gb.add_tunnel(TunnelSide(tid, eb, ea, psk, security, QosSpec(), initiator=False))
    ga.add_tunnel(TunnelSide(tid, ea, eb, psk, security, QosSpec(), initiator=True))
    return ga, gb, tid


def count_openflow(pcap: Path) -> list[tuple[float, int, int]]:
    """(time, controller-side TCP port... as switch id, OF type) of every OpenFlow
    message the controller sent, from a capture of TCP port 6653 (tshark decodes)."""
    if shutil.which("tshark") is None or not pcap.exists():
        return []
    proc = subprocess.run(
        ["tshark", "-r", str(pcap), "-d", "tcp.port==6653,openflow", "-Y",
         "tcp.srcport==6653 && openflow_v4", "-T", "fields", "-e", "frame.time_epoch",
         "-e", "tcp.dstport", "-e", "openflow_v4.type"],
        capture_output=True, text=True, timeout=120)
    out = []
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[2]:
            continue
        for typ in parts[2].split(","):
            out.append((float(parts[0]), int(parts[1]), int(typ)))
    return out


def run(seconds: float, repeat: int, moves: int, settle: float, keep_dir: bool,
        mss: int = 1200) -> dict[str, Any]:
    from controller.core.vpn import SecuritySpec
    from mininet_scripts.demo import rest_get, wait_for
    from mininet_scripts.scenario import ScenarioRun

    spec = {"name": "bench-dataplane", "topology": "topology/default.yaml",
            "_source": "bench.dataplane", "mobile_nodes": ["mn1"],
            "timeline": [{"sleep": 0.5}]}
    run_dir = Path(tempfile.mkdtemp(prefix="mipvpn-bench-dataplane-"))
    os.chmod(run_dir, 0o755)
    sr = ScenarioRun(spec, run_dir, "127.0.0.1:8080", 6653)
    res: dict[str, Any] = {"iperf_seconds": seconds, "repeat": repeat}
    bare: list[tuple[Any, Any, str]] = []
    try:
        sr.run()
        topo, net = sr.topo, sr.demo.mnet
        mn = topo.mobile_nodes["mn1"]
        cn = topo.hosts["cn1"]
        prof = topo.vpn_profiles.get(mn.nai)
        sec = SecuritySpec(prof.security.ike, prof.security.esp) if prof else SecuritySpec()
        res["proposals"] = {"ike": sec.ike, "esp": sec.esp}
        gw = topo.gateways
        h = net.host
        print("loading bare tunnels fa1<->ha and ha<->cngw (VICI, by hand)", flush=True)
        bare.append(bare_tunnel(run_dir, topo, "fa1", "ha", gw["fa1"].inside.ip,
                                gw["ha"].inside.ip, sec))
        bare.append(bare_tunnel(run_dir, topo, "cngw", "ha", gw["cngw"].inside.ip,
                                gw["ha"].inside.ip, sec))
        cases = [
            ("steered mn1->cn1 (FA1=HA=CN-GW)", h("cn1"), cn.ip, h("mn1"), mn.home_address, 0),
            ("bare tunnel fa1->ha", h("ha"), gw["ha"].inside.ip, h("fa1"), gw["fa1"].inside.ip,
             0),
            ("bare tunnel cngw->ha", h("ha"), gw["ha"].inside.ip, h("cngw"),
             gw["cngw"].inside.ip, 0),
            # diagnostic: the steered path with the MN's segments small enough for the
            # tunnels (no path-MTU discovery needed)
            (f"steered mn1->cn1, MSS {mss}", h("cn1"), cn.ip, h("mn1"), mn.home_address, mss),
            # the emulation's ceiling: one OVS hop, no IPsec (the core carries IPsec only)
            ("plain cn1->cngw (no IPsec)", h("cngw"), gw["cngw"].inside.ip, h("cn1"), cn.ip,
             0),
        ]
        runs: dict[str, list[dict[str, Any]]] = {c[0]: [] for c in cases}
        for k in range(repeat):           # interleaved, so drift hits every case alike
            for name, srv, sip, cli, cip, seg in cases:
                r = iperf(srv, sip, cli, cip, seconds, mss=seg)
                runs[name].append(r)
                print(f"  [{k + 1}/{repeat}] {name:34s} "
                      f"{r.get('mbit_s', r.get('error'))} Mbit/s", flush=True)
        # diagnostics: the same steered path once the hosts (then the gateways too)
        # compute their own checksums and segment themselves
        steps = [("steered mn1->cn1, host TX offload off",
                  [("mn1", "mn1-eth0"), ("cn1", "cn1-eth0")]),
                 ("steered mn1->cn1, host+gateway TX offload off",
                  [(g, f"{g}-{side}") for g in ("fa1", "ha", "cngw")
                   for side in ("core", "in")])]
        for name, ifaces in steps:
            for host, iface in ifaces:
                err = tx_offload_off(h(host), iface, run_dir).strip()
                if err:
                    print(f"  tx offload off on {iface}: {err[-200:]}", flush=True)
            runs[name] = []
            for k in range(repeat):
                r = iperf(h("cn1"), cn.ip, h("mn1"), mn.home_address, seconds)
                runs[name].append(r)
                print(f"  [{k + 1}/{repeat}] {name:34s} "
                      f"{r.get('mbit_s', r.get('error'))} Mbit/s", flush=True)
        # the bare tunnels again, under the same interface settings
        for name, srv, sip, cli, cip, seg in cases[1:3]:
            name2 = f"{name}, TX offload off"
            runs[name2] = [iperf(srv, sip, cli, cip, seconds) for _ in range(repeat)]
            print(f"  {name2:44s} {[r.get('mbit_s') for r in runs[name2]]} Mbit/s",
                  flush=True)
        res["throughput"] = {n: {"runs": rs, "mbit_s": summary(
            [r["mbit_s"] for r in rs if "mbit_s" in r], 1)} for n, rs in runs.items()}
        steered = res["throughput"][cases[0][0]]["mbit_s"]["median"]
        b1 = res["throughput"][cases[1][0]]["mbit_s"]["median"]
        b2 = res["throughput"][cases[2][0]]["mbit_s"]["median"]
        if steered and b1:
            res["ratio_steered_to_bare_fa1_ha"] = round(steered / b1, 3)
        if steered and b1 and b2:
            res["ratio_steered_to_slower_bare_leg"] = round(steered / min(b1, b2), 3)
        thr = res["throughput"]
        s_off = thr.get("steered mn1->cn1, host+gateway TX offload off", {}).get(
            "mbit_s", {}).get("median")
        b_off = thr.get(f"{cases[1][0]}, TX offload off", {}).get("mbit_s", {}).get("median")
        if s_off and b_off:
            res["ratio_steered_to_bare_fa1_ha_tx_offload_off"] = round(s_off / b_off, 3)
        # ---------------------------------------------------------- flow-mods per move
        res["openflow"] = flow_mods_per_move(sr, run_dir, moves, settle, rest_get, wait_for)
    finally:
        for ga, gb, tid in bare:
            for g in (ga, gb):
                try:
                    g.remove_tunnel(tid)
                except Exception:
                    pass
                g.close()
        sr.close()
        if keep_dir:
            print(f"run directory kept: {run_dir}", flush=True)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    return res


def flow_mods_per_move(sr: Any, run_dir: Path, moves: int, settle: float, rest_get: Any,
                       wait_for: Any) -> dict[str, Any]:
    pcap = run_dir / "openflow.pcapng"
    cap = None
    if shutil.which("dumpcap"):
        cap = subprocess.Popen(["dumpcap", "-q", "-i", "lo", "-f", "tcp port 6653", "-w",
                                str(pcap)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    rest = sr.demo.rest
    before = rest_get(rest, "/v1/counters")["runtime"]["flow_mods"]
    windows = []
    for k in range(moves):
        to = "acc2" if k % 2 == 0 else "acc1"
        t0 = time.time()
        sr._move("mn1", to, 2, 15.0)
        time.sleep(settle)
        windows.append((t0, time.time()))
    after = rest_get(rest, "/v1/counters")["runtime"]["flow_mods"]
    out: dict[str, Any] = {"moves": moves,
                           "flow_mods_counter_per_move": round((after - before) / moves, 2)}
    if cap is not None:
        time.sleep(0.5)
        _stop_proc(cap)
        msgs = count_openflow(pcap)
        per_move = []
        for t0, t1 in windows:
            inside = [(port, typ) for t, port, typ in msgs if t0 <= t < t1]
            counts: dict[str, int] = {}
            switches: dict[str, set[int]] = {}
            for port, typ in inside:
                name = OF_TYPES.get(typ, f"type{typ}")
                counts[name] = counts.get(name, 0) + 1
                switches.setdefault(name, set()).add(port)
            per_move.append({"counts": counts,
                             "switches": {k: len(v) for k, v in switches.items()}})
        out["captured_per_move"] = per_move
        for name in ("FLOW_MOD", "METER_MOD", "GROUP_MOD", "BARRIER_REQUEST", "PACKET_OUT"):
            out[f"{name.lower()}_per_move"] = summary(
                [m["counts"].get(name, 0) for m in per_move], 2)
        out["switches_touched_per_move"] = summary(
            [m["switches"].get("FLOW_MOD", 0) for m in per_move], 2)
    return out


def plot(res: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(8, 4))
    names = list(res["throughput"])
    vals = [res["throughput"][n]["mbit_s"]["median"] or 0 for n in names]
    ax.barh(names, vals)
    for i, v in enumerate(vals):
        ax.text(v, i, f" {v:,.0f}", va="center")
    ax.set_xscale("log")
    ax.set_xlabel("TCP Mbit/s (iperf3, median)")
    ax.set_title(f"steered/bare = {res.get('ratio_steered_to_bare_fa1_ha')}")
    save_plot(fig, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.dataplane", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="iperf3 duration per run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case (interleaved)")
    ap.add_argument("--moves", type=int, default=6, help="moves for the flow-mod count")
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--keep-dir", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.dataplane needs root (Mininet, Open vSwitch, strongSwan)",
              file=sys.stderr)
        return 2
    if shutil.which("iperf3") is None:
        print("iperf3 not found (apt-get install iperf3)", file=sys.stderr)
        return 2
    code = reexec_in_private_netns([sys.executable, "-m", "bench.dataplane",
                                    *(argv if argv is not None else sys.argv[1:])])
    if code is not None:
        return code
    m = print_machine()
    res = run(args.seconds, args.repeat, args.moves, args.settle, args.keep_dir)
    res = {"benchmark": "dataplane", "machine": m, **res}
    print()
    rows = [[n, v["mbit_s"]["median"], v["mbit_s"]["max"],
             sum(1 for r in v["runs"] if "error" in r)] for n, v in res["throughput"].items()]
    print(table(rows, ["TCP, iperf3", "median Mbit/s", "max", "errors"]))
    print(f"ratio steered / bare fa1<->ha: {res.get('ratio_steered_to_bare_fa1_ha')} "
          f"(target >= 0.9); steered / slower bare leg: "
          f"{res.get('ratio_steered_to_slower_bare_leg')}; with TX offload off on hosts "
          f"and gateways: {res.get('ratio_steered_to_bare_fa1_ha_tx_offload_off')}")
    of = res["openflow"]
    print(f"per handover: {of['flow_mods_counter_per_move']} flow-mods (runtime counter)"
          + (f"; captured: FLOW_MOD {of['flow_mod_per_move']['median']}, METER_MOD "
             f"{of['meter_mod_per_move']['median']}, BARRIER_REQUEST "
             f"{of['barrier_request_per_move']['median']} on "
             f"{of['switches_touched_per_move']['median']} switches (medians; target <= 8 "
             f"flow-mods, one barrier per switch)" if "flow_mod_per_move" in of else ""))
    path, png = out_paths("dataplane", args.json)
    write_json(path, res)
    if not args.no_plot:
        plot(res, png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
