"""OpenFlow 1.3 adapter: the core's FlowMods and packets as os-ken messages.

Builds messages for a given datapath; never decides anything.  Also builds the
packets the controller emits on behalf of a foreign agent (agent advertisements,
Registration Replies) and parses punted Mobile IPv4 signalling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from os_ken.lib.packet import arp, ethernet, ipv4, packet, udp
from os_ken.ofproto import ofproto_v1_3 as ofp

from controller.core.flows import FlowMod, GroupMod, MeterMod, Mod, OFPP_CONTROLLER

MIP_PORT = 434


def flow_mod_msgs(dp: Any, mods: tuple[Mod, ...] | list[Mod]) -> list[Any]:
    """os-ken messages for ``mods``: flow deletes, meter deletes, meter adds, flow adds
    (FAUCET's deletes-first order; a meter exists before a flow references it)."""
    flow_mods = [m for m in mods if isinstance(m, FlowMod)]
    meter_mods = [m for m in mods if isinstance(m, MeterMod)]
    group_mods = [m for m in mods if isinstance(m, GroupMod)]
    out = [_flow_mod(dp, m) for m in flow_mods if m.op == "delete"]
    out += [_meter_mod(dp, m) for m in meter_mods if m.op == "delete"]
    out += [_group_mod(dp, m) for m in group_mods if m.op == "delete"]
    out += [_meter_mod(dp, m) for m in meter_mods if m.op != "delete"]
    out += [_group_mod(dp, m) for m in group_mods if m.op != "delete"]
    out += [_flow_mod(dp, m) for m in flow_mods if m.op != "delete"]
    return out


def _actions(dp: Any, spec_actions: Any) -> list[Any]:
    parser = dp.ofproto_parser
    actions = []
    for kind, value in spec_actions:
        if kind == "output":
            max_len = ofp.OFPCML_NO_BUFFER if value == OFPP_CONTROLLER else 0
            actions.append(parser.OFPActionOutput(value, max_len))
        elif kind == "set_dscp":
            actions.append(parser.OFPActionSetField(ip_dscp=value))
        elif kind == "group":
            actions.append(parser.OFPActionGroup(value))
        elif kind == "set_eth_dst":
            actions.append(parser.OFPActionSetField(eth_dst=value))
        else:
            raise ValueError(f"unknown action {kind!r}")
    return actions


def _group_mod(dp: Any, mod: GroupMod) -> Any:
    """Delete: one group (the switch deletes the flows using it too).  Add: a
    fast-failover group, one bucket per (watch port or 0, actions)."""
    parser = dp.ofproto_parser
    if mod.op == "delete":
        return parser.OFPGroupMod(datapath=dp, command=ofp.OFPGC_DELETE, type_=ofp.OFPGT_FF,
                                  group_id=mod.group_id, buckets=[])
    if mod.op != "add":
        raise ValueError(f"unknown group-mod op {mod.op!r}")
    buckets = [parser.OFPBucket(watch_port=watch or ofp.OFPP_ANY, watch_group=ofp.OFPG_ANY,
                                actions=_actions(dp, acts))
               for watch, acts in mod.buckets]
    return parser.OFPGroupMod(datapath=dp, command=ofp.OFPGC_ADD, type_=ofp.OFPGT_FF,
                              group_id=mod.group_id, buckets=buckets)


def _flow_mod(dp: Any, mod: FlowMod) -> Any:
    parser = dp.ofproto_parser
    spec = mod.flow
    if mod.op == "delete":
        return parser.OFPFlowMod(
            datapath=dp, cookie=spec.cookie, cookie_mask=mod.cookie_mask,
            table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE, out_port=ofp.OFPP_ANY,
            out_group=ofp.OFPG_ANY, match=parser.OFPMatch(**spec.match_dict()))
    actions = _actions(dp, spec.actions)
    inst = []
    if spec.meter:
        inst.append(parser.OFPInstructionMeter(spec.meter))
    if actions:
        inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions))
    return parser.OFPFlowMod(
        datapath=dp, cookie=spec.cookie, table_id=spec.table, command=ofp.OFPFC_ADD,
        priority=spec.priority, match=parser.OFPMatch(**spec.match_dict()),
        instructions=inst)


