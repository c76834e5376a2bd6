"""Data plane: tunnel throughput through the steered paths vs bare strongSwan tunnels,
and OpenFlow messages per handover.

Brings up ``topology/two-domains.yaml`` as ``mipvpn scenario`` does (private OVS,
controller process, Mininet, one charon per gateway), registers mn1 and mn2 through fa1,
then in the same run measures TCP throughput with iperf3 (started in the hosts with a
timeout, stopped by PID; never Mininet's iperf helpers):

- ``steered`` (HA-anchored): mn1 -> cn1 through the controller's path: access switch
  steering -> FA1 -> IPsec FA1<->HA -> HA -> IPsec HA<->CN-GW (static) -> CN-GW -> cn1;
- ``bare fa1<->ha``: a strongSwan tunnel loaded by hand (VICI, same IKE/ESP proposals,
  same kernel-libipsec) between the same two gateway namespaces, FA1 inside address ->
  HA inside address;
- ``bare cngw<->ha``: the same for the path's second leg;
- ``steered RO`` (route-optimised, claims 10-15, 19): mn2 -> cn2, mn2's profile (the
  run's override, as in ``scenarios/route-optimised.yaml``) routes 10.32.0.0/24 to the
  *dynamic* CN-GW2, so the path is access steering -> FA1 -> IPsec FA1<->CN-GW2 ->
  cn2: one tunnel;
- ``bare fa1<->cngw2``: its like-for-like baseline, loaded by hand like the others;
- ``plain cn1->cngw``: no IPsec (the emulation's ceiling).

Both users get the same proposals, so every bare tunnel uses them too.

Then ``--moves`` handovers of mn1 fa1 <-> fa2 while ``dumpcap`` records the OpenFlow
channel (loopback, TCP 6653): FLOW_MOD, METER_MOD, GROUP_MOD and BARRIER_REQUEST per
move and per switch, checked against the runtime's ``flow_mods`` counter
(``/v1/counters``).

Runs in a private network namespace (re-executes itself under ``unshare -n``).  Root.

    python -m bench.dataplane [--seconds 5] [--repeat 3] [--moves 6] [--json F]
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mininet_scripts.demo import _stop_proc
from bench.common import (bench_parser, parse_bench_args, print_machine, pyplot,
                          reexec_in_private_netns, save_plot, save_results, summary)
from controller.textutil import table

IPERF_PORT = 5211
MOVE_PORT_ACC2 = 9      # a free port of acc2 for mn1's moves
OF_TYPES = {14: "FLOW_MOD", 15: "GROUP_MOD", 20: "BARRIER_REQUEST", 29: "METER_MOD",
            13: "PACKET_OUT"}


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float | None:
    """utime + stime of process ``pid`` (all its threads), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


