"""Issue 14: for an MN whose profile asks for seamless handover, its FA prepares the
flows of its next move at the access switches of the FAs it can move to: a frame the
MN still addresses to its current FA is given the neighbour FA's MAC and reaches that
FA without a round trip to the controller.  The new FA keeps that flow as part of the
MN's steering, prepares its own neighbours, and nothing prepared outlives the MN's
stay (moves, expiry).  Without the option nothing changes.

The fake tables answer "where does this frame go" (``FakeOFTable.forward``)."""

from __future__ import annotations

from controller.core import flows
from controller.core.actions import SendFlows
from controller.core.dispatch import Dispatch
from controller.core.vpn import QosSpec
from tests.unit.harness import MobileNode, Walk, topology

MN = "02:00:00:00:01:00"
OTHER = "02:00:00:00:01:01"
FA1_MAC, FA2_MAC, FA3_MAC = "02:00:00:00:21:01", "02:00:00:00:22:01", "02:00:00:00:23:01"
FA_PORT = 1
PORT = 2            # the MN's port after a move (any port: the flow does not care)


def prepared(walk: Walk) -> dict[str, set[int]]:
    """switch -> the prepared cookies it holds (any MN, any FA)."""
    out: dict[str, set[int]] = {}
    for name in walk.topo.switches:
        cookies = {c for c in walk.table(name).cookies()
                   if c >> 48 == flows.COOKIE_PREPARED_BASE >> 48}
        if cookies:
            out[name] = cookies
    return out


def seamless() -> tuple[Walk, MobileNode]:
    walk = Walk(topology(seamless_handover=True))
    return walk, MobileNode(walk)


def test_registration_prepares_the_neighbours_access_switches() -> None:
    walk, mn = seamless()
    before = walk.table("acc2").forward(PORT, MN, FA1_MAC, flows.ETH_IPV4)
    assert before == []                                    # nothing steers it there yet
    assert mn.register("fa1").accepted
    # fa1's neighbours are fa2 (same domain) and fa3: the MN's frames to fa1's MAC,
    # on whatever port it arrives, go to that FA with its MAC (its standing CHILD_SA
    # carries them at once; held at the controller only without one: test_uplink_hold.py)
    assert walk.table("acc2").forward(PORT, MN, FA1_MAC, flows.ETH_IPV4) \
        == [(FA_PORT, FA2_MAC)]
    assert walk.table("acc3").forward(7, MN, FA1_MAC, flows.ETH_IPV4) \
        == [(FA_PORT, FA3_MAC)]
    # ... and its frames to the neighbour FA itself (its ARP replies: the FA asks as
    # soon as redirected frames arrive, before its steering is there)
    assert walk.table("acc2").forward(PORT, MN, FA2_MAC, flows.ETH_ARP) == [(FA_PORT, FA2_MAC)]
    # harmless while the MN is elsewhere: nothing else of it, and nobody else's, passes
    assert walk.table("acc2").forward(PORT, MN, flows.BROADCAST_MAC, flows.ETH_ARP) == []
    assert walk.table("acc2").forward(PORT, MN, "02:00:00:00:30:10", flows.ETH_IPV4) == []
    assert walk.table("acc2").forward(PORT, OTHER, FA1_MAC, flows.ETH_IPV4) == []
    assert walk.table("acc2").forward(FA_PORT, FA2_MAC, MN, flows.ETH_IPV4) == []
    # the registration's own switch has no such flow (the MN is live there)
    assert walk.table("acc1").forward(3, MN, FA2_MAC, flows.ETH_IPV4) == []
    assert prepared(walk) == {"acc2": {flows.prepared_cookie(MN, "fa1")},
                              "acc3": {flows.prepared_cookie(MN, "fa1")}}


def test_prepared_after_the_reply_off_the_registrations_path() -> None:
    walk, mn = seamless()
    pos = walk.mark()
    assert mn.register("fa1").accepted
    trace = walk.trace(pos)
    assert trace.index("fa:fa1 SendFlows acc2") > trace.index("fa:fa1 -> mn RRP 0")
    assert trace.index("fa:fa1 SendFlows acc3") > trace.index("fa:fa1 -> mn RRP 0")


