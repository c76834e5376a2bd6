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
  (the MN's steering flows, installed by its foreign agent, removed when it leaves);
- QoS from the user's profile (claims 8, 9; docs/qos.md): the MN's steering flows pass
  through two OpenFlow meters at its access switch (one per direction, drop band at the
  profile's rate) and its IPv4 uplink gets the profile's DSCP.
"""

from __future__ import annotations

import ipaddress
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol

import networkx as nx

from controller.core.vpn import QosSpec, VpnInfo
from controller.model.dataclass_copy import replace

OFPP_CONTROLLER = 0xFFFFFFFD
OFPP_FLOOD = 0xFFFFFFFB
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
IPPROTO_ICMP = 1
IPPROTO_UDP = 17
IPPROTO_ESP = 50
MIP_PORT = 434
IKE_PORTS = (500, 4500)

PRIO_SIGNALLING = 300
PRIO_REDIRECT = 210  # issue 14: frames of an MN still addressed to its previous FA
PRIO_MN_IP = 201  # the MN's IPv4 uplink when its profile sets a DSCP
PRIO_MN = 200
PRIO_PREPARED = 150  # issue 14: below a live MN's steering, which replaces it
PRIO_FORWARD = 100
PRIO_FLOOD = 50
PRIO_MISS = 0

COOKIE_STATIC = 0x1
COOKIE_MN_BASE = 0x4D4E << 32  # "MN"
COOKIE_MN_MASK = 0xFFFFFFFF << 32
COOKIE_HOLD_BASE = 0x484C << 32  # "HL": a departed MN's downlink held (smooth handoff)
# issue 14: "PR" in the top 16 bits, the preparing FA in the next 16, the MN in the low 32
COOKIE_PREPARED_BASE = 0x5052 << 48


@dataclass(frozen=True)
class FlowSpec:
    priority: int
    match: tuple[tuple[str, Any], ...]
    # ("output", port) | ("set_dscp", dscp) | ("group", id) | ("set_eth_dst", mac)
    actions: tuple[tuple[str, Any], ...]
    cookie: int = COOKIE_STATIC
    table: int = 0
    meter: int = 0  # 0 = none

    def __init__(self, priority: int, match: tuple[tuple[str, Any], ...],
                 actions: tuple[tuple[str, Any], ...], cookie: int = COOKIE_STATIC,
                 table: int = 0, meter: int = 0) -> None:
        object.__setattr__(self, "priority", priority)
        object.__setattr__(self, "match", match)
        object.__setattr__(self, "actions", actions)
        object.__setattr__(self, "cookie", cookie)
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "meter", meter)

    def match_dict(self) -> dict[str, Any]:
        return dict(self.match)


@dataclass(frozen=True)
class FlowMod:
    op: str  # "add" | "delete"
    flow: FlowSpec
    cookie_mask: int = 0  # delete: delete every flow whose cookie matches under the mask

    def __init__(self, op: str, flow: FlowSpec, cookie_mask: int = 0) -> None:
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "flow", flow)
        object.__setattr__(self, "cookie_mask", cookie_mask)


@dataclass(frozen=True)
class MeterMod:
    """An OpenFlow 1.3 meter (kbps, one drop band).  ``op``: "add" | "delete".
    ``pktps``: the rate is in packets/s and the burst in packets (the punt meter).

    The adapter sends flow deletes, then meter deletes, then meter adds, then flow adds:
    a meter exists before a flow references it, and re-adding a meter never fails.
    """

    op: str
    meter_id: int
    rate_kbps: int = 0
    burst_kbit: int = 0
    pktps: bool = False


@dataclass(frozen=True)
class GroupMod:
    """An OpenFlow 1.3 fast-failover group: a packet takes the first bucket whose
    ``watch_port`` is live (0: no liveness, always live).  ``op``: "add" | "delete".

    The adapter sends flow deletes, group deletes, group adds, then flow adds (a group
    exists before a flow references it; deleting a group also deletes its flows)."""

    op: str
    group_id: int
    buckets: tuple[tuple[int, tuple[tuple[str, int], ...]], ...] = ()


Mod = FlowMod | MeterMod | GroupMod


def flow(priority: int, actions: Iterable[tuple[str, Any]] = (), cookie: int = COOKIE_STATIC,
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
    # core switch -> [(port, gateway)] of dynamic CN gateways (on-demand distribution)
    dynamic_cn_ports: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    home_prefixes: tuple[str, ...] = ()

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
            if gw.kind == "cn_gateway" and getattr(gw, "gateway_type", "") == "dynamic":
                fabric.dynamic_cn_ports.setdefault(gw.core.switch, []).append(
                    (gw.core.port, name))
        fabric.home_prefixes = tuple(p for d in topo.domains.values()
                                     for p in getattr(d, "home_prefixes", ()))
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
    if role == "core":
        # Claims 2, 5: a dynamic CN gateway with no tunnel for a mobile node yet sends
        # the correspondent's packets towards the home network in the clear; the core
        # never forwards them, it shows the first ones to the controller, which then
        # distributes the VPN information (on-demand distribution).
        for port, _gw in fabric.dynamic_cn_ports.get(switch, []):
            for prefix in fabric.home_prefixes:
                net = ipaddress.IPv4Network(prefix)
                flows.append(flow(PRIO_SIGNALLING, (("output", OFPP_CONTROLLER),),
                                  in_port=port, eth_type=ETH_IPV4,
                                  ipv4_dst=(str(net.network_address), str(net.netmask))))
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


def mn_group_id(mn_port: int) -> int:
    """The fast-failover group of the MN at access port ``mn_port`` (one MN per port,
    as for its meters)."""
    return mn_port


def mn_flows(mn_mac: str, mn_port: int, fa_port: int,
             failover: bool = False) -> list[FlowSpec]:
    """Steer a registered MN <-> its FA at the access switch.  ``failover`` (smooth
    handoff): its downlink goes through ``failover_group``."""
    cookie = mn_cookie(mn_mac)
    down = (("group", mn_group_id(mn_port)),) if failover else (("output", mn_port),)
    return [
        flow(PRIO_MN, (("output", fa_port),), cookie, in_port=mn_port, eth_src=mn_mac),
        flow(PRIO_MN, down, cookie, in_port=fa_port, eth_dst=mn_mac),
    ]


def failover_group(mn_port: int, fa_port: int) -> tuple[GroupMod, ...]:
    """Smooth handoff (claims 22-23): the MN's downlink goes to its port while that port
    is live, else to the controller at once - the switch does not wait for the
    controller's reaction to the port's deletion (which then installs ``hold_mn``).
    Every fast-failover bucket needs a watched port (OVS refuses the group otherwise):
    the controller's watches the FA's own port, live while the FA is."""
    gid = mn_group_id(mn_port)
    return (GroupMod("delete", gid),
            GroupMod("add", gid, ((mn_port, (("output", mn_port),)),
                                  (fa_port, (("output", OFPP_CONTROLLER),)))))


def install_mn(mn_mac: str, mn_port: int, fa_port: int,
               failover: bool = False) -> tuple[Mod, ...]:
    """Replace whatever this MN had on the switch by its current steering."""
    return (remove_mn(mn_mac) + (failover_group(mn_port, fa_port) if failover else ())
            + tuple(FlowMod("add", f) for f in mn_flows(mn_mac, mn_port, fa_port,
                                                        failover)))


def remove_mn(mn_mac: str) -> tuple[FlowMod, ...]:
    return (FlowMod("delete", FlowSpec(0, (), (), mn_cookie(mn_mac)), cookie_mask=(1 << 64) - 1),)


# ------------------------------------------------------------------ prepared (issue 14)


def prepared_cookie(mn_mac: str, preparer: str) -> int:
    """Cookie of the flows foreign agent ``preparer`` prepared for ``mn_mac`` at its
    neighbours' access switches (deleted exactly: another FA's preparation stays)."""
    return (COOKIE_PREPARED_BASE | (zlib.crc32(preparer.encode()) & 0xFFFF) << 32
            | zlib.crc32(mn_mac.lower().encode()))


def redirect_flow(mn_mac: str, from_fa_mac: str, fa_mac: str, fa_port: int,
                  cookie: int) -> FlowSpec:
    """Issue 14: a frame of the MN still addressed to the FA it came from (its default
    route is still that FA until the Registration Reply reaches it) is given this FA's
    MAC and sent to this FA: the uplink flows as soon as this FA's tunnel is up, not
    when the MN has switched its route.  Matches on the MN's MAC and the old FA's MAC
    only (any port: the MN's port at this switch is unknown before it arrives); above
    the MN's steering, which it overrides only for frames to the old FA."""
    return flow(PRIO_REDIRECT, (("set_eth_dst", fa_mac), ("output", fa_port)), cookie,
                eth_src=mn_mac.lower(), eth_dst=from_fa_mac.lower())


def uplink_punt_flow(mn_mac: str, from_fa_mac: str, cookie: int) -> FlowSpec:
    """Issue 14: the redirect's match and priority, to the controller (whole frame),
    which holds the MN's uplink until the new FA's tunnel is up; the new FA's redirect
    replaces it in place then (``fa_prepare.release_uplink``)."""
    return flow(PRIO_REDIRECT, (("output", OFPP_CONTROLLER),), cookie,
                eth_src=mn_mac.lower(), eth_dst=from_fa_mac.lower())


# the punt's meter (a spoofer of a held MN's MAC punts at most this to the controller):
# twice the 1,000 pkt/s of the handover probes; a burst that passes a whole hold of a
# faster MN (~100 ms from link-up to release at up to 10,000 pkt/s) unmetered
PUNT_METER_PKTPS = 2000
PUNT_METER_BURST_PKTS = 1000
# ids above every MN meter (``mn_meter_ids`` < 131,072), below OVS's 262,144: one per
# (preparing FA, the MN's port at that FA's switch), collision-free on every switch
PUNT_METER_BASE = 1 << 17
PUNT_METER_PORTS = 1 << 12      # MN ports 1..4095 ...
PUNT_METER_FAS = 1 << 5         # ... at 32 foreign agents


def punt_meter_id(fa_slot: int, mn_port: int) -> int:
    """The meter of the punt that the FA numbered ``fa_slot`` (its index among the
    topology's FAs, ``fa_prepare.fa_slot``) prepares for its MN at ``mn_port``; 0 when
    out of range (then no punt: ``prepare_mn`` prepares the plain redirect)."""
    if not (0 <= fa_slot < PUNT_METER_FAS and 0 < mn_port < PUNT_METER_PORTS):
        return 0
    return PUNT_METER_BASE + fa_slot * PUNT_METER_PORTS + mn_port


def punt_meter(meter_id: int) -> tuple[MeterMod, ...]:
    """(Re)create the punt meter: delete + add (re-adding never fails; OVS deletes the
    flows using it too, the punt added in the same batch comes after)."""
    return (MeterMod("delete", meter_id),
            MeterMod("add", meter_id, PUNT_METER_PKTPS, PUNT_METER_BURST_PKTS, pktps=True))


def prepare_mn(mn_mac: str, preparer: str, preparer_mac: str, fa_mac: str,
               fa_port: int, hold_uplink: bool = False,
               punt_meter_id: int = 0) -> tuple[Mod, ...]:
    """The flows the MN's current FA ``preparer`` (inside MAC ``preparer_mac``) stands
    up at the access switch of a neighbour FA (inside MAC ``fa_mac`` on ``fa_port``)
    before the MN moves there: the redirect of its frames to ``preparer``, and its
    frames to the neighbour FA itself (its ARP replies: that FA may ask for the MN's
    MAC as soon as the redirected frames arrive, before its steering is installed;
    a lost reply would cost the ARP retransmission, 1 s), below the steering that
    replaces it.  Harmless while the MN is elsewhere (no frame carries its MAC there);
    the neighbour FA gets nothing it would not get from the MN after a registration,
    and has no tunnel for it until then.  ``hold_uplink``: the redirect is a punt to
    the controller until that FA's tunnel is up (``uplink_punt_flow``), through the
    pkt/s meter ``punt_meter_id`` (created first); without a meter id, no punt."""
    cookie = prepared_cookie(mn_mac, preparer)
    meters: tuple[Mod, ...] = ()
    if hold_uplink and punt_meter_id:
        first = replace(uplink_punt_flow(mn_mac, preparer_mac, cookie), meter=punt_meter_id)
        meters = punt_meter(punt_meter_id)
    else:
        first = redirect_flow(mn_mac, preparer_mac, fa_mac, fa_port, cookie)
    return meters + (
        FlowMod("add", first),
        FlowMod("add", flow(PRIO_PREPARED, (("output", fa_port),), cookie,
                            eth_src=mn_mac.lower(), eth_dst=fa_mac.lower())))


def unprepare_mn(mn_mac: str, preparer: str, punt_meter_id: int = 0) -> tuple[Mod, ...]:
    """Remove what ``preparer`` prepared for the MN at a switch (nothing else), with
    its punt meter (deleted after the flows)."""
    return ((FlowMod("delete", FlowSpec(0, (), (), prepared_cookie(mn_mac, preparer)),
                     cookie_mask=(1 << 64) - 1),)
            + ((MeterMod("delete", punt_meter_id),) if punt_meter_id else ()))


def hold_cookie(mn_mac: str) -> int:
    return COOKIE_HOLD_BASE | zlib.crc32(mn_mac.lower().encode())


def hold_flow(mn_mac: str, fa_port: int) -> FlowSpec:
    """The FA's IPv4 towards a departed MN goes to the controller (whole frame), which
    holds it until the old FA can forward it (smooth handoff, claims 22-23)."""
    return flow(PRIO_MN, (("output", OFPP_CONTROLLER),), hold_cookie(mn_mac),
                in_port=fa_port, eth_dst=mn_mac, eth_type=ETH_IPV4)


def hold_mn(mn_mac: str, fa_port: int) -> tuple[FlowMod, ...]:
    """The MN's link left this switch: its steering goes, its downlink is punted."""
    return remove_mn(mn_mac) + (FlowMod("add", hold_flow(mn_mac, fa_port)),)


def release_hold(mn_mac: str) -> tuple[FlowMod, ...]:
    return (FlowMod("delete", FlowSpec(0, (), (), hold_cookie(mn_mac)),
                    cookie_mask=(1 << 64) - 1),)


# ------------------------------------------------------------------ QoS (claims 8, 9)

METER_BURST_S = 0.4          # bucket = 0.4 s of the rate ...
METER_MIN_BURST_KBIT = 1000  # ... at least 125 kB: a 64 kB TSO segment always fits


def mn_meter_ids(mn_port: int) -> tuple[int, int]:
    """(uplink MN->FA, downlink FA->MN) meter ids of the MN at access port ``mn_port``.

    Keyed by the port, not the MN: one MN per access port, so ids never collide on a
    switch, and re-adding a port's meters only ever drops the flows of whoever was on
    that port before.  OVS's userspace datapath has 262,144 meters; OpenFlow ports of
    OVS end at 0xfeff, so ids stay below 131,072.
    """
    return 2 * mn_port, 2 * mn_port + 1


def meter_burst_kbit(rate_kbps: int) -> int:
    return max(int(rate_kbps * METER_BURST_S), METER_MIN_BURST_KBIT)


def mn_meters(mn_port: int, qos: QosSpec) -> tuple[MeterMod, ...]:
    """Meters for an MN at ``mn_port`` with profile ``qos`` (none when unlimited)."""
    if qos.rate_kbps <= 0:
        return ()
    ids = mn_meter_ids(mn_port)
    burst = meter_burst_kbit(qos.rate_kbps)
    return (tuple(MeterMod("delete", i) for i in ids)
            + tuple(MeterMod("add", i, qos.rate_kbps, burst) for i in ids))


def qos_mn_flows(mn_mac: str, mn_port: int, fa_port: int, qos: QosSpec,
                 failover: bool = False) -> list[FlowSpec]:
    """``mn_flows`` with the profile's QoS: both directions through their meter; the
    IPv4 uplink also gets the DSCP (a more specific flow: set-field needs eth_type)."""
    base = mn_flows(mn_mac, mn_port, fa_port, failover)
    if qos.rate_kbps <= 0 and not qos.dscp:
        return base
    up, down = mn_meter_ids(mn_port) if qos.rate_kbps > 0 else (0, 0)
    out = [replace(base[0], meter=up), replace(base[1], meter=down)]
    if qos.dscp:
        out.append(replace(flow(PRIO_MN_IP, (("set_dscp", qos.dscp), ("output", fa_port)),
                                mn_cookie(mn_mac), in_port=mn_port, eth_src=mn_mac,
                                eth_type=ETH_IPV4), meter=up))
    return out


def qos_flow_mods(mn_mac: str, mn_port: int, fa_port: int, qos: QosSpec) -> tuple[Mod, ...]:
    """``install_mn`` with QoS: replace the MN's flows, (re)create its meters first.

    With ``QosSpec()`` (no limit, best effort) this is exactly ``install_mn``.
    """
    return (remove_mn(mn_mac) + mn_meters(mn_port, qos)
            + tuple(FlowMod("add", f) for f in qos_mn_flows(mn_mac, mn_port, fa_port, qos)))


def mn_qos(info: VpnInfo, gateway: str) -> QosSpec:
    """The QoS of the user's tunnels at ``gateway`` (one profile: they all agree)."""
    for spec in info.tunnels_of(gateway):
        if spec.qos != QosSpec():
            return spec.qos
    return QosSpec()


class _Visitor(Protocol):
    @property
    def mn_mac(self) -> str: ...

    @property
    def vpn_info(self) -> VpnInfo: ...


def visitors_qos(visitors: Iterable[_Visitor], gateway: str) -> dict[str, QosSpec]:
    """MN MAC -> QoS for the MNs visiting foreign agent ``gateway`` (only those with one)."""
    out = {}
    for v in visitors:
        qos = mn_qos(v.vpn_info, gateway)
        if qos != QosSpec():
            out[v.mn_mac.lower()] = qos
    return out


def with_mn_qos(mods: Iterable[Mod], qos_by_mac: Mapping[str, QosSpec]) -> tuple[Mod, ...]:
    """Rewrite an MN installation (``install_mn``'s mods) into ``qos_flow_mods``.

    For every MN in ``qos_by_mac`` whose steering flows are added in ``mods``, those adds
    are replaced by the QoS flows and its meters; everything else passes unchanged.  The
    runtime applies this to a foreign agent's flow actions until the FA plans QoS itself
    (then this is the identity).  A removal (``remove_mn``) leaves the MN's meters in
    place: no flow refers to them, and the next MN on that port replaces them.
    """
    mods = tuple(mods)
    meters: list[Mod] = []
    adds: list[Mod] = []
    replaced: set[int] = set()
    for mac, qos in qos_by_mac.items():
        cookie = mn_cookie(mac)
        if qos == QosSpec():
            continue
        uplink = [m.flow for m in mods if isinstance(m, FlowMod) and m.op == "add"
                  and m.flow.cookie == cookie and m.flow.match_dict().get("eth_src", "").lower()
                  == mac.lower() and m.flow.meter == 0 and m.flow.priority != PRIO_REDIRECT]
        if not uplink:
            continue
        match = uplink[0].match_dict()
        outs = [p for kind, p in uplink[0].actions if kind == "output"]
        if "in_port" not in match or len(outs) != 1:
            continue
        replaced.add(cookie)
        failover = any(kind == "group" for m in mods if isinstance(m, FlowMod)
                       and m.op == "add" and m.flow.cookie == cookie
                       for kind, _v in m.flow.actions)
        meters += mn_meters(int(match["in_port"]), qos)
        adds += [FlowMod("add", f) for f in qos_mn_flows(mac, int(match["in_port"]), outs[0],
                                                          qos, failover)]
    if not replaced:
        return mods
    # (a redirect towards this FA, issue 14, is not steering: it stays as it is)
    kept = [m for m in mods if not (isinstance(m, FlowMod) and m.op == "add"
                                    and m.flow.cookie in replaced
                                    and m.flow.priority != PRIO_REDIRECT)]
    return tuple(kept + meters + adds)
