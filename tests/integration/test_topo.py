"""Mininet network from the default topology on a private userspace OVS (root only).

Built without a controller (bridges in standalone mode) so the data plane can be checked
on its own.  Cleans up every bridge, interface and daemon it creates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.config import Topology, load_topology

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("ovs-vsctl") is None, reason="needs Open vSwitch"),
]

PREFIX = "mvt"  # our names: mvtc1, mvta1-eth2, ...


def _links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def _ours(names: set[str]) -> set[str]:
    return {n for n in names if n.startswith(PREFIX)}


@pytest.fixture(scope="module")
def topo() -> Topology:
    return load_topology(ROOT / "topology" / "default.yaml")


def test_private_ovs_lifecycle(tmp_path: Path) -> None:
    from mininet_scripts.ovs import OvsError, PrivateOvs, userspace_ovs_running

    if userspace_ovs_running():
        pytest.skip("another userspace OVS is running")
    before = dict(os.environ)
    ovs = PrivateOvs(tmp_path / "ovs")
    ovs.start()
    try:
        assert ovs.running and set(ovs.pids) == {"ovsdb-server", "ovs-vswitchd"}
        assert os.environ["OVS_RUNDIR"] == ovs.env["OVS_RUNDIR"]
        assert (tmp_path / "ovs" / "run" / "db.sock").exists()
        tso = ovs.vsctl("get", "Open_vSwitch", ".", "other_config:userspace-tso-enable")
        assert tso.strip() == '"true"'
        # The netdev datapath (and its ovs-netdev tap) exists once a bridge does;
        # then a second userspace OVS is refused.
        ovs.vsctl("add-br", "mvtlife", "--", "set", "Bridge", "mvtlife",
                  "datapath_type=netdev")
        assert userspace_ovs_running()
        second = PrivateOvs(tmp_path / "ovs2")
        try:
            with pytest.raises(OvsError, match="another userspace Open vSwitch"):
                second.start()
            assert not second.pids
        finally:
            second.stop()
        ovs.vsctl("del-br", "mvtlife")
    finally:
        pids = dict(ovs.pids)
        ovs.stop()
    for pid in pids.values():
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    assert {k: os.environ.get(k) for k in ovs.env} == {k: before.get(k) for k in ovs.env}
    assert not Path("/sys/class/net/ovs-netdev").exists()


@pytest.fixture(scope="module")
def ovs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from mininet_scripts.ovs import PrivateOvs, userspace_ovs_running

    if userspace_ovs_running():
        pytest.skip("another userspace OVS is running")
    with PrivateOvs(tmp_path_factory.mktemp("ovs")) as instance:
        yield instance


@pytest.fixture(scope="module")
def network(topo: Topology, ovs: Any, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Any]:
    pytest.importorskip("mininet")
    from mininet.log import setLogLevel

    from mininet_scripts.topo import build_network

    setLogLevel("warning")
    links_before = _links()
    assert not _ours(links_before), "leftover interfaces from an earlier run"
    run_dir = tmp_path_factory.mktemp("net")
    net = build_network(topo, controller_port=None, prefix=PREFIX, run_dir=run_dir,
                        link_model="replug")
    try:
        net.start()
        yield net
    finally:
        net.stop()


def _bridge_ports(ovs: Any, br: str) -> dict[str, int]:
    out = ovs.vsctl("--format=json", "--columns=name,ofport", "list", "Interface")
    rows = json.loads(out)["data"]
    names = set(ovs.vsctl("list-ifaces", br).split())
    return {name: port for name, port in rows if name in names}


def test_bridges_dpids_and_ports(network: Any, ovs: Any, topo: Topology) -> None:
    assert network.ovs_name("core1") == "mvtc1"
    assert network.ovs_name("acc2") == "mvta2"
    assert sorted(ovs.vsctl("list-br").split()) == sorted(network.ovs_names.values())
    for name, sw in topo.switches.items():
        br = network.ovs_name(name)
        assert len(f"{br}-eth65279") <= 15
        dpid = ovs.vsctl("get", "Bridge", br, "datapath_id").strip().strip('"')
        assert int(dpid, 16) == sw.dpid
        assert ovs.vsctl("get", "Bridge", br, "datapath_type").strip() == "netdev"
        assert ovs.vsctl("get", "Bridge", br, "protocols").strip() == '[OpenFlow13]'
    expected: dict[tuple[str, int], bool] = {}
    for gw in topo.gateways.values():
        expected[(gw.core.switch, gw.core.port)] = True
        expected[(gw.inside.switch, gw.inside.port)] = True
    for h in topo.hosts.values():
        expected[(h.switch, h.port)] = True
    for mn in topo.mobile_nodes.values():
        expected[(mn.attach_switch, mn.attach_port)] = True
    for link in topo.links:
        expected[(link.a_switch, link.a_port)] = True
        expected[(link.b_switch, link.b_port)] = True
    actual = set()
    for name in topo.switches:
        br = network.ovs_name(name)
        for _iface, port in _bridge_ports(ovs, br).items():
            if port != 65534:  # the bridge's own internal port
                actual.add((name, port))
    assert actual == set(expected)


def test_gateway_interfaces(network: Any, topo: Topology) -> None:
    for gw in topo.gateways.values():
        host = network.host(gw.name)
        for iface, dev in ((gw.core, f"{gw.name}-core"), (gw.inside, f"{gw.name}-in")):
            info = json.loads(host.cmd(f"ip -j addr show dev {dev}"))[0]
            assert info["address"] == iface.mac
            addrs = {(a["local"], a["prefixlen"]) for a in info["addr_info"]
                     if a["family"] == "inet"}
            assert addrs == {(iface.ip, iface.prefixlen)}
        assert host.cmd("sysctl -n net.ipv4.ip_forward").strip() == "1"
        assert host.cmd(f"sysctl -n net.ipv4.conf.{gw.name}-core.rp_filter").strip() == "0"
        neigh = host.cmd(f"ip neigh show dev {gw.name}-core nud permanent")
        for other in topo.gateways.values():
            if other.name != gw.name:
                assert f"{other.core.ip} lladdr {other.core.mac}" in neigh
        if gw.kind == "foreign_agent":
            assert "10.10.0.0/24 scope link" in host.cmd(f"ip route show dev {gw.name}-in")
    mn = network.host("mn1")
    info = json.loads(mn.cmd("ip -j addr show dev mn1-eth0"))[0]
    assert info["address"] == "02:00:00:00:01:00"
    assert [(a["local"], a["prefixlen"]) for a in info["addr_info"]
            if a["family"] == "inet"] == [("10.10.0.100", 32)]
    cn = network.host("cn1")
    assert "default via 10.30.0.1" in cn.cmd("ip route")


def _probe_pair(network: Any, a: str, a_ip: str, b: str, b_ip: str, tmp: Path,
                duration: float = 0.4) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the probe both ways between hosts a and b; return both results."""
    procs = []
    for host, me, peer in ((a, a_ip, b_ip), (b, b_ip, a_ip)):
        out = tmp / f"{host}.json"
        procs.append((out, network.host(host).popen(
            [sys.executable, "-m", "mininet_scripts.probe", "--bind", me, "--peer", peer,
             "--port", "5001", "--rate", "500", "--duration", str(duration),
             "--linger", "0.3", "--out", str(out)], cwd=str(ROOT))))
    results = []
    for out, proc in procs:
        try:
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        results.append(json.loads(out.read_text()))
    return results[0], results[1]


