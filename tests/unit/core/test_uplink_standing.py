"""Issue 14: with a standing CHILD_SA at the neighbour FA (``neighbours.STANDING_CHILD_SA``)
the new FA's tunnel is keyed before the MN moves, so its uplink is not held: the flow the
MN's FA prepares at a neighbour's access switch is the plain redirect to that FA (no punt
to the controller, no punt meter), the move sends the redirect with the MN's cookie in
the steering it sends alongside its tunnel (no ``ReleaseUplink``), and the old FA's
removal of what it prepared cannot take it.  The hold stays where the CHILD_SA is made at
the move (``STANDING_CHILD_SA`` False: ``test_uplink_hold.py``).  Measured on real
packets: bench/results/issue14-uplink-2026-12-06/README.md."""

from __future__ import annotations

import pytest

from controller.core import fa_prepare, flows, neighbours
from controller.core.actions import HoldUplink, ReleaseUplink, SendFlows
from tests.unit.harness import MobileNode, Walk, topology

MN = "02:00:00:00:01:00"
FA1_MAC, FA2_MAC, FA3_MAC = "02:00:00:00:21:01", "02:00:00:00:22:01", "02:00:00:00:23:01"
FA_PORT = 1
PORT = 2
NAI = "alice@home.example"


def seamless() -> tuple[Walk, MobileNode]:
    walk = Walk(topology(seamless_handover=True))
    return walk, MobileNode(walk)


def punt_meters(walk: Walk) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for name, sw in walk.topo.switches.items():
        ids = {i for i, m in walk.meters[sw.dpid].items() if m.pktps}
        if ids:
            out[name] = ids
    return out


def test_the_switch_follows_the_standing_child_sa(monkeypatch: pytest.MonkeyPatch) -> None:
    assert neighbours.STANDING_CHILD_SA and fa_prepare.HOLD_UPLINK
    assert not fa_prepare.holds_uplink()
    monkeypatch.setattr(neighbours, "STANDING_CHILD_SA", False)
    assert fa_prepare.holds_uplink()
    monkeypatch.setattr(fa_prepare, "HOLD_UPLINK", False)
    assert not fa_prepare.holds_uplink()


def test_the_prepared_flow_is_the_redirect_without_punt_or_meter() -> None:
    walk, mn = seamless()
    pos = walk.mark()
    assert mn.register("fa1").accepted
    for switch, mac in (("acc2", FA2_MAC), ("acc3", FA3_MAC)):
        assert walk.table(switch).forward(PORT, MN, FA1_MAC, flows.ETH_IPV4) \
            == [(FA_PORT, mac)]
        assert walk.table(switch).winner(in_port=PORT, eth_src=MN, eth_dst=FA1_MAC).cookie \
            == flows.prepared_cookie(MN, "fa1")
    sent = [m for r, a in walk.of_type(SendFlows, pos) if r == "fa:fa1" for m in a.mods]
    assert not any(isinstance(m, flows.MeterMod) for m in sent)
    assert not any(isinstance(m, flows.FlowMod)
                   and ("output", flows.OFPP_CONTROLLER) in m.flow.actions for m in sent)
    assert punt_meters(walk) == {}
    # a frame of the MN seen at a neighbour's switch is nobody's hold
    fa1 = walk.fa("fa1")
    acc2 = walk.topo.switches["acc2"].dpid
    assert fa_prepare.uplink_hold(fa1.conf, fa1.visitors.values(), acc2, MN, FA1_MAC) == []
    # a reconnected switch gets the same redirect back
    assert fa_prepare.prepared_flows(fa1.conf, fa1.visitors.values(), acc2) == list(
        flows.prepare_mn(MN, "fa1", FA1_MAC, FA2_MAC, FA_PORT))


def test_the_move_redirects_in_its_steering_before_the_old_fa_unprepares() -> None:
    walk, mn = seamless()
    assert mn.register("fa1").accepted
    walk.now += 2.0
    pos = walk.mark()
    assert mn.register("fa2", "fa1", port=PORT).accepted
    assert walk.of_type(ReleaseUplink, pos) == []
    acc2 = walk.topo.switches["acc2"].dpid
    fa2 = walk.fa("fa2")
    redirect = fa_prepare.redirect(fa2.conf, MN, fa2.visitors[NAI].vpn_info, "fa1")
    assert redirect
    sends = [(r, a) for r, a in walk.of_type(SendFlows, pos) if a.dpid == acc2]
    steering = [i for i, (r, a) in enumerate(sends)
                if r == "fa:fa2" and all(m in a.mods for m in redirect)]
    unprepare = [i for i, (r, a) in enumerate(sends) if r == "fa:fa1" and any(
        isinstance(m, flows.FlowMod) and m.op == "delete"
        and m.flow.cookie == flows.prepared_cookie(MN, "fa1") for m in a.mods)]
    assert steering and unprepare and steering[0] < unprepare[0]
    # the redirect stands with the MN's cookie after fa1 removed its preparation
    table = walk.table("acc2")
    assert table.forward(PORT, MN, FA1_MAC, flows.ETH_IPV4) == [(FA_PORT, FA2_MAC)]
    assert table.winner(in_port=PORT, eth_src=MN, eth_dst=FA1_MAC).cookie \
        == flows.mn_cookie(MN)
    # the next move is prepared the same way, at fa2's neighbours
    assert walk.table("acc1").forward(PORT, MN, FA2_MAC, flows.ETH_IPV4) \
        == [(FA_PORT, FA1_MAC)]
    assert punt_meters(walk) == {}


def test_without_a_standing_child_sa_the_uplink_is_held(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(neighbours, "STANDING_CHILD_SA", False)
    walk, mn = seamless()
    assert mn.register("fa1").accepted
    assert walk.table("acc2").forward(PORT, MN, FA1_MAC, flows.ETH_IPV4) \
        == [(flows.OFPP_CONTROLLER, FA1_MAC)]
    assert set(punt_meters(walk)) == {"acc2", "acc3"}
    fa1 = walk.fa("fa1")
    acc2 = walk.topo.switches["acc2"].dpid
    assert fa_prepare.uplink_hold(fa1.conf, fa1.visitors.values(), acc2, MN, FA1_MAC) \
        == [HoldUplink(acc2, MN, NAI, FA1_MAC)]
    walk.now += 2.0
    pos = walk.mark()
    assert mn.register("fa2", "fa1", port=PORT).accepted
    assert len(walk.of_type(ReleaseUplink, pos)) == 1
