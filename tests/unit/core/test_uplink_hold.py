"""Issue 14: the uplink of a seamless MN held at the new access switch until the new
FA's tunnel is up.  The flow its current FA prepares at a neighbour's access switch
punts the MN's frames to the controller (nothing reaches the neighbour FA before its
tunnel); the core names the MN behind a punted frame (``fa_prepare.uplink_hold``); the
new FA's walk releases the held frames after its tunnels and before its reply, and
only then replaces the punt by the redirect.  Without the option: today's flows.
Only where the neighbour's CHILD_SA is made at the move (``STANDING_CHILD_SA`` False,
pinned here); with a standing one nothing is held (``test_uplink_standing.py``)."""

from __future__ import annotations

import pytest

from controller.core import fa_prepare, flows, neighbours
from controller.core.actions import HoldUplink, ReleaseUplink, SendFlows
from tests.unit.harness import MobileNode, Walk, topology

MN = "02:00:00:00:01:00"
OTHER = "02:00:00:00:01:01"
FA1_MAC, FA2_MAC, FA3_MAC = "02:00:00:00:21:01", "02:00:00:00:22:01", "02:00:00:00:23:01"
FA_PORT = 1
PORT = 2
NAI = "alice@home.example"


@pytest.fixture(autouse=True)
def _child_sa_made_at_the_move(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hold is for a neighbour whose CHILD_SA is made at the move: with a standing
    one (the default) the uplink is not held (``test_uplink_standing.py``)."""
    monkeypatch.setattr(neighbours, "STANDING_CHILD_SA", False)


def seamless() -> tuple[Walk, MobileNode]:
    walk = Walk(topology(seamless_handover=True))
    return walk, MobileNode(walk)


def dpid(walk: Walk, switch: str) -> int:
    return walk.topo.switches[switch].dpid


def test_prepared_flow_punts_the_uplink_until_the_move() -> None:
    walk, mn = seamless()
    assert mn.register("fa1").accepted
    # at fa1's neighbours, the MN's frames to fa1 go to the controller, nowhere else
    for switch in ("acc2", "acc3"):
        assert walk.table(switch).forward(PORT, MN, FA1_MAC, flows.ETH_IPV4) \
            == [(flows.OFPP_CONTROLLER, FA1_MAC)]
        assert walk.table(switch).forward(PORT, OTHER, FA1_MAC, flows.ETH_IPV4) == []
    # the ARP replies to the neighbour FA itself still pass (prepared flow 2)
    assert walk.table("acc2").forward(PORT, MN, FA2_MAC, flows.ETH_ARP) == [(FA_PORT, FA2_MAC)]


def test_the_core_names_the_mn_behind_a_punted_frame() -> None:
    walk, mn = seamless()
    assert mn.register("fa1").accepted
    fa1 = walk.fa("fa1")
    visitors = list(fa1.visitors.values())
    acc2, acc1 = dpid(walk, "acc2"), dpid(walk, "acc1")
    assert fa_prepare.uplink_hold(fa1.conf, visitors, acc2, MN.upper(), FA1_MAC) \
        == [HoldUplink(acc2, MN, NAI, FA1_MAC)]
    # not its MN, not to its MAC, not at a neighbour's switch, not another FA's
    assert fa_prepare.uplink_hold(fa1.conf, visitors, acc2, OTHER, FA1_MAC) == []
    assert fa_prepare.uplink_hold(fa1.conf, visitors, acc2, MN, FA2_MAC) == []
    assert fa_prepare.uplink_hold(fa1.conf, visitors, acc1, MN, FA1_MAC) == []
    fa2 = walk.fa("fa2")
    assert fa_prepare.uplink_hold(fa2.conf, fa2.visitors.values(), acc2, MN, FA1_MAC) == []


def test_the_move_releases_after_the_tunnel_then_redirects() -> None:
    walk, mn = seamless()
    assert mn.register("fa1").accepted
    walk.now += 2.0
    pos = walk.mark()
    assert mn.register("fa2", "fa1", port=PORT).accepted
    trace = walk.trace(pos)
    release = trace.index("fa:fa2 ReleaseUplink acc2")
    assert trace.index("fa:fa2 AddTunnel fa2 alice_home.example/ha-fa2 initiator") < release
    assert release < trace.index("fa:fa2 -> mn RRP 0")
    # the steering sent alongside the tunnel does not redirect: the punt stays
    acc2 = dpid(walk, "acc2")
    steering = [a for r, a in walk.of_type(SendFlows, pos)
                if r == "fa:fa2" and a.dpid == acc2][0]
    assert not any(isinstance(m, flows.FlowMod) and m.flow.priority == flows.PRIO_REDIRECT
                   for m in steering.mods)
    (action,) = [a for _r, a in walk.of_type(ReleaseUplink, pos)]
    assert action == ReleaseUplink("fa2", acc2, MN, NAI, ("alice_home.example/ha-fa2",),
                                   fa_prepare.redirect(walk.fa("fa2").conf, MN,
                                                       walk.fa("fa2").visitors[NAI].vpn_info,
                                                       "fa1"), FA1_MAC)
    # after it: the redirect replaced the punt, with the MN's cookie
    table = walk.table("acc2")
    assert table.forward(PORT, MN, FA1_MAC, flows.ETH_IPV4) == [(FA_PORT, FA2_MAC)]
    assert table.winner(in_port=PORT, eth_src=MN, eth_dst=FA1_MAC).cookie \
        == flows.mn_cookie(MN)
    # the next move is prepared as a punt again
    assert walk.table("acc1").forward(PORT, MN, FA2_MAC, flows.ETH_IPV4) \
        == [(flows.OFPP_CONTROLLER, FA2_MAC)]


def test_without_the_option_nothing_is_held() -> None:
    walk = Walk(topology())
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    walk.now += 2.0
    pos = walk.mark()
    assert mn.register("fa2", "fa1", port=PORT).accepted
    assert walk.of_type(ReleaseUplink, pos) == []
    fa1 = walk.fa("fa1")
    assert fa_prepare.uplink_hold(fa1.conf, fa1.visitors.values(), dpid(walk, "acc2"),
                                  MN, FA1_MAC) == []
    assert walk.table("acc2").forward(PORT, MN, FA1_MAC, flows.ETH_IPV4) \
        == [(FA_PORT, FA1_MAC)]


def test_the_punt_as_an_openflow_message() -> None:
    """Whole frames to the controller (no buffer id: the runtime forwards them)."""
    from os_ken.ofproto import ofproto_v1_3 as ofp
    from os_ken.ofproto import ofproto_v1_3_parser as parser

    from controller.adapters import openflow
    from tests.unit.core.test_flow_reconcile import DP, as_stats

    mods = flows.prepare_mn(MN, "fa1", FA1_MAC, FA2_MAC, FA_PORT, hold_uplink=True,
                            punt_meter_id=flows.punt_meter_id(0, PORT))
    _del, _add, msg, _steer = openflow.flow_mod_msgs(DP, mods)
    assert msg.priority == flows.PRIO_REDIRECT
    assert dict(msg.match.items()) == {"eth_src": MN, "eth_dst": FA1_MAC}
    (act,) = msg.instructions[-1].actions
    assert isinstance(act, parser.OFPActionOutput)
    assert act.port == ofp.OFPP_CONTROLLER and act.max_len == ofp.OFPCML_NO_BUFFER
    _msgs, counts = openflow.reconcile_msgs(DP, mods, as_stats(mods))
    assert counts == {"kept": 2, "added": 0, "removed": 0}