def _reached(received: list[list[int]], sent: int) -> bool:
    """The stream got through: it started arriving within the first half (the two
    probe processes start at once; under load the receiver binds late or the first
    ARP exchange takes a while) and from then on ≥ 90 % arrived."""
    seqs = sorted({r[0] for r in received})
    return bool(seqs) and seqs[0] < sent // 2 and len(seqs) > 0.9 * (sent - seqs[0])


def test_mn_reaches_fa_then_moves(network: Any, ovs: Any, tmp_path: Path) -> None:
    mn = network.host("mn1")
    # The MN client normally learns its FA from agent advertisements; do it by hand.
    mn.cmd("ip route add 10.21.0.0/24 dev mn1-eth0; ip route add 10.22.0.0/24 dev mn1-eth0")
    mn_res, fa_res = _probe_pair(network, "mn1", "10.10.0.100", "fa1", "10.21.0.1", tmp_path)
    assert _reached(mn_res["received"], fa_res["sent"])

    sintf = network.host("mn1").defaultIntf().link.intf2
    assert sintf.node is network.switch("acc1")
    seconds = network.move_host("mn1", "acc2", 2)
    assert 0 < seconds < 2
    assert network.mn_location["mn1"] == ("acc2", 2)
    assert network.ofport("acc2", sintf.name) == 2
    assert ovs.vsctl("iface-to-br", sintf.name).strip() == "mvta2"
    assert sintf.name not in ovs.vsctl("list-ifaces", "mvta1").split()
    # Mininet bookkeeping follows the move.
    assert sintf.node is network.switch("acc2")
    assert network.switch("acc2").intfs[2] is sintf
    assert 2 not in network.switch("acc1").intfs
    mn_res, fa_res = _probe_pair(network, "mn1", "10.10.0.100", "fa2", "10.22.0.1", tmp_path)
    assert _reached(mn_res["received"], fa_res["sent"])
    # ... and back to the original port.
    network.move_host("mn1", "acc1", 2)
    assert network.ofport("acc1", sintf.name) == 2
    with pytest.raises(Exception, match="in use"):
        network.move_host("mn1", "acc1", 1)


