"""Issue 14 residual: the punt of a held MN's uplink (``flows.uplink_punt_flow``) goes
through a pkt/s meter at the neighbour's access switch, so a host there that spoofs
the MN's MAC punts at most ``PUNT_METER_PKTPS`` (+ a burst) to the controller.  The
meter is created before the punt refers to it, its id never meets an MN's QoS meter
ids, and it goes with the preparation."""

from __future__ import annotations

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.adapters import openflow
from controller.core import fa_prepare, flows, neighbours
from controller.core.dispatch import Dispatch
from tests.unit.core.test_flow_reconcile import DP
from tests.unit.harness import MobileNode, Walk, topology

MN = "02:00:00:00:01:00"
FA1_MAC, FA2_MAC = "02:00:00:00:21:01", "02:00:00:00:22:01"
FA_PORT = 1
PORT = 2


@pytest.fixture(autouse=True)
def _child_sa_made_at_the_move(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hold is for a neighbour whose CHILD_SA is made at the move: with a standing
    one (the default) the uplink is not held (``test_uplink_standing.py``)."""
    monkeypatch.setattr(neighbours, "STANDING_CHILD_SA", False)


def seamless() -> tuple[Walk, MobileNode]:
    walk = Walk(topology(seamless_handover=True))
    return walk, MobileNode(walk)


def punt_meters(walk: Walk, switch: str) -> dict[int, flows.MeterMod]:
    meters = walk.meters[walk.topo.switches[switch].dpid]
    return {i: m for i, m in meters.items() if m.pktps}


def test_the_punt_carries_its_meter_made_first() -> None:
    mid = flows.punt_meter_id(0, 5)
    mods = flows.prepare_mn(MN, "fa1", FA1_MAC, FA2_MAC, FA_PORT, True, mid)
    (punt,) = [m.flow for m in mods if isinstance(m, flows.FlowMod)
               and m.flow.priority == flows.PRIO_REDIRECT]
    assert punt.actions == (("output", flows.OFPP_CONTROLLER),) and punt.meter == mid
    assert flows.MeterMod("add", mid, flows.PUNT_METER_PKTPS, flows.PUNT_METER_BURST_PKTS,
                          pktps=True) in mods
    # on the wire: the meter (pkt/s, drop band, burst) is added before the flow
    msgs = openflow.flow_mod_msgs(DP, mods)
    kinds = [(type(m).__name__, getattr(m, "command", None)) for m in msgs]
    meter_add = kinds.index(("OFPMeterMod", ofp.OFPMC_ADD))
    flow_add = [i for i, m in enumerate(msgs) if isinstance(m, parser.OFPFlowMod)
                and m.priority == flows.PRIO_REDIRECT][0]
    assert kinds.index(("OFPMeterMod", ofp.OFPMC_DELETE)) < meter_add < flow_add
    meter = msgs[meter_add]
    assert meter.meter_id == mid and meter.flags & ofp.OFPMF_PKTPS
    assert not meter.flags & ofp.OFPMF_KBPS
    (band,) = meter.bands
    assert isinstance(band, parser.OFPMeterBandDrop)
    assert (band.rate, band.burst_size) == (flows.PUNT_METER_PKTPS,
                                            flows.PUNT_METER_BURST_PKTS)
    (inst,) = [i for i in msgs[flow_add].instructions
               if isinstance(i, parser.OFPInstructionMeter)]
    assert inst.meter_id == mid
    # a QoS meter stays in kbps
    (qos,) = [m for m in openflow.flow_mod_msgs(DP, (flows.MeterMod("add", 4, 1000, 1000),))]
    assert qos.flags & ofp.OFPMF_KBPS and not qos.flags & ofp.OFPMF_PKTPS


def test_ids_never_meet_the_mn_meters_nor_each_other() -> None:
    mn_ids = {i for port in (1, 2, 4095, 0xFEFF) for i in flows.mn_meter_ids(port)}
    assert max(mn_ids) < flows.PUNT_METER_BASE
    ids = [flows.punt_meter_id(slot, port) for slot in range(flows.PUNT_METER_FAS)
           for port in range(1, flows.PUNT_METER_PORTS)]
    assert len(set(ids)) == len(ids) and min(ids) >= flows.PUNT_METER_BASE
    assert max(ids) < 262_144                  # OVS userspace datapath's meters
    # out of range: no meter, and then no punt either (the plain redirect)
    assert flows.punt_meter_id(flows.PUNT_METER_FAS, 1) == 0
    assert flows.punt_meter_id(0, flows.PUNT_METER_PORTS) == 0
    assert flows.punt_meter_id(-1, 1) == 0
    mods = flows.prepare_mn(MN, "fa1", FA1_MAC, FA2_MAC, FA_PORT, True, 0)
    assert not any(isinstance(m, flows.MeterMod) for m in mods)
    assert mods[0].flow == flows.redirect_flow(MN, FA1_MAC, FA2_MAC, FA_PORT,
                                               flows.prepared_cookie(MN, "fa1"))


def test_the_meter_is_prepared_and_goes_with_the_preparation() -> None:
    walk, mn = seamless()
    assert mn.register("fa1").accepted
    fa1 = walk.fa("fa1")
    mid = fa_prepare.punt_meter_id(fa1.conf, fa1.visitors[mn.config.nai])
    assert mid >= flows.PUNT_METER_BASE
    for switch in ("acc2", "acc3"):
        assert set(punt_meters(walk, switch)) == {mid}
        winner = walk.table(switch).winner(in_port=PORT, eth_src=MN, eth_dst=FA1_MAC)
        assert winner is not None and winner.meter == mid
    assert punt_meters(walk, "acc1") == {}
    # a reconnected switch gets the meter back with the punt
    intended = Dispatch(walk.roles).intended_flows(walk.topo.switches["acc2"].dpid)
    assert any(isinstance(m, flows.MeterMod) and m.op == "add" and m.meter_id == mid
               for m in intended)
    # the MN moves to fa2: fa1's preparation goes, meters too; fa2 prepares its own
    walk.now += 2.0
    assert mn.register("fa2", "fa1", port=PORT).accepted
    assert mid not in punt_meters(walk, "acc3")
    assert mid not in punt_meters(walk, "acc2")
    fa2 = walk.fa("fa2")
    mid2 = fa_prepare.punt_meter_id(fa2.conf, fa2.visitors[mn.config.nai])
    assert mid2 != mid and set(punt_meters(walk, "acc1")) == {mid2}
    # and it leaves: nothing of it stays
    pos = walk.mark()
    walk.now += 2.0
    assert mn.register("fa2", lifetime=0).accepted, walk.trace(pos)
    assert all(punt_meters(walk, s) == {} for s in walk.topo.switches)


def test_a_new_port_at_the_same_fa_replaces_the_meter() -> None:
    walk, mn = seamless()
    assert mn.register("fa1").accepted
    fa1 = walk.fa("fa1")
    old = fa_prepare.punt_meter_id(fa1.conf, fa1.visitors[mn.config.nai])
    walk.now += 2.0
    assert mn.register("fa1", port=mn.port + 1).accepted
    new = fa_prepare.punt_meter_id(fa1.conf, fa1.visitors[mn.config.nai])
    assert new == old + 1
    assert set(punt_meters(walk, "acc2")) == {new}


def test_a_displaced_visitors_removal_keeps_the_meter_of_its_ports_new_mn() -> None:
    """One MN per access port: bob registers at fa1 on the port alice had, while fa1
    still lists alice (she left without a word).  The port's punt meter is bob's now:
    alice's removal later (here: her registration at fa2) must not delete it, or OVS
    deletes bob's punt with it (his hold lost at fa1's neighbours)."""
    walk = Walk(topology(seamless_handover=True))
    alice, bob = MobileNode(walk, "mn1"), MobileNode(walk, "mn2")
    assert alice.register("fa1").accepted
    walk.now += 2.0
    assert bob.register("fa1", port=alice.port).accepted
    fa1 = walk.fa("fa1")
    mid = fa_prepare.punt_meter_id(fa1.conf, fa1.visitors[bob.config.nai],
                                   fa1.visitors.values())
    assert mid >= flows.PUNT_METER_BASE
    # alice, displaced, keeps no meter of her own
    assert fa_prepare.punt_meter_id(fa1.conf, fa1.visitors[alice.config.nai],
                                    fa1.visitors.values()) == 0
    walk.now += 2.0
    assert alice.register("fa2", port=alice.port + 5).accepted
    assert alice.config.nai not in fa1.visitors
    for switch in ("acc2", "acc3"):
        assert mid in punt_meters(walk, switch), switch
        winner = walk.table(switch).winner(in_port=PORT, eth_src=bob.mac, eth_dst=FA1_MAC)
        assert winner is not None and winner.meter == mid, switch