def test_the_move_keeps_the_redirect_and_prepares_the_next_one() -> None:
    walk, mn = seamless()
    assert mn.register("fa1").accepted
    walk.now += 2.0
    assert mn.register("fa2", "fa1", port=PORT).accepted
    acc2 = walk.table("acc2")
    # frames the MN still sends to fa1 (its route until the reply) reach fa2
    assert acc2.forward(PORT, MN, FA1_MAC, flows.ETH_IPV4) == [(FA_PORT, FA2_MAC)]
    # ... as part of the MN's steering (its cookie), not as fa1's preparation
    assert acc2.winner(in_port=PORT, eth_src=MN, eth_dst=FA1_MAC).cookie \
        == flows.mn_cookie(MN)
    assert acc2.forward(PORT, MN, FA2_MAC, flows.ETH_IPV4) == [(FA_PORT, FA2_MAC)]
    assert acc2.forward(FA_PORT, FA2_MAC, MN, flows.ETH_IPV4) == [(PORT, MN)]
    # fa2 prepared its neighbours (fa1, fa3); fa1's preparation is gone everywhere
    assert walk.table("acc1").forward(2, MN, FA2_MAC, flows.ETH_IPV4) \
        == [(FA_PORT, FA1_MAC)]
    assert walk.table("acc3").forward(2, MN, FA2_MAC, flows.ETH_IPV4) \
        == [(FA_PORT, FA3_MAC)]
    assert walk.table("acc3").forward(2, MN, FA1_MAC, flows.ETH_IPV4) == []
    assert prepared(walk) == {"acc1": {flows.prepared_cookie(MN, "fa2")},
                              "acc3": {flows.prepared_cookie(MN, "fa2")}}


def test_no_stale_flows_after_moves_and_expiry() -> None:
    walk, mn = seamless()
    assert mn.register("fa1").accepted
    for i, (new, old) in enumerate([("fa2", "fa1"), ("fa1", "fa2"), ("fa2", "fa1")]):
        walk.now += 2.0
        assert mn.register(new, old, port=PORT + i).accepted
    assert prepared(walk) == {"acc1": {flows.prepared_cookie(MN, "fa2")},
                              "acc3": {flows.prepared_cookie(MN, "fa2")}}
    # the MN's flows at acc1 (where it was) are gone, redirect included
    assert walk.table("acc1").forward(PORT + 1, MN, FA2_MAC, flows.ETH_IPV4) \
        == [(FA_PORT, FA1_MAC)]       # only fa2's preparation: any port
    assert walk.table("acc1").forward(FA_PORT, FA1_MAC, MN, flows.ETH_IPV4) == []
    walk.now += 10_000          # the registration expires
    walk.tick()
    assert prepared(walk) == {}
    mn_cookie = flows.mn_cookie(MN)
    assert not any(mn_cookie in walk.table(s).cookies() for s in walk.topo.switches)


def test_without_the_option_nothing_is_prepared() -> None:
    walk = Walk(topology())
    mn = MobileNode(walk)
    sizes = {s: len(walk.table(s)) for s in ("acc2", "acc3")}
    assert mn.register("fa1").accepted
    walk.now += 2.0
    assert mn.register("fa2", "fa1", port=PORT).accepted
    assert prepared(walk) == {}
    assert len(walk.table("acc3")) == sizes["acc3"]
    # today's behaviour: the MN's frames to fa1's MAC reach fa2 as they are (its
    # kernel drops them) until the MN has switched its route
    assert walk.table("acc2").forward(PORT, MN, FA1_MAC, flows.ETH_IPV4) \
        == [(FA_PORT, FA1_MAC)]
    assert not [a for _r, a in walk.of_type(SendFlows)
                if any(m.flow.priority == flows.PRIO_REDIRECT for m in a.mods
                       if isinstance(m, flows.FlowMod))]


def test_a_reconnected_switch_gets_the_prepared_flows_back() -> None:
    walk, mn = seamless()
    assert mn.register("fa1").accepted
    acc2 = walk.topo.switches["acc2"].dpid
    intended = Dispatch(walk.roles).intended_flows(acc2)
    assert intended == list(flows.prepare_mn(MN, "fa1", FA1_MAC, FA2_MAC, FA_PORT))


def test_qos_keeps_the_redirect() -> None:
    mods = flows.install_mn(MN, PORT, FA_PORT) + (flows.FlowMod("add", flows.redirect_flow(
        MN, FA1_MAC, FA2_MAC, FA_PORT, flows.mn_cookie(MN))),)
    out = flows.with_mn_qos(mods, {MN: QosSpec(rate_kbps=1000, dscp=10)})
    redirects = [m for m in out if isinstance(m, flows.FlowMod)
                 and m.flow.priority == flows.PRIO_REDIRECT]
    assert len(redirects) == 1
    metered = [m for m in out if isinstance(m, flows.FlowMod) and m.op == "add"
               and m.flow.meter]
    assert len(metered) == 3          # uplink, downlink, DSCP: the steering got its QoS


def test_cost_is_one_flow_per_neighbour() -> None:
    walk, mn = seamless()
    sizes = {s: len(walk.table(s)) for s in walk.topo.switches}
    assert mn.register("fa1").accepted
    grown = {s: len(walk.table(s)) - n for s, n in sizes.items()
             if len(walk.table(s)) != n}
    # acc1: the MN's live steering (2 flows); acc2, acc3: two prepared flows each
    assert grown == {"acc1": 2, "acc2": 2, "acc3": 2}