def test_wait_switches_connected(network: Any, ovs: Any) -> None:
    # No controller here.  In standalone mode OVS shows its own NORMAL flow at
    # priority 0, so switch to secure mode (empty table) and install the table-miss
    # entry a controller would.
    brs = sorted(network.ovs_names.values())
    for br in brs:
        ovs.vsctl("set-fail-mode", br, "secure")
        ovs.ofctl("-O", "OpenFlow13", "del-flows", br)
    with pytest.raises(TimeoutError, match="no table-miss"):
        network.wait_switches_connected(timeout=0.05)
    for br in brs:
        ovs.ofctl("-O", "OpenFlow13", "add-flow", br, "priority=0,actions=NORMAL")
    t0 = time.monotonic()
    waited = network.wait_switches_connected(timeout=5)
    assert waited < 1 and time.monotonic() - t0 < 1


def test_stop_removes_everything(network: Any, ovs: Any) -> None:
    assert _ours(_links())
    network.stop()
    assert not _ours(_links())
    assert ovs.vsctl("list-br").split() == []
    network.stop()  # idempotent


@pytest.fixture
def carrier_network(topo: Topology, ovs: Any, tmp_path: Path) -> Iterator[Any]:
    """The default topology with the carrier link model (after the replug network
    above has stopped: same names)."""
    pytest.importorskip("mininet")
    from mininet_scripts.topo import build_network

    assert not _ours(_links()), "leftover interfaces"
    net = build_network(topo, controller_port=None, prefix=PREFIX, run_dir=tmp_path / "net")
    try:
        net.start()
        yield net
    finally:
        net.stop()


def _rx(name: str) -> int:
    return int(Path(f"/sys/class/net/{name}/statistics/rx_packets").read_text())


def _carrier(name: str) -> bool:
    return Path(f"/sys/class/net/{name}/carrier").read_text().strip() == "1"


