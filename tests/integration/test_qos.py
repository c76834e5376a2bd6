"""Scenario `qos` (claims 8, 9): the profile's service quality on every gateway/switch of
the path, measured with iperf3 (root; each test in its own network namespace).

* ``test_gateway_qos_shapes_marks_and_clears``: ``GatewayQos`` alone, on a veth named
  ``ipsec0`` in a throwaway namespace (no OVS, no charon): rate within 10 %, DSCP set
  with the ECN bits and a valid checksum, two tunnels' classes side by side, removal
  leaves the traffic unshaped.
* ``test_qos_scenario``: the default topology with alice's profile at 5,000 kbit/s and
  DSCP 46 (EF): after registration, iperf3 UDP MN->CN and CN->MN through the tunnels
  (access-switch meters + HTB on FA1/HA + nftables DSCP) is within 10 % of the limit;
  DSCP 46 arrives at both ends; after a move to FA2 the limit holds there and FA1's
  QoS is gone.  The same topology without a limit carries well above it.

Numbers are printed (``pytest -s``) and recorded in docs/qos.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from mininet_scripts.iperf import DS_SNIFFER, NO_TSO
from tests.integration.netns import can_unshare, in_netns

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LIMIT_KBPS = 5000
DSCP = 46
TOLERANCE = 0.10

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not can_unshare() or shutil.which("iperf3") is None,
    reason="needs root, network namespaces and iperf3")
needs_stack = pytest.mark.skipif(
    shutil.which("ovs-vsctl") is None or not Path("/usr/lib/ipsec/charon").exists(),
    reason="needs Open vSwitch, Mininet and strongSwan")


def _within(measured_bps: float, limit_kbps: int) -> bool:
    return abs(measured_bps / 1000 - limit_kbps) <= TOLERANCE * limit_kbps


def _iperf3(server: Any, client: Any, server_ip: str, *, port: int, udp_mbit: int = 0,
            seconds: int = 5, length: int = 1200, bind: str = "") -> float:
    """Receiver-side bit/s of one iperf3 run from ``client`` to ``server`` (host-like
    objects with ``popen``).  Both processes are ours, bounded by ``timeout`` and
    stopped by PID."""
    srv = server.popen(["timeout", str(seconds + 15), "iperf3", "-s", "-1", "-B", server_ip,
                        "-p", str(port)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    cli = None
    try:
        time.sleep(0.3)
        cmd = ["timeout", str(seconds + 10), "iperf3", "-c", server_ip, "-p", str(port),
               "-t", str(seconds), "-J"] + (["-B", bind] if bind else [])
        if udp_mbit:
            cmd += ["-u", "-b", f"{udp_mbit}M", "-l", str(length)]
        cli = client.popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = cli.communicate(timeout=seconds + 20)
        result = json.loads(out or b"{}")
        if "error" in result or "end" not in result:
            raise AssertionError(f"iperf3 failed: {result.get('error')} {err!r}")
        return float(result["end"]["sum_received"]["bits_per_second"])
    finally:
        for proc in (cli, srv):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(5)


# ------------------------------------------------------------------ GatewayQos alone


class _Ns:
    """A process holding a fresh network namespace, driven like a Mininet host."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["unshare", "-n", "sleep", "600"])
        self.path = f"/proc/{self.proc.pid}/ns/net"
        deadline = time.monotonic() + 5
        while os.readlink(self.path) == os.readlink("/proc/self/ns/net"):
            if time.monotonic() > deadline:
                raise AssertionError("namespace not created")
            time.sleep(0.01)

    def cmd(self, line: str) -> str:
        return subprocess.run(["nsenter", f"--net={self.path}", "sh", "-c", line],
                              capture_output=True, text=True, check=True).stdout

    def popen(self, argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["nsenter", f"--net={self.path}", *argv], **kw)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class _Here:
    def popen(self, argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, **kw)


def _sniff(host: Any, iface: str, src: str, n: int = 20) -> subprocess.Popen[bytes]:
    return host.popen([sys.executable, "-c", DS_SNIFFER, iface, src, str(n), "15"],
                      stdout=subprocess.PIPE)


def _sniffed(proc: subprocess.Popen[bytes]) -> dict[str, int]:
    out, _ = proc.communicate(timeout=30)
    lines = out.splitlines()            # "ready", then the counts
    return json.loads(lines[-1] if lines else b"{}")  # type: ignore[no-any-return]


