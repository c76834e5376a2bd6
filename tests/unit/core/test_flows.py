"""Static flows per switch role, asserted as forwarding behaviour on a fake flow table."""

from __future__ import annotations

import pytest

from controller.config import load_topology
from controller.core import flows
from controller.core.flows import (BROADCAST_MAC, ETH_IPV4, IPPROTO_ESP, IPPROTO_ICMP,
                                   IPPROTO_UDP, OFPP_CONTROLLER, OFPP_FLOOD, FlowMod, FlowSpec)
from tests.unit.fakeoftable import AmbiguousMatch, FakeOFTable
from tests.unit.harness import DEFAULT_TOPOLOGY

TCP = 6
TOPO = load_topology(DEFAULT_TOPOLOGY)
FABRIC = flows.Fabric.from_topology(TOPO)
GW = TOPO.gateways
MN_MAC = TOPO.mobile_nodes["mn1"].mac


def table(switch: str) -> FakeOFTable:
    t = FakeOFTable(TOPO.switches[switch].dpid)
    t.apply(flows.static_flows(FABRIC, switch))
    return t


def expected_core_port(switch: str, gateway: str) -> int:
    core = GW[gateway].core
    if core.switch == switch:
        return core.port
    (link,) = TOPO.links          # core1:1 <-> core2:1
    return link.a_port if link.a_switch == switch else link.b_port


# ------------------------------------------------------------------ core


@pytest.mark.parametrize("switch", ["core1", "core2"])
@pytest.mark.parametrize("dst", sorted(GW))
@pytest.mark.parametrize("src", sorted(GW))
def test_core_carries_only_ike_and_esp_between_gateways(switch: str, src: str,
                                                        dst: str) -> None:
    if src == dst:
        return
    t = table(switch)
    in_port = expected_core_port(switch, src)
    s, d = GW[src].core.mac, GW[dst].core.mac
    want = [expected_core_port(switch, dst)]
    assert t.lookup(in_port, s, d, ETH_IPV4, IPPROTO_UDP, 500) == want
    assert t.lookup(in_port, s, d, ETH_IPV4, IPPROTO_UDP, 4500) == want
    assert t.lookup(in_port, s, d, ETH_IPV4, IPPROTO_ESP) == want
    # anything else to a gateway core MAC is dropped: no clear traffic crosses the core
    assert t.lookup(in_port, s, d, ETH_IPV4, IPPROTO_ICMP, icmpv4_type=8) == []
    assert t.lookup(in_port, s, d, ETH_IPV4, TCP) == []
    assert t.lookup(in_port, s, d, ETH_IPV4, IPPROTO_UDP, 434) == []
    assert t.lookup(in_port, s, d, 0x0806) == []                    # ARP (static entries)
    assert t.lookup(in_port, s, BROADCAST_MAC, 0x0806) == []


@pytest.mark.parametrize("switch", ["core1", "core2"])
def test_core_drops_ipsec_to_non_gateway_macs(switch: str) -> None:
    t = table(switch)
    for mac in (GW["ha"].inside.mac, TOPO.hosts["cn1"].mac, MN_MAC, "02:00:00:00:99:99"):
        assert t.lookup(10, GW["ha"].core.mac, mac, ETH_IPV4, IPPROTO_ESP) == []


def test_core_ports_follow_the_topology() -> None:
    assert table("core1").lookup(1, GW["fa1"].core.mac, GW["ha"].core.mac, ETH_IPV4,
                                 IPPROTO_ESP) == [10]
    assert table("core1").lookup(10, GW["ha"].core.mac, GW["fa2"].core.mac, ETH_IPV4,
                                 IPPROTO_ESP) == [1]
    assert table("core2").lookup(11, GW["fa1"].core.mac, GW["fa2"].core.mac, ETH_IPV4,
                                 IPPROTO_UDP, 4500) == [12]


# ------------------------------------------------------------------ site


def test_site_switches_forward_by_mac_and_flood_broadcast() -> None:
    corp, home = table("corp"), table("home")
    cn1, cngw = TOPO.hosts["cn1"], GW["cngw"].inside
    for eth_type, proto in ((ETH_IPV4, TCP), (ETH_IPV4, IPPROTO_ICMP), (0x0806, None)):
        assert corp.lookup(cngw.port, cngw.mac, cn1.mac, eth_type, proto) == [cn1.port]
        assert corp.lookup(cn1.port, cn1.mac, cngw.mac, eth_type, proto) == [cngw.port]
    assert corp.lookup(cn1.port, cn1.mac, BROADCAST_MAC, 0x0806) == [OFPP_FLOOD]
    assert corp.lookup(cn1.port, cn1.mac, "02:00:00:00:99:99", ETH_IPV4, TCP) == []
    ha = GW["ha"].inside
    assert home.lookup(5, "02:00:00:00:99:99", ha.mac, ETH_IPV4, TCP) == [ha.port]
    assert home.lookup(ha.port, ha.mac, BROADCAST_MAC, 0x0806) == [OFPP_FLOOD]
    # a site switch knows nothing of other sites' MACs (no path): dropped
    assert home.lookup(ha.port, ha.mac, cn1.mac, ETH_IPV4, TCP) == []


# ------------------------------------------------------------------ access