def _machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (/proc/stat)."""
    vals = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = vals[3] + vals[4]
    return (sum(vals[:8]) - idle) / _TICK, sum(vals[:8]) / _TICK


def watched_processes(net: Any, run_dir: Path, gateways: list[str]) -> dict[str, int]:
    """The processes of this run whose CPU time the benchmark records per iperf3 run:
    ``ovs-vswitchd`` (its command line names the run directory) and ``charon/<gw>``
    (the charon in that gateway's network namespace)."""
    ns = {}
    for g in gateways:
        try:
            ns[os.stat(f"/proc/{net.host(g).pid}/ns/net").st_ino] = g
        except OSError:
            pass
    out: dict[str, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
            name = os.path.basename(argv[0].decode(errors="replace"))
            if name == "ovs-vswitchd" and str(run_dir).encode() in b" ".join(argv):
                out["ovs-vswitchd"] = int(d.name)
            elif name == "charon":
                g = ns.get(os.stat(d / "ns" / "net").st_ino)
                if g is not None:
                    out[f"charon/{g}"] = int(d.name)
        except (OSError, IndexError):
            continue
    return out


def iperf(server: Any, server_ip: str, client: Any, client_ip: str, seconds: float,
          port: int = IPERF_PORT, mss: int = 0,
          watch: dict[str, int] | None = None) -> dict[str, Any]:
    """One iperf3 TCP run client -> server; Mbit/s received, retransmits.  ``mss``:
    the client's TCP maximum segment size (0: the kernel's choice).  ``watch``: name ->
    pid of processes whose CPU seconds during the run go into ``cpu_s``, with the whole
    machine's busy cores (``machine_busy_cores``, all users of the machine)."""
    srv = server.popen(["timeout", str(int(seconds + 15)), "iperf3", "-s", "-1", "-B",
                        server_ip, "-p", str(port)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        cpu0 = {n: _cpu_s(pid) for n, pid in (watch or {}).items()}
        busy0, t0 = _machine_busy_s()
        w0 = time.monotonic()
        cli = client.popen(["timeout", str(int(seconds + 10)), "iperf3", "-c", server_ip,
                            "-B", client_ip, "-p", str(port), "-t", str(seconds), "-J",
                            *(["-M", str(mss)] if mss else [])],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = cli.communicate(timeout=seconds + 12)
            busy1, t1 = _machine_busy_s()
            wall = time.monotonic() - w0
            cpu1 = {n: _cpu_s(pid) for n, pid in (watch or {}).items()}
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
            "cpu_receiver_pct": round(end["cpu_utilization_percent"]["remote_total"], 1),
            "cpu_s": {n: round(cpu1[n] - c0, 2) for n, c0 in cpu0.items()
                      if c0 is not None and cpu1.get(n) is not None},
            "wall_s": round(wall, 2),
            "machine_busy_cores": round((busy1 - busy0) / (t1 - t0) * (os.cpu_count() or 1),
                                        2) if t1 > t0 else None}


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


# the route-optimised user: as scenarios/route-optimised.yaml, with alice's proposals so
# that every case and every bare tunnel of the run uses the same ones
RO_NAI = "bob@home.example"
RO_PROFILE = {"destinations": [{"prefix": "10.32.0.0/24", "gateway": "cngw2"}],
              "security": {"ike": "aes128-sha256-ecp256", "esp": "aes128gcm16-ecp256"},
              "qos": {"rate_kbps": 0, "dscp": 0}}
STEERED = "steered mn1->cn1 (FA1=HA=CN-GW)"
BARE_FA1_HA = "bare tunnel fa1->ha"
BARE_CNGW_HA = "bare tunnel cngw->ha"
STEERED_RO = "steered RO mn2->cn2 (FA1=CN-GW2)"
BARE_FA1_CNGW2 = "bare tunnel fa1->cngw2"


def _ratio(thr: dict[str, Any], a: str, b: str) -> float | None:
    va = thr.get(a, {}).get("mbit_s", {}).get("median")
    vb = thr.get(b, {}).get("mbit_s", {}).get("median")
    return round(va / vb, 3) if va and vb else None


def idle_cpu(watch: dict[str, int], seconds: float) -> dict[str, float]:
    """CPU seconds per second each watched process uses with no iperf3 running."""
    c0 = {n: _cpu_s(pid) for n, pid in watch.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    c1 = {n: _cpu_s(pid) for n, pid in watch.items()}
    dt = time.monotonic() - t0
    return {n: round((c1[n] - c0[n]) / dt, 4) for n in watch
            if c0[n] is not None and c1[n] is not None}


def cpu_per_gbit(runs: dict[str, list[dict[str, Any]]], seconds: float,
                 idle: dict[str, float] | None = None) -> dict[str, dict[str, float]]:
    """Per case: median CPU seconds per Gbit carried, per watched process (its idle
    use over the run's wall time subtracted), their sum (``data path``), plus the
    median of the whole machine's busy cores during the run."""
    idle = idle or {}
    out: dict[str, dict[str, float]] = {}
    for name, rs in runs.items():
        per: dict[str, list[float]] = {}
        for r in rs:
            gbit = r.get("mbit_s", 0) * seconds / 1000
            if gbit <= 0 or not r.get("cpu_s"):
                continue
            total = 0.0
            for proc, cpu in r["cpu_s"].items():
                v = max(0.0, cpu - idle.get(proc, 0.0) * r.get("wall_s", 0.0)) / gbit
                per.setdefault(proc, []).append(v)
                total += v
            per.setdefault("data path", []).append(total)
            if r.get("machine_busy_cores") is not None:
                per.setdefault("machine_busy_cores", []).append(r["machine_busy_cores"])
        out[name] = {k: summary(v, 3)["median"] for k, v in per.items()}
    return out


def path_facts(h: Any, cn_ip: str, mn_ip: str) -> dict[str, str]:
    """What the RO path's packets met (after the runs): mn2's route to cn2 (a learned
    path MTU shows as ``mtu``), libipsec's ``ipsec0`` at both gateways (MTU, drops), and
    the IP/ICMP fragmentation counters there."""
    nstat = ("nstat -az IpFragCreates IpFragFails IpReasmReqds IcmpOutDestUnreachs "
             "IcmpInDestUnreachs TcpRetransSegs 2>&1 | tail -n +2")
    return {
        "mn2 route to cn2": h("mn2").cmd(f"ip route get {cn_ip} from {mn_ip} 2>&1").strip(),
        "mn2 nstat": h("mn2").cmd(nstat).strip(),
        "fa1 ipsec0": h("fa1").cmd("ip -s link show ipsec0 2>&1").strip(),
        "fa1 nstat": h("fa1").cmd(nstat).strip(),
        "cngw2 ipsec0": h("cngw2").cmd("ip -s link show ipsec0 2>&1").strip(),
        "cngw2 nstat": h("cngw2").cmd(nstat).strip(),
    }


def run(seconds: float, repeat: int, moves: int, settle: float, keep_dir: bool,
        mss: int = 1200, diagnostics: bool = True) -> dict[str, Any]:
    from controller.core.vpn import SecuritySpec
    from mininet_scripts.demo import rest_get, wait_for
    from mininet_scripts.scenario import ScenarioRun

    spec = {"name": "bench-dataplane", "topology": "topology/two-domains.yaml",
            "_source": "bench.dataplane", "mobile_nodes": ["mn1", "mn2"],
            "overrides": {"vpn_profiles": {RO_NAI: RO_PROFILE}},
            "timeline": [{"sleep": 0.5}]}
    from controller.adapters.private_files import private_run_dir
    run_dir = private_run_dir("mipvpn-bench-dataplane-")   # 0700: keys, DB, token
    sr = ScenarioRun(spec, run_dir, "127.0.0.1:8080", 6653)
    res: dict[str, Any] = {"iperf_seconds": seconds, "repeat": repeat,
                           "topology": spec["topology"]}
    bare: list[tuple[Any, Any, str]] = []
    try:
        sr.run()
        topo, net = sr.topo, sr.demo.mnet
        mn, mn2 = topo.mobile_nodes["mn1"], topo.mobile_nodes["mn2"]
        cn, cn2 = topo.hosts["cn1"], topo.hosts["cn2"]
        prof = topo.vpn_profiles.get(mn.nai)
        sec = SecuritySpec(prof.security.ike, prof.security.esp) if prof else SecuritySpec()
        prof2 = topo.vpn_profiles[mn2.nai]
        assert (prof2.security.ike, prof2.security.esp) == (sec.ike, sec.esp), \
            "both users must have the same proposals"
        res["proposals"] = {"ike": sec.ike, "esp": sec.esp}
        # the RO path must really be one tunnel FA1<->CN-GW2 with no HA tunnel for mn2
        tunnels = rest_get(sr.demo.rest, "/v1/tunnels")["gateways"]
        owner = mn2.nai.replace("@", "_") + "/"

        def mn2_tunnels(g: str) -> list[str]:
            states = tunnels.get(g, [])
            return sorted(t["tunnel_id"] for t in states if isinstance(t, dict)
                          and t.get("tunnel_id", "").startswith(owner)) \
                if isinstance(states, list) else []
        res["ro_tunnels"] = {g: mn2_tunnels(g) for g in ("fa1", "ha", "cngw2")}
        print(f"mn2's tunnels: {res['ro_tunnels']}", flush=True)
        if not res["ro_tunnels"]["cngw2"] or res["ro_tunnels"]["ha"]:
            raise RuntimeError(f"mn2 is not route-optimised: {res['ro_tunnels']}")
        gw = topo.gateways
        h = net.host
        print("loading bare tunnels fa1<->ha, cngw<->ha and fa1<->cngw2 (VICI, by hand)",
              flush=True)
        bare.append(bare_tunnel(run_dir, topo, "fa1", "ha", gw["fa1"].inside.ip,
                                gw["ha"].inside.ip, sec))
        bare.append(bare_tunnel(run_dir, topo, "cngw", "ha", gw["cngw"].inside.ip,
                                gw["ha"].inside.ip, sec))
        bare.append(bare_tunnel(run_dir, topo, "fa1", "cngw2", gw["fa1"].inside.ip,
                                gw["cngw2"].inside.ip, sec))
        watch = watched_processes(net, run_dir, ["fa1", "ha", "cngw", "cngw2"])
        print(f"CPU time recorded per run for: {', '.join(sorted(watch))}", flush=True)
        res["idle_cpu_s_per_s"] = idle = idle_cpu(watch, 3.0)
        print(f"idle CPU use (s/s): {idle}", flush=True)
        steered = (h("cn1"), cn.ip, h("mn1"), mn.home_address)
        steered_ro = (h("cn2"), cn2.ip, h("mn2"), mn2.home_address)
        bare_ro = (h("cngw2"), gw["cngw2"].inside.ip, h("fa1"), gw["fa1"].inside.ip)
        cases = [
            (STEERED, *steered, 0),
            (BARE_FA1_HA, h("ha"), gw["ha"].inside.ip, h("fa1"), gw["fa1"].inside.ip, 0),
            (BARE_CNGW_HA, h("ha"), gw["ha"].inside.ip, h("cngw"), gw["cngw"].inside.ip,
             0),
            (STEERED_RO, *steered_ro, 0),
            (BARE_FA1_CNGW2, *bare_ro, 0),
        ]
        if diagnostics:
            cases += [
                # the steered paths with the MN's segments small enough for the tunnels
                # (no path-MTU discovery needed)
                (f"steered mn1->cn1, MSS {mss}", *steered, mss),
                (f"steered RO mn2->cn2, MSS {mss}", *steered_ro, mss),
                # the emulation's ceiling: one OVS hop, no IPsec (the core carries
                # IPsec only)
                ("plain cn1->cngw (no IPsec)", h("cngw"), gw["cngw"].inside.ip, h("cn1"),
                 cn.ip, 0),
                # the two hops the steered RO path has and its bare tunnel has not: the
                # access switch (steering) and the CN's site switch, each alone
                ("plain mn2->fa1 (access hop, no IPsec)", h("fa1"), gw["fa1"].inside.ip,
                 h("mn2"), mn2.home_address, 0),
                ("plain cn2->cngw2 (site hop, no IPsec)", h("cngw2"), gw["cngw2"].inside.ip,
                 h("cn2"), cn2.ip, 0),
            ]
        runs: dict[str, list[dict[str, Any]]] = {c[0]: [] for c in cases}
        for k in range(repeat):           # interleaved, so drift hits every case alike
            for name, srv, sip, cli, cip, seg in cases:
                r = iperf(srv, sip, cli, cip, seconds, mss=seg, watch=watch)
                runs[name].append(r)
                print(f"  [{k + 1}/{repeat}] {name:38s} "
                      f"{r.get('mbit_s', r.get('error'))} Mbit/s", flush=True)
        if diagnostics:
            # the same paths once the hosts (then the gateways too) compute their own
            # checksums and segment themselves
            steps = [("host TX offload off",
                      [(x, f"{x}-eth0") for x in ("mn1", "cn1", "mn2", "cn2")]),
                     ("host+gateway TX offload off",
                      [(g, f"{g}-{side}") for g in ("fa1", "ha", "cngw", "cngw2")
                       for side in ("core", "in")])]
            for label, ifaces in steps:
                for host, iface in ifaces:
                    err = tx_offload_off(h(host), iface, run_dir).strip()
                    if err:
                        print(f"  tx offload off on {iface}: {err[-200:]}", flush=True)
                sub = [(f"steered mn1->cn1, {label}", *steered),
                       (f"steered RO mn2->cn2, {label}", *steered_ro)]
                if label.startswith("host+gateway"):
                    # the bare tunnels again, under the same interface settings
                    sub += [(f"{name}, TX offload off", srv, sip, cli, cip)
                            for name, srv, sip, cli, cip, _ in cases
                            if name in (BARE_FA1_HA, BARE_CNGW_HA, BARE_FA1_CNGW2)]
                for name, *_ in sub:
                    runs[name] = []
                for k in range(repeat):
                    for name, srv, sip, cli, cip in sub:
                        r = iperf(srv, sip, cli, cip, seconds, watch=watch)
                        runs[name].append(r)
                        print(f"  [{k + 1}/{repeat}] {name:38s} "
                              f"{r.get('mbit_s', r.get('error'))} Mbit/s", flush=True)
        if diagnostics:
            res["path_facts"] = path_facts(h, cn2.ip, mn2.home_address)
        res["throughput"] = thr = {n: {"runs": rs, "mbit_s": summary(
            [r["mbit_s"] for r in rs if "mbit_s" in r], 1)} for n, rs in runs.items()}
        res["cpu_s_per_gbit"] = cpu = cpu_per_gbit(runs, seconds, idle)
        # CPU-bound on a shared machine, throughput follows the CPU each bit costs: the
        # ratio of the data path's CPU per Gbit is the throughput ratio the two paths
        # would have with the same CPU, whatever the other users of the machine take
        for key, a, b in (("cpu_ratio_bare_fa1_ha_to_steered", BARE_FA1_HA, STEERED),
                          ("cpu_ratio_bare_fa1_cngw2_to_ro", BARE_FA1_CNGW2, STEERED_RO)):
            ca = cpu.get(a, {}).get("data path")
            cb = cpu.get(b, {}).get("data path")
            if ca and cb:
                res[key] = round(ca / cb, 3)
        for key, a, b in (
                ("ratio_steered_to_bare_fa1_ha", STEERED, BARE_FA1_HA),
                ("ratio_ro_to_bare_fa1_cngw2", STEERED_RO, BARE_FA1_CNGW2),
                ("ratio_steered_to_bare_fa1_ha_tx_offload_off",
                 "steered mn1->cn1, host+gateway TX offload off",
                 f"{BARE_FA1_HA}, TX offload off"),
                ("ratio_ro_to_bare_fa1_cngw2_tx_offload_off",
                 "steered RO mn2->cn2, host+gateway TX offload off",
                 f"{BARE_FA1_CNGW2}, TX offload off")):
            value = _ratio(thr, a, b)
            if value is not None:
                res[key] = value
        slower = min((thr[n]["mbit_s"]["median"] or 0 for n in (BARE_FA1_HA, BARE_CNGW_HA)))
        if slower and thr[STEERED]["mbit_s"]["median"]:
            res["ratio_steered_to_slower_bare_leg"] = round(
                thr[STEERED]["mbit_s"]["median"] / slower, 3)
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
    windows = []
    try:
        before = rest_get(rest, "/v1/counters")["runtime"]["flow_mods"]
        for k in range(moves):
            to = "acc2" if k % 2 == 0 else "acc1"
            t0 = time.time()
            # acc1:2 is mn1's own port; acc2:2 is mn3's in two-domains.yaml: a free one
            sr._move("mn1", to, 2 if to == "acc1" else MOVE_PORT_ACC2, 15.0)
            time.sleep(settle)
            windows.append((t0, time.time()))
        after = rest_get(rest, "/v1/counters")["runtime"]["flow_mods"]
    except BaseException:
        if cap is not None:
            _stop_proc(cap)
        raise
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
    fig, ax = plt.subplots(figsize=(9, 5.5))
    names = list(res["throughput"])
    vals = [res["throughput"][n]["mbit_s"]["median"] or 0 for n in names]
    ax.barh(names, vals)
    for i, v in enumerate(vals):
        ax.text(v, i, f" {v:,.0f}", va="center")
    ax.set_xscale("log")
    ax.set_xlabel("TCP Mbit/s (iperf3, median)")
    ax.set_title(f"HA-anchored / bare fa1-ha = {res.get('ratio_steered_to_bare_fa1_ha')}\n"
                 f"route-optimised / bare fa1-cngw2 = {res.get('ratio_ro_to_bare_fa1_cngw2')}",
                 fontsize=10)
    save_plot(fig, path)


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser("dataplane", __doc__)
    ap.add_argument("--seconds", type=float, default=5.0, help="iperf3 duration per run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case (interleaved)")
    ap.add_argument("--moves", type=int, default=6, help="moves for the flow-mod count")
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--keep-dir", action="store_true")
    ap.add_argument("--no-diagnostics", action="store_true",
                    help="only the main cases (no MSS, plain and TX-offload-off runs)")
    args = parse_bench_args(ap, argv)
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
    res = run(args.seconds, args.repeat, args.moves, args.settle, args.keep_dir,
              diagnostics=not args.no_diagnostics)
    res = {"benchmark": "dataplane", "machine": m, **res}
    print()
    rows = [[n, v["mbit_s"]["median"], v["mbit_s"]["max"],
             sum(1 for r in v["runs"] if "error" in r)] for n, v in res["throughput"].items()]
    print(table(["TCP, iperf3", "median Mbit/s", "max", "errors"], rows, numbers=True))
    print(f"HA-anchored: ratio steered / bare fa1<->ha: "
          f"{res.get('ratio_steered_to_bare_fa1_ha')}; steered / slower bare leg: "
          f"{res.get('ratio_steered_to_slower_bare_leg')}; with TX offload off on hosts "
          f"and gateways: {res.get('ratio_steered_to_bare_fa1_ha_tx_offload_off')}")
    print(f"route-optimised: ratio steered RO / bare fa1<->cngw2: "
          f"{res.get('ratio_ro_to_bare_fa1_cngw2')} (target >= 0.9); with TX offload off "
          f"on hosts and gateways: {res.get('ratio_ro_to_bare_fa1_cngw2_tx_offload_off')}")
    cpu = res.get("cpu_s_per_gbit", {})
    procs = sorted({p for v in cpu.values() for p in v
                    if p not in ("machine_busy_cores", "data path")}) + ["data path"]
    main_cases = [STEERED, BARE_FA1_HA, BARE_CNGW_HA, STEERED_RO, BARE_FA1_CNGW2]
    if len(procs) > 1:
        print("CPU seconds per Gbit carried (medians), and the machine's busy cores:")
        print(table(["case", *procs, "busy cores"],
                    [[n, *(cpu.get(n, {}).get(p) for p in procs),
                      cpu.get(n, {}).get("machine_busy_cores")] for n in main_cases],
                    numbers=True))
    print(f"CPU per Gbit, bare / steered (the throughput ratio at equal CPU): "
          f"HA-anchored {res.get('cpu_ratio_bare_fa1_ha_to_steered')}, route-optimised "
          f"{res.get('cpu_ratio_bare_fa1_cngw2_to_ro')}")
    of = res["openflow"]
    print(f"per handover: {of['flow_mods_counter_per_move']} flow-mods (runtime counter)"
          + (f"; captured: FLOW_MOD {of['flow_mod_per_move']['median']}, METER_MOD "
             f"{of['meter_mod_per_move']['median']}, BARRIER_REQUEST "
             f"{of['barrier_request_per_move']['median']} on "
             f"{of['switches_touched_per_move']['median']} switches (medians; target <= 8 "
             f"flow-mods, one barrier per switch)" if "flow_mod_per_move" in of else ""))
    save_results("dataplane", args.json, res, None if args.no_plot else plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