def test_carrier_move_flips_carrier_only(carrier_network: Any, ovs: Any,
                                         tmp_path: Path) -> None:
    """The MN's cell links are ports of both access switches from the start; a move
    flips carriers: both ports stay with their ofport, traffic passes on the new cell
    only, the bookkeeping follows."""
    net = carrier_network
    assert net.link_model == "carrier"
    assert json.loads((tmp_path / "net" / "names.json").read_text())["link_model"] == "carrier"
    assert _bridge_ports(ovs, "mvta1")["mvta1-eth2"] == 2
    assert _bridge_ports(ovs, "mvta2")["mvta2-eth2"] == 2
    assert _carrier("mvta1-eth2") and not _carrier("mvta2-eth2")
    assert net.switch("acc2").intfs[2].name == "mvta2-eth2"
    mn = net.host("mn1")
    assert mn.defaultIntf().name == "mn1-eth0"
    assert json.loads(mn.cmd("ip -j link show dev mn1-eth0"))[0]["address"] == \
        "02:00:00:00:01:00"
    mn.cmd("ip route add 10.21.0.0/24 dev mn1-eth0; ip route add 10.22.0.0/24 dev mn1-eth0")
    mn_res, fa_res = _probe_pair(net, "mn1", "10.10.0.100", "fa1", "10.21.0.1", tmp_path)
    assert _reached(mn_res["received"], fa_res["sent"])

    seconds = net.move_host("mn1", "acc2", 2)
    assert 0 < seconds < 0.2
    assert net.mn_location["mn1"] == ("acc2", 2)
    assert describe_of(net)["mobile_nodes"]["mn1"] == ["acc2", 2]
    assert not _carrier("mvta1-eth2") and _carrier("mvta2-eth2")
    # no port moved: both still there with their numbers
    assert _bridge_ports(ovs, "mvta1")["mvta1-eth2"] == 2
    assert _bridge_ports(ovs, "mvta2")["mvta2-eth2"] == 2
    old_rx = _rx("mvta1-eth2")
    new_rx = _rx("mvta2-eth2")
    mn_res, fa_res = _probe_pair(net, "mn1", "10.10.0.100", "fa2", "10.22.0.1", tmp_path)
    assert _reached(mn_res["received"], fa_res["sent"])
    # the MN's frames reached acc2 through its new cell, none acc1 through the old one
    assert _rx("mvta2-eth2") - new_rx >= len(fa_res["received"])
    assert _rx("mvta1-eth2") == old_rx

    net.move_host("mn1", "acc1", 2)
    assert _carrier("mvta1-eth2") and not _carrier("mvta2-eth2")
    assert net.mn_location["mn1"] == ("acc1", 2)
    with pytest.raises(Exception, match="in use"):
        net.move_host("mn1", "acc1", 2)
    with pytest.raises(Exception, match="in use"):
        net.move_host("mn1", "acc1", 1)          # fa1's port


def test_carrier_move_to_a_cell_made_at_the_move(carrier_network: Any, ovs: Any) -> None:
    net = carrier_network
    assert "mvta2-eth7" not in _bridge_ports(ovs, "mvta2")
    net.move_host("mn1", "acc2", 7)
    assert _bridge_ports(ovs, "mvta2")["mvta2-eth7"] == 7
    assert _carrier("mvta2-eth7") and not _carrier("mvta1-eth2")
    assert net.switch("acc2").intfs[7].name == "mvta2-eth7"
    assert net.mn_location["mn1"] == ("acc2", 7)


def test_carrier_stop_removes_everything(carrier_network: Any, ovs: Any) -> None:
    assert {"mvtm1", "mvtm1-mn", "mvtm1-c1"} <= _ours(_links())
    carrier_network.stop()
    assert not _ours(_links())
    assert ovs.vsctl("list-br").split() == []


def describe_of(net: Any) -> dict[str, Any]:
    from mininet_scripts.topo import describe
    return describe(net)


_TABLE_MISS_APP = '''
import sys
from os_ken import cfg
from os_ken.base import app_manager
from os_ken.base.app_manager import AppManager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, set_ev_cls
from os_ken.ofproto import ofproto_v1_3
import os_ken.controller.controller  # noqa: F401  (registers the OpenFlow options)


class TableMiss(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def features(self, ev):
        dp = ev.msg.datapath
        p, o = dp.ofproto_parser, dp.ofproto
        out = [p.OFPActionOutput(o.OFPP_CONTROLLER, o.OFPCML_NO_BUFFER)]
        inst = [p.OFPInstructionActions(o.OFPIT_APPLY_ACTIONS, out)]
        dp.send_msg(p.OFPFlowMod(datapath=dp, priority=0, match=p.OFPMatch(),
                                 instructions=inst))


if __name__ == "__main__":
    cfg.CONF(args=[], project="os_ken")
    cfg.CONF.set_override("ofp_listen_host", "127.0.0.1")
    cfg.CONF.set_override("ofp_tcp_listen_port", int(sys.argv[1]))
    AppManager.run_apps(["__main__"])
'''