@pytest.mark.parametrize("switch,fa", [("acc1", "fa1"), ("acc2", "fa2")])
def test_access_punts_signalling_and_drops_unregistered(switch: str, fa: str) -> None:
    t = table(switch)
    fa_if = GW[fa].inside
    for port in (2, 3, 40):
        assert t.lookup(port, MN_MAC, BROADCAST_MAC, ETH_IPV4, IPPROTO_UDP, 434) == [
            OFPP_CONTROLLER]
        assert t.lookup(port, MN_MAC, fa_if.mac, ETH_IPV4, IPPROTO_UDP, 434) == [
            OFPP_CONTROLLER]
        assert t.lookup(port, MN_MAC, BROADCAST_MAC, ETH_IPV4, IPPROTO_ICMP,
                        icmpv4_type=10) == [OFPP_CONTROLLER]
        # no registration, no traffic: data, ARP and other ICMP are dropped
        assert t.lookup(port, MN_MAC, fa_if.mac, ETH_IPV4, TCP) == []
        assert t.lookup(port, MN_MAC, fa_if.mac, ETH_IPV4, IPPROTO_ICMP, icmpv4_type=8) == []
        assert t.lookup(port, MN_MAC, BROADCAST_MAC, 0x0806) == []
        assert t.lookup(port, MN_MAC, fa_if.mac, ETH_IPV4, IPPROTO_UDP, 53) == []
    # the FA's broadcasts (ARP for visitors) reach every access port; its unicast does not
    assert t.lookup(fa_if.port, fa_if.mac, BROADCAST_MAC, 0x0806) == [OFPP_FLOOD]
    assert t.lookup(fa_if.port, fa_if.mac, MN_MAC, ETH_IPV4, TCP) == []


def test_access_mn_steering_install_and_remove() -> None:
    t = table("acc1")
    static = list(t.flows)
    fa_if = GW["fa1"].inside
    t.apply(flows.install_mn(MN_MAC, 2, fa_if.port))
    assert t.lookup(2, MN_MAC, fa_if.mac, ETH_IPV4, TCP) == [fa_if.port]
    assert t.lookup(2, MN_MAC, BROADCAST_MAC, 0x0806) == [fa_if.port]
    assert t.lookup(fa_if.port, fa_if.mac, MN_MAC, ETH_IPV4, TCP) == [2]
    assert t.lookup(3, MN_MAC, fa_if.mac, ETH_IPV4, TCP) == []      # only its own port
    assert t.lookup(2, MN_MAC, BROADCAST_MAC, ETH_IPV4, IPPROTO_UDP, 434) == [
        OFPP_CONTROLLER]                                               # signalling wins
    t.apply(flows.install_mn(MN_MAC, 3, fa_if.port))                   # moved port
    assert t.lookup(2, MN_MAC, fa_if.mac, ETH_IPV4, TCP) == []
    assert t.lookup(3, MN_MAC, fa_if.mac, ETH_IPV4, TCP) == [fa_if.port]
    assert t.lookup(fa_if.port, fa_if.mac, MN_MAC, ETH_IPV4, TCP) == [3]
    t.apply(flows.remove_mn(MN_MAC))
    assert t.flows == static


# ------------------------------------------------------------------ determinism


@pytest.mark.parametrize("switch", sorted(TOPO.switches))
def test_static_flows_are_deterministic(switch: str) -> None:
    again = flows.static_flows(flows.Fabric.from_topology(load_topology(DEFAULT_TOPOLOGY)),
                               switch)
    assert flows.static_flows(FABRIC, switch) == again
    t = table(switch)
    assert t.lookup(99, "02:00:00:00:99:98", "02:00:00:00:99:99") == []   # table-miss: drop


def test_out_port_picks_sorted_first_shortest_path() -> None:
    ep = flows.Endpoint("x", "02:00:00:00:99:01", "10.9.9.9", "d", 7)
    graph = flows.nx.Graph()
    for a, b, pa, pb in (("s", "b", 2, 1), ("s", "a", 3, 1), ("a", "d", 2, 1),
                         ("b", "d", 2, 2)):
        graph.add_edge(a, b, ports={a: pa, b: pb})
    fabric = flows.Fabric({}, {}, graph)
    assert [fabric.out_port("s", ep) for _ in range(5)] == [3] * 5     # via "a" < "b"
    assert fabric.out_port("d", ep) == 7
    assert fabric.out_port("nowhere", ep) is None


# ------------------------------------------------------------------ the fake table itself


def test_fake_table_semantics() -> None:
    t = FakeOFTable()
    t.apply([FlowMod("add", flows.flow(10, (("output", 1),), eth_dst="aa:aa:aa:aa:aa:aa"))])
    t.apply([FlowMod("add", flows.flow(10, (("output", 2),), eth_dst="aa:aa:aa:aa:aa:aa"))])
    assert len(t) == 1 and t.lookup(1, "b", "AA:AA:AA:AA:AA:AA") == [2]   # add replaces
    t.apply([FlowMod("add", flows.flow(10, (("output", 3),), in_port=5))])
    with pytest.raises(AmbiguousMatch):
        t.lookup(5, "b", "aa:aa:aa:aa:aa:aa")
    t.apply([FlowMod("add", flows.flow(10, (), cookie=7, in_port=6)),
             FlowMod("delete", FlowSpec(0, (), (), 7), cookie_mask=0xFF)])
    assert len(t) == 3 and t.lookup(6, "b", "c") == []      # deletes of a batch go first
    t.apply([FlowMod("delete", FlowSpec(0, (("in_port", 5),), (), 0), cookie_mask=0)])
    assert len(t) == 2
    t.apply([FlowMod("delete", FlowSpec(0, (), (), 0), cookie_mask=0)])
    assert len(t) == 0