@needs_root
@in_netns(timeout=180)
def test_gateway_qos_shapes_marks_and_clears() -> None:
    from controller.adapters.qos import GatewayQos
    from controller.core.vpn import QosSpec, TunnelEnd, TunnelSpec

    gw = _Ns()
    qos = GatewayQos("gw", netns=gw.path)
    try:
        subprocess.run(f"ip link add ipsec0 type veth peer name peer0 && "
                       f"ip link set ipsec0 netns {gw.proc.pid} && "
                       f"ip addr add 10.50.0.2/24 dev peer0 && ip link set peer0 up",
                       shell=True, check=True)
        gw.cmd("ip link set lo up; ip addr add 10.50.0.1/24 dev ipsec0; "
               "ip addr add 10.50.0.3/24 dev ipsec0; ip link set ipsec0 up")

        def side(tid: str, src: str, rate: int, dscp: int) -> Any:
            return TunnelSpec(tid, TunnelEnd("gw", "192.0.2.1", (f"{src}/32",)),
                              TunnelEnd("peer", "192.0.2.2", ("10.50.0.0/24",)), psk=b"k",
                              qos=QosSpec(rate, dscp)).side_for("gw")

        t0 = time.monotonic()
        qos.apply(side("alice/gw-peer", "10.50.0.1", LIMIT_KBPS, DSCP))
        first_ms = (time.monotonic() - t0) * 1000
        t0 = time.monotonic()
        qos.apply(side("bob/gw-peer", "10.50.0.3", 2000, 0))
        second_ms = (time.monotonic() - t0) * 1000
        classes = gw.cmd("tc class show dev ipsec0")
        assert "1:10" in classes and "1:11" in classes, classes

        sniffer = _sniff(_Here(), "peer0", "10.50.0.1")
        alice = _iperf3(_Here(), gw, "10.50.0.2", port=5301, udp_mbit=20, seconds=3)
        assert _within(alice, LIMIT_KBPS), alice
        assert _sniffed(sniffer) == {str(DSCP): 20}        # marked, checksum valid
        bob = _iperf3(_Here(), gw, "10.50.0.2", port=5302, udp_mbit=20, seconds=3,
                     bind="10.50.0.3")
        assert _within(bob, 2000), bob

        qos.remove("alice/gw-peer")
        assert "1:10" not in gw.cmd("tc class show dev ipsec0")
        assert "1:11" in gw.cmd("tc class show dev ipsec0")
        sniffer = _sniff(_Here(), "peer0", "10.50.0.1")
        free = _iperf3(_Here(), gw, "10.50.0.2", port=5303, udp_mbit=50, seconds=3)
        assert free > 3 * LIMIT_KBPS * 1000, free
        assert _sniffed(sniffer) == {"0": 20}              # marking gone too
        qos.remove("bob/gw-peer")
        qos.remove("bob/gw-peer")                           # idempotent
        assert qos.applied() == {}
        print(f"\nGatewayQos: alice {alice / 1e6:.2f} Mbit/s (limit 5), bob "
              f"{bob / 1e6:.2f} Mbit/s (limit 2), cleared {free / 1e6:.1f} Mbit/s; "
              f"apply {first_ms:.1f} ms first / {second_ms:.1f} ms next")
    finally:
        qos.close()
        gw.stop()


# ------------------------------------------------------------------ the scenario


def _topology_with_qos(run_dir: Path, rate_kbps: int, dscp: int) -> Path:
    src = (ROOT / "topology" / "default.yaml").read_text()
    old = "qos: {rate_kbps: 0, dscp: 0}"
    assert src.count(old) == 1
    src = src.replace(old, f"qos: {{rate_kbps: {rate_kbps}, dscp: {dscp}}}")
    # the MN client of the demo may not speak MN-HA authentication yet: AAA only
    src = "\n".join(line for line in src.splitlines()
                    if not line.strip().startswith(("mn_ha_spi:", "mn_ha_key:")))
    path = run_dir / "topology-qos.yaml"
    path.write_text(src + "\n")
    return path