def test_secure_switches_connect_to_remote_controller(topo: Topology, ovs: Any,
                                                      tmp_path: Path) -> None:
    """failMode=secure + RemoteController: a minimal os-ken app installs table-miss."""
    pytest.importorskip("os_ken")
    import socket

    from mininet_scripts.topo import build_network

    with socket.socket() as s:  # a free port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = tmp_path / "table_miss_app.py"
    app.write_text(_TABLE_MISS_APP)
    ctl = subprocess.Popen([sys.executable, str(app), str(port)], cwd=str(tmp_path),
                           stdout=subprocess.DEVNULL, stderr=(tmp_path / "ctl.log").open("w"))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert ctl.poll() is None, (tmp_path / "ctl.log").read_text()
                assert time.monotonic() < deadline, "controller did not listen"
                time.sleep(0.05)
        net = build_network(topo, controller_port=port, prefix="mvk", run_dir=tmp_path / "net")
        try:
            net.start()
            for name in topo.switches:
                br = net.ovs_name(name)
                assert ovs.vsctl("get", "Bridge", br, "fail_mode").strip() == "secure"
            assert net.wait_switches_connected(timeout=10) < 10
        finally:
            net.stop()
        assert not {n for n in _links() if n.startswith("mvk")}
    finally:
        ctl.terminate()
        try:
            ctl.wait(5)
        except subprocess.TimeoutExpired:
            ctl.kill()
            ctl.wait()


def test_ovsdb_move_port(ovs: Any) -> None:
    """The OVSDB client move_host uses: same result as ovs-vsctl del-port/add-port,
    refused moves change nothing, a stale cached Port UUID is looked up again."""
    from mininet_scripts.ovsdb import OvsdbClient, OvsdbError, UnixctlClient

    for br in ("mvqa", "mvqb"):
        ovs.vsctl("add-br", br, "--", "set", "Bridge", br, "datapath_type=netdev")
    subprocess.run(["ip", "link", "add", "mvqh", "type", "veth", "peer", "name", "mvqs"],
                   check=True)
    try:
        ovs.vsctl("add-port", "mvqa", "mvqs", "--", "set", "Interface", "mvqs",
                  "ofport_request=2")
        with OvsdbClient() as client:
            cfg = client.move_port("mvqs", "mvqa", "mvqb", 5)
            assert client.cur_cfg is not None and client.cur_cfg >= cfg
            assert ovs.vsctl("iface-to-br", "mvqs").strip() == "mvqb"
            assert ovs.vsctl("get", "Interface", "mvqs", "ofport").strip() == "5"
            for args, match in ((("mvqs", "mvqa", "mvqb", 3), "not on bridge 'mvqa'"),
                                (("mvqs", "mvqb", "nope", 3), "does not exist"),
                                (("nope", "mvqb", "mvqa", 3), "no port named")):
                with pytest.raises(OvsdbError, match=match) as err:
                    client.move_port(*args)
                assert not err.value.committed
            assert ovs.vsctl("iface-to-br", "mvqs").strip() == "mvqb"
            # Someone else moves it back: the cached UUID is stale.
            ovs.vsctl("del-port", "mvqb", "mvqs", "--", "add-port", "mvqa", "mvqs")
            client.move_port("mvqs", "mvqa", "mvqb", 7)
            assert ovs.vsctl("get", "Interface", "mvqs", "ofport").strip() == "7"
            # As move_host does it: del-port, the datapath's flows purged, add-port.
            ctl = UnixctlClient()
            try:
                client.move_port("mvqs", "mvqb", "mvqa", 4, purge=ctl.purge)
                assert ovs.vsctl("iface-to-br", "mvqs").strip() == "mvqa"
                assert ovs.vsctl("get", "Interface", "mvqs", "ofport").strip() == "4"
                client.move_port("mvqs", "mvqa", "mvqb", 6, purge=ctl.purge)
                assert ovs.vsctl("get", "Interface", "mvqs", "ofport").strip() == "6"
            finally:
                ctl.close()
    finally:
        subprocess.run(["ip", "link", "del", "mvqh"], capture_output=True, check=False)
        for br in ("mvqa", "mvqb"):
            ovs.vsctl("--if-exists", "del-br", br)
