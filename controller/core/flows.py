"""Flow planning: which OpenFlow 1.3 entries each switch needs.

Pure: returns ``FlowMod`` values that the OpenFlow adapter turns into os-ken messages.
The fabric is the switch graph built from the topology; paths are deterministic
shortest paths (``sorted(nx.all_shortest_paths(...))[0]``, as FAUCET does).

Policy (see docs/dataplane.md):
- core switches carry only IPsec between gateway core interfaces (IKE UDP 500/4500,
  ESP); nothing else crosses the core, so MN<->CN traffic can only travel in tunnels;
- site switches (home, corporate) are plain L2 segments behind one gateway;
- access switches punt Mobile IPv4 signalling (UDP 434, agent solicitations) to the
  controller and carry a mobile node's traffic only after its registration succeeded
  (the MN's steering flows, installed by its foreign agent, removed when it leaves).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Iterable

import networkx as nx

OFPP_CONTROLLER = 0xFFFFFFFD
OFPP_FLOOD = 0xFFFFFFFB
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"

ETH_IPV4 = 0x0800
IPPROTO_ICMP = 1
IPPROTO_UDP = 17
IPPROTO_ESP = 50
MIP_PORT = 434
IKE_PORTS = (500, 4500)

PRIO_SIGNALLING = 300
PRIO_MN = 200
PRIO_FORWARD = 100
PRIO_FLOOD = 50
PRIO_MISS = 0

COOKIE_STATIC = 0x1
COOKIE_MN_BASE = 0x4D4E << 32  # "MN"
COOKIE_MN_MASK = 0xFFFFFFFF << 32


@dataclass(frozen=True)
class FlowSpec:
    priority: int
    match: tuple[tuple[str, Any], ...]
    actions: tuple[tuple[str, int], ...]  # ("output", port)
    cookie: int = COOKIE_STATIC
    table: int = 0
    meter: int = 0  # 0 = none

    def match_dict(self) -> dict[str, Any]:
        return dict(self.match)


@dataclass(frozen=True)
class FlowMod:
    op: str  # "add" | "delete"
    flow: FlowSpec
    cookie_mask: int = 0  # delete: delete every flow whose cookie matches under the mask


def flow(priority: int, actions: Iterable[tuple[str, int]] = (), cookie: int = COOKIE_STATIC,
         **match: Any) -> FlowSpec:
    return FlowSpec(priority, tuple(sorted(match.items())), tuple(actions), cookie)


def mn_cookie(mn_mac: str) -> int:
    return COOKIE_MN_BASE | zlib.crc32(mn_mac.lower().encode())


@dataclass(frozen=True)
class Endpoint:
    """A MAC address attached at (switch, port): a gateway interface or a host."""

    name: str
    mac: str
    ip: str
    switch: str
    port: int
    core: bool = False


@dataclass
class Fabric:
    """The switch graph and where every fixed endpoint sits."""

    dpids: dict[str, int]
    roles: dict[str, str]
    graph: nx.Graph
    endpoints: list[Endpoint] = field(default_factory=list)
    access_fa_port: dict[str, int] = field(default_factory=dict)  # access switch -> FA port

    @classmethod
    def from_topology(cls, topo: Any) -> Fabric:
        graph = nx.Graph()
        dpids: dict[str, int] = {}
        roles: dict[str, str] = {}
        for name, sw in topo.switches.items():
            graph.add_node(name)
            dpids[name] = sw.dpid
            roles[name] = sw.role
        for link in topo.links:
            graph.add_edge(link.a_switch, link.b_switch,
                           ports={link.a_switch: link.a_port, link.b_switch: link.b_port})
        fabric = cls(dpids, roles, graph)
        for name, gw in topo.gateways.items():
            fabric.endpoints.append(Endpoint(f"{name}-core", gw.core.mac, gw.core.ip,
                                             gw.core.switch, gw.core.port, core=True))
            fabric.endpoints.append(Endpoint(f"{name}-inside", gw.inside.mac, gw.inside.ip,
                                             gw.inside.switch, gw.inside.port))
            if gw.kind == "foreign_agent":
                fabric.access_fa_port[gw.inside.switch] = gw.inside.port
        for name, host in topo.hosts.items():
            fabric.endpoints.append(Endpoint(name, host.mac, host.ip, host.switch, host.port))
        return fabric

    def switch_of_dpid(self, dpid: int) -> str | None:
        for name, value in self.dpids.items():
            if value == dpid:
                return name
        return None

    def out_port(self, src_switch: str, endpoint: Endpoint) -> int | None:
        """Port on ``src_switch`` towards ``endpoint`` along the deterministic path."""
        if src_switch == endpoint.switch:
            return endpoint.port
        try:
            path = sorted(nx.all_shortest_paths(self.graph, src_switch, endpoint.switch))[0]
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            return None
        ports: dict[str, int] = self.graph.edges[src_switch, path[1]]["ports"]
        return ports[src_switch]


def static_flows(fabric: Fabric, switch: str) -> list[FlowMod]:
    """Everything a switch needs at connect time (before any MN registers)."""
    role = fabric.roles[switch]
    flows: list[FlowSpec] = [flow(PRIO_MISS)]  # table-miss: drop
    for ep in fabric.endpoints:
        port = fabric.out_port(switch, ep)
        if port is None:
            continue
        out = (("output", port),)
        if role == "core":
            if not ep.core:
                continue
            for udp in IKE_PORTS:
                flows.append(flow(PRIO_FORWARD, out, eth_dst=ep.mac, eth_type=ETH_IPV4,
                                  ip_proto=IPPROTO_UDP, udp_dst=udp))
            flows.append(flow(PRIO_FORWARD, out, eth_dst=ep.mac, eth_type=ETH_IPV4,
                              ip_proto=IPPROTO_ESP))
        elif role == "site":
            flows.append(flow(PRIO_FORWARD, out, eth_dst=ep.mac))
        elif role == "access" and ep.port == fabric.access_fa_port.get(switch) \
                and ep.switch == switch:
            pass  # traffic to the FA comes only from registered MNs (mn_flows)
    if role == "site":
        flows.append(flow(PRIO_FLOOD, (("output", OFPP_FLOOD),), eth_dst=BROADCAST_MAC))
    if role == "access":
        fa_port = fabric.access_fa_port.get(switch)
        flows.append(flow(PRIO_SIGNALLING, (("output", OFPP_CONTROLLER),),
                          eth_type=ETH_IPV4, ip_proto=IPPROTO_UDP, udp_dst=MIP_PORT))
        flows.append(flow(PRIO_SIGNALLING, (("output", OFPP_CONTROLLER),),
                          eth_type=ETH_IPV4, ip_proto=IPPROTO_ICMP, icmpv4_type=10))
        if fa_port is not None:
            # the FA's ARP requests for visiting MNs reach every access port
            flows.append(flow(PRIO_FLOOD, (("output", OFPP_FLOOD),),
                              in_port=fa_port, eth_dst=BROADCAST_MAC))
    return [FlowMod("add", f) for f in flows]


def mn_flows(mn_mac: str, mn_port: int, fa_port: int) -> list[FlowSpec]:
    """Steer a registered MN <-> its FA at the access switch."""
    cookie = mn_cookie(mn_mac)
    return [
        flow(PRIO_MN, (("output", fa_port),), cookie, in_port=mn_port, eth_src=mn_mac),
        flow(PRIO_MN, (("output", mn_port),), cookie, in_port=fa_port, eth_dst=mn_mac),
    ]


def install_mn(mn_mac: str, mn_port: int, fa_port: int) -> tuple[FlowMod, ...]:
    """Replace whatever this MN had on the switch by its current steering."""
    return (remove_mn(mn_mac)
            + tuple(FlowMod("add", f) for f in mn_flows(mn_mac, mn_port, fa_port)))


def remove_mn(mn_mac: str) -> tuple[FlowMod, ...]:
    return (FlowMod("delete", FlowSpec(0, (), (), mn_cookie(mn_mac)), cookie_mask=(1 << 64) - 1),)