def _run_scenario(rate_kbps: int, dscp: int) -> dict[str, Any]:
    from controller.config import load_topology
    from mininet_scripts.demo import Demo, _registered, wait_for

    run_dir = Path(tempfile.mkdtemp(prefix="mipvpn-qos-"))
    os.chmod(run_dir, 0o755)
    topo = load_topology(_topology_with_qos(run_dir, rate_kbps, dscp))
    demo = Demo(topo, run_dir, "127.0.0.1:18081", 16654)
    res: dict[str, Any] = {}
    try:
        demo.bring_up()
        net = demo.mnet
        mn, cn = net.host("mn1"), net.host("cn1")
        mn_ip, cn_ip = topo.mobile_nodes["mn1"].home_address, topo.hosts["cn1"].ip
        _, events = demo.start_mn_client("mn1")
        wait_for("registration via fa1", lambda: _registered(events, 0), 20)
        wait_for("MN -> CN through the tunnels",
                 lambda: "1 received" in mn.cmd(f"ping -n -c 1 -W 1 {cn_ip}"), 15, 0.2)
        burst = 20 if rate_kbps else 100
        if dscp:
            up_tos = _sniff(cn, cn.defaultIntf().name, mn_ip)
            down_tos = _sniff(mn, mn.defaultIntf().name, cn_ip)
        res["up_udp"] = _iperf3(cn, mn, cn_ip, port=5401, udp_mbit=burst)
        res["down_udp"] = _iperf3(mn, cn, mn_ip, port=5402, udp_mbit=burst)
        for host in (mn, cn):
            assert host.popen([sys.executable, "-c", NO_TSO,
                               host.defaultIntf().name]).wait(10) == 0
        res["up_tcp"] = _iperf3(cn, mn, cn_ip, port=5403)
        res["down_tcp"] = _iperf3(mn, cn, mn_ip, port=5406)
        if dscp:
            res["up_dscp"], res["down_dscp"] = _sniffed(up_tos), _sniffed(down_tos)
        res["fa1_tc"] = net.host("fa1").cmd("tc -s class show dev ipsec0")
        res["ha_tc"] = net.host("ha").cmd("tc -s class show dev ipsec0")
        res["acc1_meters"] = net.switch("acc1").dpctl("meter-stats", "-O", "OpenFlow13")
        if rate_kbps:
            # the MN moves to FA2: QoS follows it, FA1's goes with its tunnel
            n = len([1 for line in events.read_text().splitlines() if '"registered"' in line])
            net.move_host("mn1", "acc2", topo.mobile_nodes["mn1"].attach_port)
            wait_for("re-registration via fa2", lambda: _registered(events, n), 20)
            wait_for("MN -> CN after the move",
                     lambda: "1 received" in mn.cmd(f"ping -n -c 1 -W 1 {cn_ip}"), 15, 0.2)
            res["moved_up_udp"] = _iperf3(cn, mn, cn_ip, port=5404, udp_mbit=burst)
            res["moved_down_udp"] = _iperf3(mn, cn, mn_ip, port=5405, udp_mbit=burst)
            res["fa1_tc_after_move"] = net.host("fa1").cmd("tc class show dev ipsec0")
            res["fa2_tc"] = net.host("fa2").cmd("tc class show dev ipsec0")
            res["acc2_meters"] = net.switch("acc2").dpctl("dump-meters", "-O", "OpenFlow13")
        return res
    except BaseException:
        for log in ("controller.log", "mn1-client.log"):
            if (run_dir / log).exists():
                print(f"--- {log} (tail) ---\n"
                      + "\n".join((run_dir / log).read_text().splitlines()[-40:]))
        raise
    finally:
        demo.close()
        shutil.rmtree(run_dir, ignore_errors=True)


@needs_root
@needs_stack
@in_netns(timeout=420)
def test_qos_scenario() -> None:
    limited = _run_scenario(LIMIT_KBPS, DSCP)
    free = _run_scenario(0, 0)
    mbit = {tag + k: round(v / 1e6, 2) for r, tag in ((limited, ""), (free, "free_"))
            for k, v in r.items() if isinstance(v, float)}
    print(f"\nqos scenario (Mbit/s, limit {LIMIT_KBPS / 1000:g}): {mbit}")
    print(f"DSCP seen: up {limited.get('up_dscp')} down {limited.get('down_dscp')}")
    for key in ("acc1_meters", "fa1_tc", "ha_tc"):
        print(f"--- {key} (limited run) ---\n{limited[key].strip()}")

    for key in ("up_udp", "down_udp", "moved_up_udp", "moved_down_udp"):
        assert _within(limited[key], LIMIT_KBPS), (key, limited[key])
    for key in ("up_tcp", "down_tcp"):
        assert 0.5 * LIMIT_KBPS * 1000 < limited[key] <= (1 + TOLERANCE) * LIMIT_KBPS * 1000, \
            (key, limited[key])
    for key in ("up_udp", "down_udp", "up_tcp", "down_tcp"):
        assert free[key] > 3 * LIMIT_KBPS * 1000, (key, free[key])
    # set on every element of the path: meters at the access switch, HTB at FA and HA
    assert "meter:4 " in limited["acc1_meters"] and "meter:5 " in limited["acc1_meters"]
    assert "rate 5Mbit" in limited["fa1_tc"] and "rate 5Mbit" in limited["ha_tc"]
    assert "rate 5Mbit" in limited["fa2_tc"] and "meter=4 " in limited["acc2_meters"]
    assert "1:" not in limited["fa1_tc_after_move"]   # FA1's end and its QoS are gone
    assert "rate 5Mbit" not in free["fa1_tc"] and "meter" not in free["acc1_meters"].split(
        "reply", 1)[-1]
    # DSCP 46 end to end in both directions, checksums valid
    assert set(limited["up_dscp"]) == {str(DSCP)}, limited["up_dscp"]
    assert set(limited["down_dscp"]) == {str(DSCP)}, limited["down_dscp"]
