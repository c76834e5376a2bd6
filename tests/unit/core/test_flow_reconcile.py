"""Issue 5: a (re)connecting switch gets only the difference between what it holds
(its flow stats) and what the controller intends; identical flows are left alone."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.adapters import openflow
from controller.config import load_topology
from controller.core import flows
from tests.unit.harness import DEFAULT_TOPOLOGY

DP = SimpleNamespace(ofproto_parser=parser, ofproto=ofp, id=0x401)
MN_MAC, MN_PORT, FA_PORT = "02:00:00:00:01:00", 1, 5


def intended() -> tuple[flows.Mod, ...]:
    fabric = flows.Fabric.from_topology(load_topology(DEFAULT_TOPOLOGY))
    return (tuple(flows.static_flows(fabric, "acc1"))
            + tuple(flows.install_mn(MN_MAC, MN_PORT, FA_PORT)))


def as_stats(mods: tuple[flows.Mod, ...]) -> list[Any]:
    """What the switch would report after these adds: serialised and parsed back."""
    out = []
    for msg in openflow.flow_mod_msgs(DP, mods):
        if not isinstance(msg, parser.OFPFlowMod) or msg.command != ofp.OFPFC_ADD:
            continue
        buf = bytearray()
        msg.match.serialize(buf, 0)
        match = parser.OFPMatch.parser(bytes(buf), 0)
        ibuf = bytearray()
        for inst in msg.instructions:
            inst.serialize(ibuf, len(ibuf))
        insts, off = [], 0
        while off < len(ibuf):
            inst = parser.OFPInstruction.parser(bytes(ibuf), off)
            insts.append(inst)
            off += inst.len
        out.append(parser.OFPFlowStats(
            table_id=msg.table_id, duration_sec=1, duration_nsec=0, priority=msg.priority,
            idle_timeout=0, hard_timeout=0, flags=0, cookie=msg.cookie, packet_count=7,
            byte_count=700, match=match, instructions=insts))
    return out


def test_a_switch_holding_exactly_our_flows_gets_nothing() -> None:
    mods = intended()
    msgs, counts = openflow.reconcile_msgs(DP, mods, as_stats(mods))
    assert msgs == []
    assert counts["added"] == counts["removed"] == 0 and counts["kept"] > 3


def test_an_empty_switch_gets_every_flow_and_no_delete() -> None:
    mods = intended()
    msgs, counts = openflow.reconcile_msgs(DP, mods, [])
    assert counts["removed"] == 0 and counts["kept"] == 0
    assert all(m.command == ofp.OFPFC_ADD for m in msgs) and len(msgs) == counts["added"]


def test_stale_flows_are_deleted_and_changed_ones_replaced_in_place() -> None:
    mods = intended()
    gone = "02:00:00:00:09:09"
    moved = tuple(flows.install_mn(MN_MAC, MN_PORT + 1, FA_PORT))   # MN on another port
    held = as_stats(mods[:-len(moved)] + moved + tuple(flows.install_mn(gone, 3, FA_PORT)))
    msgs, counts = openflow.reconcile_msgs(DP, mods, held)
    deletes = [m for m in msgs if m.command == ofp.OFPFC_DELETE_STRICT]
    adds = [m for m in msgs if m.command == ofp.OFPFC_ADD]
    # the departed MN's flows and the moved MN's flows at its old port go
    assert {m.cookie for m in deletes} == {flows.mn_cookie(gone), flows.mn_cookie(MN_MAC)}
    assert adds and all(m.cookie == flows.mn_cookie(MN_MAC) for m in adds)
    # no delete hits an entry an add replaces (same table, priority and match)
    add_ids = {(m.table_id, m.priority, str(m.match)) for m in adds}
    assert not any((m.table_id, m.priority, str(m.match)) in add_ids for m in deletes)
    assert counts == {"kept": counts["kept"], "added": len(adds), "removed": len(deletes)}


def test_failover_group_messages_and_reconcile() -> None:
    """Smooth handoff: the MN's downlink through a fast-failover group; the group is
    (re)made before the flow that uses it, and a reconcile that re-adds the flow
    re-makes its group (a kept flow leaves it alone)."""
    mods = flows.install_mn(MN_MAC, MN_PORT, FA_PORT, failover=True)
    msgs = openflow.flow_mod_msgs(DP, mods)
    kinds = [(type(m).__name__, getattr(m, "command", None)) for m in msgs]
    assert kinds == [("OFPFlowMod", ofp.OFPFC_DELETE), ("OFPGroupMod", ofp.OFPGC_DELETE),
                     ("OFPGroupMod", ofp.OFPGC_ADD), ("OFPFlowMod", ofp.OFPFC_ADD),
                     ("OFPFlowMod", ofp.OFPFC_ADD)]
    group = msgs[2]
    assert group.type == ofp.OFPGT_FF and group.group_id == flows.mn_group_id(MN_PORT)
    assert [b.watch_port for b in group.buckets] == [MN_PORT, FA_PORT]
    assert group.buckets[1].actions[0].port == ofp.OFPP_CONTROLLER
    assert group.buckets[1].actions[0].max_len == ofp.OFPCML_NO_BUFFER
    for m in msgs:                       # every message serialises
        m.serialize()
    fabric = flows.Fabric.from_topology(load_topology(DEFAULT_TOPOLOGY))
    want = tuple(flows.static_flows(fabric, "acc1")) + mods
    out, counts = openflow.reconcile_msgs(DP, want, as_stats(want))
    assert out == [] and counts["added"] == 0
    out, counts = openflow.reconcile_msgs(DP, want, as_stats(tuple(
        flows.static_flows(fabric, "acc1"))))
    assert counts["added"] == 2
    assert [type(m).__name__ for m in out[:2]] == ["OFPGroupMod", "OFPGroupMod"]