def _meter_mod(dp: Any, mod: MeterMod) -> Any:
    """Delete: one meter (OVS deletes the flows using it too).  Add: kbps (or pkt/s,
    ``pktps``), one drop band with a burst (OVS's userspace datapath supports both,
    DESIGN.md §4 / docs/qos.md)."""
    parser = dp.ofproto_parser
    if mod.op == "delete":
        return parser.OFPMeterMod(datapath=dp, command=ofp.OFPMC_DELETE, flags=0,
                                  meter_id=mod.meter_id, bands=[])
    if mod.op != "add":
        raise ValueError(f"unknown meter-mod op {mod.op!r}")
    band = parser.OFPMeterBandDrop(rate=mod.rate_kbps, burst_size=mod.burst_kbit)
    return parser.OFPMeterMod(
        datapath=dp, command=ofp.OFPMC_ADD,
        flags=(ofp.OFPMF_PKTPS if mod.pktps else ofp.OFPMF_KBPS) | ofp.OFPMF_BURST
        | ofp.OFPMF_STATS,
        meter_id=mod.meter_id, bands=[band])


def packet_out(dp: Any, data: bytes, port: int, in_port: int | None = None) -> Any:
    parser = dp.ofproto_parser
    return parser.OFPPacketOut(
        datapath=dp, buffer_id=ofp.OFP_NO_BUFFER,
        in_port=in_port if in_port is not None else ofp.OFPP_CONTROLLER,
        actions=[parser.OFPActionOutput(port, 0)], data=data)


def udp_frame(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, sport: int, dport: int,
              payload: bytes, ttl: int = 64) -> bytes:
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=dst_mac, src=src_mac, ethertype=0x0800))
    pkt.add_protocol(ipv4.ipv4(src=src_ip, dst=dst_ip, proto=17, ttl=ttl))
    pkt.add_protocol(udp.udp(src_port=sport, dst_port=dport))
    pkt.add_protocol(payload)
    pkt.serialize()
    return bytes(pkt.data)


def icmp_frame(src_mac: str, src_ip: str, icmp_bytes: bytes,
               dst_mac: str = "ff:ff:ff:ff:ff:ff", dst_ip: str = "255.255.255.255") -> bytes:
    """An ICMP message already encoded (checksum included), e.g. an agent advertisement."""
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=dst_mac, src=src_mac, ethertype=0x0800))
    pkt.add_protocol(ipv4.ipv4(src=src_ip, dst=dst_ip, proto=1, ttl=1))
    pkt.add_protocol(icmp_bytes)
    pkt.serialize()
    return bytes(pkt.data)


def arp_reply_frame(src_mac: str, src_ip: str, dst_mac: str, dst_ip: str) -> bytes:
    """An ARP reply from ``src_mac``/``src_ip`` to ``dst_mac``/``dst_ip``, unicast."""
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=dst_mac, src=src_mac, ethertype=0x0806))
    pkt.add_protocol(arp.arp(opcode=arp.ARP_REPLY, src_mac=src_mac, src_ip=src_ip,
                             dst_mac=dst_mac, dst_ip=dst_ip))
    pkt.serialize()
    return bytes(pkt.data)


@dataclass(frozen=True)
class PuntedMip:
    src_mac: str
    src_ip: str
    payload: bytes
    #: the request's UDP source port: the FA answers there (RFC 5944 §3.7.2.2 pending
    #: list, issue 18); most clients send from an ephemeral port, not 434
    src_port: int = MIP_PORT