def test_the_redirect_as_an_openflow_message() -> None:
    """The adapter writes the redirect as set-field eth_dst + output, and a switch
    that reports it back holds exactly it (reconcile keeps it)."""
    from os_ken.ofproto import ofproto_v1_3 as ofp
    from os_ken.ofproto import ofproto_v1_3_parser as parser

    from controller.adapters import openflow
    from tests.unit.core.test_flow_reconcile import DP, as_stats

    mods = flows.prepare_mn(MN, "fa1", FA1_MAC, FA2_MAC, FA_PORT)
    msg, steer = openflow.flow_mod_msgs(DP, mods)
    assert steer.priority == flows.PRIO_PREPARED < flows.PRIO_MN
    assert msg.command == ofp.OFPFC_ADD and msg.priority == flows.PRIO_REDIRECT
    assert msg.cookie == flows.prepared_cookie(MN, "fa1")
    assert dict(msg.match.items()) == {"eth_src": MN, "eth_dst": FA1_MAC}
    acts = msg.instructions[0].actions
    assert isinstance(acts[0], parser.OFPActionSetField) and acts[0].value == FA2_MAC
    assert isinstance(acts[1], parser.OFPActionOutput) and acts[1].port == FA_PORT
    _msgs, counts = openflow.reconcile_msgs(DP, mods, as_stats(mods))
    assert counts == {"kept": 2, "added": 0, "removed": 0}
    # the cookie names the MN and the FA that prepared: another FA's delete misses it
    assert flows.prepared_cookie(MN, "fa1") != flows.prepared_cookie(MN, "fa2")
    assert flows.prepared_cookie(MN, "fa1") & 0xFFFFFFFF == flows.mn_cookie(MN) & 0xFFFFFFFF


def _steering(walk: Walk, pos: int, fa: str) -> SendFlows:
    dpid = walk.fa(fa).conf.access_dpid
    return [a for r, a in walk.of_type(SendFlows, pos) if r == f"fa:{fa}" and a.dpid == dpid][0]


def test_a_seamless_mns_steering_goes_alongside_its_tunnel() -> None:
    """The FA's steering of a seamless MN does not hold up its tunnel: sent, not
    awaited (its barrier comes before the reply); without the option it is awaited."""
    walk, mn = seamless()
    assert mn.register("fa1").accepted
    walk.now += 2.0
    pos = walk.mark()
    assert mn.register("fa2", "fa1", port=PORT).accepted
    steering = _steering(walk, pos, "fa2")
    assert not steering.wait
    trace = walk.trace(pos)
    assert trace.index("fa:fa2 SendFlows acc2") < trace.index(
        "fa:fa2 AddTunnel fa2 alice_home.example/ha-fa2 initiator")
    # every other flow change is awaited as before
    assert all(a.wait for _r, a in walk.of_type(SendFlows, pos) if a is not steering)
    plain = Walk(topology())
    other = MobileNode(plain)
    pos = plain.mark()
    assert other.register("fa1").accepted
    assert _steering(plain, pos, "fa1").wait


def test_deregistration_removes_what_was_prepared_at_once() -> None:
    """A registration with lifetime 0 (deregistration) prepares nothing and removes
    what the FA had prepared, without waiting for the expiry tick."""
    walk, mn = seamless()
    assert mn.register("fa1").accepted
    walk.now += 5.0
    reply = mn.register("fa1", lifetime=0)
    assert reply is not None and reply.accepted
    assert prepared(walk) == {}


def test_an_inter_domain_move_keeps_the_redirect_and_leaves_nothing_stale() -> None:
    """fa1 (domain-a) -> fa3 (domain-b): fa3 learns the previous FA from the VPN
    information (not its peer), keeps the redirect; fa1's preparation goes when it
    drops the MN."""
    walk, mn = seamless()
    assert mn.register("fa1").accepted
    walk.now += 5.0
    assert mn.register("fa3", "fa1", port=PORT).accepted
    acc3 = walk.table("acc3")
    assert acc3.forward(PORT, MN, FA1_MAC, flows.ETH_IPV4) == [(FA_PORT, FA3_MAC)]
    assert acc3.winner(in_port=PORT, eth_src=MN, eth_dst=FA1_MAC).cookie \
        == flows.mn_cookie(MN)
    assert flows.prepared_cookie(MN, "fa1") not in set().union(*prepared(walk).values())
    assert walk.table("acc1").forward(2, MN, FA3_MAC, flows.ETH_IPV4) \
        == [(FA_PORT, FA1_MAC)]