def parse_punted_mip(data: bytes) -> PuntedMip | None:
    """The UDP 434 payload of a punted frame, or None for anything else."""
    try:
        pkt = packet.Packet(data)
    except Exception:  # os-ken's parser raises assorted errors on garbage
        return None
    eth = pkt.get_protocol(ethernet.ethernet)
    ip = pkt.get_protocol(ipv4.ipv4)
    u = pkt.get_protocol(udp.udp)
    if eth is None or ip is None or u is None or u.dst_port != MIP_PORT:
        return None
    payload = pkt.protocols[-1]
    if not isinstance(payload, (bytes, bytearray)):
        return None
    return PuntedMip(eth.src, ip.src, bytes(payload), int(u.src_port))


def ipv4_dst(data: bytes) -> str | None:
    """Destination address of an IPv4-in-Ethernet frame, or None."""
    if len(data) < 34 or data[12:14] != b"\x08\x00":
        return None
    return ".".join(str(b) for b in data[30:34])


# ------------------------------------------------------------------ reconcile (issue 5)


def flow_stats_request(dp: Any) -> Any:
    """Every flow of every table (OFPMP_FLOW, no filter)."""
    parser = dp.ofproto_parser
    return parser.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                      0, 0, parser.OFPMatch())


def _match_bytes(match: Any) -> bytes:
    buf = bytearray()
    match.serialize(buf, 0)       # os-ken sorts the OXM fields: a canonical form
    return bytes(buf)


def _instructions_bytes(instructions: Any) -> bytes:
    buf = bytearray()
    for inst in instructions or ():
        inst.serialize(buf, len(buf))
    return bytes(buf)


def _identity(f: Any) -> tuple[int, int, bytes]:
    """What makes two flows the same entry of a table (OFPFC_ADD replaces it)."""
    return (int(f.table_id), int(f.priority), _match_bytes(f.match))


def _key(f: Any) -> tuple[Any, ...]:
    return _identity(f) + (int(f.cookie), _instructions_bytes(f.instructions))


def reconcile_msgs(dp: Any, mods: tuple[Mod, ...] | list[Mod],
                   existing: list[Any]) -> tuple[list[Any], dict[str, int]]:
    """Messages that turn a switch holding ``existing`` (its flow stats) into one
    holding exactly the flows ``mods`` add (their deletes are ignored: this is the
    reconcile of a whole table, not a change).  A flow present with the same table,
    priority, match, cookie and instructions is left alone (no gap, counters kept); a
    missing or different one is added (an add replaces an entry with the same table,
    priority and match in place); an entry no intended flow has is deleted (strict).
    Meters are (re)added only for flows that are added.  Returns (messages, counts)."""
    parser = dp.ofproto_parser
    intended = [_flow_mod(dp, m) for m in mods if isinstance(m, FlowMod) and m.op != "delete"]
    have = {_key(f) for f in existing}
    want = {_key(m) for m in intended}
    want_ids = {_identity(m) for m in intended}
    adds = [m for m in intended if _key(m) not in have]
    meters = {i.meter_id for m in adds for i in m.instructions
              if isinstance(i, parser.OFPInstructionMeter)}
    meter_adds = [_meter_mod(dp, m) for m in mods if isinstance(m, MeterMod)
                  and m.op != "delete" and m.meter_id in meters]
    # a flow added that uses a group: that group (re)made first (delete + add: deleting
    # it removes only the flows that use it, i.e. the one being added)
    groups = {a.group_id for m in adds for i in m.instructions
              if isinstance(i, parser.OFPInstructionActions)
              for a in i.actions if isinstance(a, parser.OFPActionGroup)}
    meter_adds += [_group_mod(dp, m) for m in mods
                   if isinstance(m, GroupMod) and m.group_id in groups]
    deletes = [parser.OFPFlowMod(
        datapath=dp, cookie=f.cookie, cookie_mask=(1 << 64) - 1, table_id=f.table_id,
        command=ofp.OFPFC_DELETE_STRICT, priority=f.priority, out_port=ofp.OFPP_ANY,
        out_group=ofp.OFPG_ANY, match=f.match)
        for f in existing if _key(f) not in want and _identity(f) not in want_ids]
    counts = {"kept": len(intended) - len(adds), "added": len(adds),
              "removed": len(deletes)}
    return meter_adds + adds + deletes, counts
