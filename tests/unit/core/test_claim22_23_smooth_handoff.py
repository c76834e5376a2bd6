"""Claims 22 and 23: smooth handoff (profile option ``smooth_handoff: true``).

After the move, the new FA copies the cached VPN information with the origin rewritten
to the old FA and the destination to the new FA and sends it to the old FA in a Binding
Update; the old FA caches it, deletes its VPN path to the HA (and to the CN-GW), sets
old FA -> new FA and acknowledges; the new FA sets its end on the acknowledgement.
Claim 23 (inter-domain): only because the authentication answer includes the
information of the old FA (the Mipvpn-Handoff-Tunnel in the AMA)."""

from __future__ import annotations

import pytest

from controller.core import flows
from controller.core.actions import (AddTunnel, DeliverHeld, HoldTraffic, RelayToHomeAgent,
                                     ReleaseHold)
from controller.core.binding import check_binding_update, handoff_key
from controller.core.vpn import fa_ha_key, handoff_psk
from controller.proto import mip
from tests.unit.harness import MipSent, MobileNode, Walk, topology

NAI = "alice@home.example"
OWNER = "alice_home.example"
HA1, HA2, HA3 = (f"{OWNER}/ha-fa{i}" for i in (1, 2, 3))
RO1, RO2, RO3 = (f"{OWNER}/cngw2-fa{i}" for i in (1, 2, 3))
FWD12, FWD13 = f"{OWNER}/fa1-fa2", f"{OWNER}/fa1-fa3"
MIXED = {NAI: [("10.30.0.0/24", "cngw"), ("10.32.0.0/24", "cngw2")]}

# FA1 deletes its VPN path to the HA and the CN-GW RETIRE_AFTER later (make before
# break: the uplink the new FA's secondary tunnel sends it until the primaries' rekey
# goes on): ``retire``
SMOOTH_TAIL = [
    "fa:fa2 -> mn RRP 0",
    "fa:fa2 -> fa:fa1 BU",
    "fa:fa1 SendFlows acc1",
    f"fa:fa1 AddTunnel fa1 {FWD12}",
    "fa:fa1 -> fa:fa2 BAck 0",
    f"fa:fa2 AddTunnel fa2 {FWD12} initiator",
]


def retire(walk: Walk, fa: str = "fa1") -> list[str]:
    """Let the old FA's retired tunnels go (and the HA's): the trace of that tick."""
    from controller.core.foreign_agent import RETIRE_AFTER
    walk.now += RETIRE_AFTER + 0.1
    pos = walk.mark()
    walk.tick()
    return walk.trace(pos)


def make(smooth: bool = True) -> tuple[Walk, MobileNode]:
    walk = Walk(topology(destinations=MIXED, smooth_handoff=smooth))
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    walk.now += 2.0
    return walk, mn


@pytest.fixture
def walk_mn() -> tuple[Walk, MobileNode]:
    return make()


def bus(walk: Walk, pos: int = 0) -> list[MipSent]:
    return [i for _r, i in walk.log[pos:] if isinstance(i, MipSent) and i.name == "BU"
            and i.src.startswith("fa:")]


# ------------------------------------------------------------------ claim 22


def test_intra_domain_smooth_handoff_exact_walk(walk_mn: tuple[Walk, MobileNode]) -> None:
    walk, mn = walk_mn
    pos = walk.mark()
    rrp = mn.register("fa2", "fa1")
    assert rrp is not None and rrp.accepted
    trace = walk.trace(pos)
    assert trace[:3] == ["mn -> fa:fa2 RRQ", "fa:fa2 -> aaaf:domain-a AMR",
                         "aaaf:domain-a -> fa:fa2 AMA"]          # claim 17 / 20 walk
    assert trace[-len(SMOOTH_TAIL):] == SMOOTH_TAIL
    assert "fa:fa2 NotifyVisitorLeft fa1" not in trace           # the BU replaces it
    assert walk.gateways.ids("fa1") == {HA1, RO1, FWD12}         # the old path, retiring
    assert walk.gateways.ids("fa2") == {HA2, RO2, FWD12}
    assert sorted(retire(walk)) == sorted([f"fa:fa1 RemoveTunnel fa1 {HA1}",
                                           f"fa:fa1 RemoveTunnel fa1 {RO1}",
                                           f"ha RemoveTunnel ha {HA1}"])
    assert walk.gateways.ids("fa1") == {FWD12}
    assert walk.gateways.errors == []


def test_forwarding_tunnel_is_the_rewritten_copy(walk_mn: tuple[Walk, MobileNode]) -> None:
    walk, mn = walk_mn
    old_psk = walk.gateways.tunnels["fa1"][HA1].psk
    anchor = walk.fa("fa1").visitors[NAI].fa_key     # FA1's FA-HA key (issue 11)
    mn.register("fa2", "fa1")
    (ama,) = [d for d in walk.diameter() if d.name == "AMA" and d.dst == "fa:fa2"]
    spec = ama.msg.vpn_info.handoff
    assert spec is not None and spec.tunnel_id == FWD12
    # origin rewritten to the old FA, destination the new FA
    assert spec.a.gateway == "fa1" and spec.a.address == "10.0.0.11"
    assert spec.b.gateway == "fa2" and spec.b.address == "10.0.0.12"
    assert spec.a.selectors == ("10.30.0.0/24", "10.32.0.0/24")   # every CN prefix
    assert spec.b.selectors == (f"{mn.conf.home_address}/32",)
    assert spec.initiator == "fa2"
    assert spec.security.ike == "aes128-sha256-ecp256"
    # keyed from the old FA's FA-HA key, one way; distinct from every tunnel key
    assert spec.psk == handoff_psk(anchor, "fa1", "fa2") != old_psk
    assert spec.psk not in {t.psk for gw in walk.gateways.tunnels.values()
                            for t in gw.values() if t.tunnel_id != FWD12}
    assert anchor not in ama.wire and old_psk not in ama.wire
    old_side = walk.gateways.tunnels["fa1"][FWD12]
    new_side = walk.gateways.tunnels["fa2"][FWD12]
    assert old_side.psk == new_side.psk == spec.psk
    assert not old_side.initiator and new_side.initiator
    # what still reaches the old FA for the MN goes into the tunnel: remote selector
    assert old_side.remote.selectors == (f"{mn.conf.home_address}/32",)
    assert old_side.remote.address == "10.0.0.12"


def test_only_the_new_fas_end_is_secondary(walk_mn: tuple[Walk, MobileNode]) -> None:
    """At the new FA the forwarding tunnel's selectors are those of the FA's own tunnels
    (home address/32 <-> the correspondent prefixes): its end is marked secondary, so
    the gateway never sends the MN's uplink into it.  The old FA's end carries the
    forwarded traffic out: an ordinary tunnel."""
    walk, mn = walk_mn
    pos = walk.mark()
    mn.register("fa2", "fa1")
    adds = {(a.gateway, a.side.tunnel_id): a.side for _r, a in walk.of_type(AddTunnel, pos)}
    assert adds[("fa2", FWD12)].secondary and adds[("fa2", FWD12)].initiator
    assert not adds[("fa1", FWD12)].secondary
    assert [k for k, side in adds.items() if side.secondary] == [("fa2", FWD12)]
    # a reconcile (restart, charon back) sets it the same way: the FA names it
    assert walk.fa("fa2").secondary_tunnels() == {FWD12}
    assert walk.fa("fa1").secondary_tunnels() == set()
    new_end = adds[("fa2", FWD12)]
    own = [adds[("fa2", t)] for t in (HA2, RO2)]
    assert all(o.local.selectors == new_end.local.selectors for o in own)
    assert {s for o in own for s in o.remote.selectors} == set(new_end.remote.selectors)
    # moving back: FA1 is the new FA now, FA2 the old one
    walk.now += 2
    pos = walk.mark()
    assert mn.register("fa1", "fa2").accepted
    adds = {(a.gateway, a.side.tunnel_id): a.side for _r, a in walk.of_type(AddTunnel, pos)}
    fwd21 = f"{OWNER}/fa2-fa1"
    assert [k for k, side in adds.items() if side.secondary] == [("fa1", fwd21)]
    assert not adds[("fa2", fwd21)].secondary


def test_handoff_bu_authenticated_with_derived_key(walk_mn: tuple[Walk, MobileNode]) -> None:
    walk, mn = walk_mn
    anchor = walk.fa("fa1").visitors[NAI].fa_key
    mn.register("fa2", "fa1")
    (bu,) = bus(walk)
    assert (bu.src, bu.dst) == ("fa:fa2", "fa:fa1")
    key = handoff_key(handoff_psk(anchor, "fa1", "fa2"))
    checked = check_binding_update(bu.raw, key, walk.now)
    assert not isinstance(checked, int)
    assert checked.tunnels[0].tunnel_id == FWD12 and checked.nai == NAI
    assert bu.msg.care_of_address == "10.0.0.12"
    assert bu.msg.lifetime == walk.fa("fa2").conf.handoff_lifetime == 10
    assert checked.tunnels[0].psk not in bu.raw


def test_old_fa_refuses_forged_handoff_bu(walk_mn: tuple[Walk, MobileNode]) -> None:
    walk, mn = walk_mn
    from controller.core.binding import BindingKey, build_binding_update
    spec = walk.gateways.tunnels["fa1"][HA1]
    raw = build_binding_update(BindingKey(0x100, bytes(16)), mip.ntp_identification(walk.now),
                               10, mn.conf.home_address, "10.0.0.12", NAI, ())
    pos = walk.mark()
    reply = walk.execute("fa:fa1", walk.fa("fa1").on_mip(walk.now, raw, "fa:fa2"))
    assert mip.decode(reply).status == mip.BACK_AUTH_FAILED
    assert walk.since(pos) == [] and NAI in walk.fa("fa1").visitors
    assert spec.tunnel_id in walk.gateways.ids("fa1")
    # and for an MN it does not serve
    reply = walk.execute("fa:fa2", walk.fa("fa2").on_mip(walk.now, raw, "fa:fa1"))
    assert mip.decode(reply).status == mip.BACK_ADMIN_PROHIBITED


def test_forwarding_tunnel_expires_at_both_ends(walk_mn: tuple[Walk, MobileNode]) -> None:
    walk, mn = walk_mn
    mn.register("fa2", "fa1")
    walk.now += 9
    walk.tick()
    assert FWD12 in walk.gateways.ids("fa1") and FWD12 in walk.gateways.ids("fa2")
    walk.now += 1.5
    pos = walk.mark()
    walk.tick()
    assert walk.trace(pos) == [f"fa:fa1 RemoveTunnel fa1 {FWD12}",
                               f"fa:fa2 RemoveTunnel fa2 {FWD12}"]
    assert walk.gateways.ids("fa1") == set() and walk.gateways.ids("fa2") == {HA2, RO2}
    assert walk.gateways.errors == []


def test_moving_back_to_the_old_fa_stops_forwarding(walk_mn: tuple[Walk, MobileNode]) -> None:
    walk, mn = walk_mn
    mn.register("fa2", "fa1")
    retire(walk)
    pos = walk.mark()
    assert mn.register("fa1", "fa2").accepted
    trace = walk.trace(pos)
    # issue 14: as soon as the local AAA accepted it, beside the relay to the HA: not
    # in line between the HA's reply and the FA's steering and tunnel
    stop = f"fa:fa1 RemoveTunnel fa1 {FWD12} off-path"
    assert trace.index("fa:fa1 -> aaaf:domain-a AMR") < trace.index(stop)
    assert trace.index(stop) < trace.index("fa:fa1 RelayToHomeAgent")
    assert trace.count(stop) == 1 and f"fa:fa1 RemoveTunnel fa1 {FWD12}" not in trace
    # not a renewal for all that: the FA sets its tunnels anew (its prepared ones)
    assert trace.index("ha -> fa:fa1 RRP 0") < trace.index(
        f"fa:fa1 AddTunnel fa1 {HA1} initiator")
    # FA2 forwards to FA1 now; its old forwarding end went with its visitor
    assert walk.gateways.ids("fa2") == {HA2, RO2, f"{OWNER}/fa2-fa1"}
    retire(walk)
    assert walk.gateways.ids("fa2") == {f"{OWNER}/fa2-fa1"}
    assert walk.gateways.ids("fa1") == {HA1, RO1, f"{OWNER}/fa2-fa1"}
    assert walk.gateways.errors == []


def test_late_bu_after_visitor_left_still_forwards(walk_mn: tuple[Walk, MobileNode]) -> None:
    """The runtime may tear the old FA down ("visitor left") before the BU arrives:
    the old FA remembers the departed visitor long enough to accept it."""
    walk, mn = walk_mn
    walk.execute("fa:fa1", walk.fa("fa1").on_visitor_left(walk.now, NAI))
    assert walk.gateways.ids("fa1") == {HA1, RO1}          # retiring (smooth handoff)
    pos = walk.mark()
    assert mn.register("fa2", "fa1").accepted
    assert "fa:fa1 -> fa:fa2 BAck 0" in walk.trace(pos)
    retire(walk)
    assert walk.gateways.ids("fa1") == {FWD12} and walk.gateways.errors == []


def test_without_the_option_no_handoff() -> None:
    walk, mn = make(smooth=False)
    pos = walk.mark()
    assert mn.register("fa2", "fa1").accepted
    trace = walk.trace(pos)
    assert "fa:fa2 -> fa:fa1 BU" not in trace and "fa:fa2 NotifyVisitorLeft fa1" in trace
    assert all(d.msg.vpn_info is None or d.msg.vpn_info.handoff is None
               for d in walk.diameter(pos) if d.name == "AMA")
    assert walk.gateways.ids("fa1") == set()


def test_lost_handoff_bu_leaves_the_move_intact(walk_mn: tuple[Walk, MobileNode]) -> None:
    walk, mn = walk_mn
    walk.lost.add("fa:fa1")
    assert mn.register("fa2", "fa1").accepted
    assert walk.gateways.ids("fa2") == {HA2, RO2}
    assert any(" Mark handoff_failed" in p for p in walk.trace(marks=True))


# ------------------------------------------------------------------ claim 23


def test_inter_domain_smooth_handoff(walk_mn: tuple[Walk, MobileNode]) -> None:
    walk, mn = walk_mn
    old_psk = walk.gateways.tunnels["fa1"][HA1].psk
    anchor = walk.fa("fa1").visitors[NAI].fa_key
    assert anchor == fa_ha_key(walk.aaah.secrets[NAI], "fa1")
    pos = walk.mark()
    assert mn.register("fa3", "fa1").accepted
    trace = walk.trace(pos)
    assert "aaah -> ha HAR" in trace
    assert trace[-6:] == [
        "fa:fa3 -> mn RRP 0",
        "fa:fa3 -> fa:fa1 BU",
        "fa:fa1 SendFlows acc1",
        f"fa:fa1 AddTunnel fa1 {FWD13}",
        "fa:fa1 -> fa:fa3 BAck 0",
        f"fa:fa3 AddTunnel fa3 {FWD13} initiator",
    ]
    # the authentication answer included the information of the old FA
    for ama in [d for d in walk.diameter(pos) if d.name == "AMA"]:
        spec = ama.msg.vpn_info.handoff
        assert spec is not None and spec.ends() == ("fa1", "fa3")
        assert spec.psk == handoff_psk(anchor, "fa1", "fa3")
        assert old_psk not in ama.wire                     # the old keys never leave
        assert anchor not in ama.wire
    # the home AAA's cache and the AAAF-B's cache do not keep it
    assert walk.aaah.sessions[NAI].handoff is None
    assert walk.aaaf("domain-b").sessions[NAI].vpn_info.handoff is None
    assert walk.gateways.ids("fa3") == {HA3, RO3, FWD13} and walk.gateways.errors == []
    assert walk.gateways.tunnels["fa3"][FWD13].secondary          # the new FA's end only
    assert not walk.gateways.tunnels["fa1"][FWD13].secondary


def test_inter_domain_after_local_move(walk_mn: tuple[Walk, MobileNode]) -> None:
    """FA1 -> FA2 (answered locally: the home AAA still caches FA1, and FA2's tunnels
    have keys the home AAA never saw) -> FA3: the home AAA keys the handoff from FA2's
    FA-HA key of the session, which it derives from the session secret (issue 11)."""
    walk, mn = walk_mn
    p1 = walk.gateways.tunnels["fa1"][HA1].psk
    assert mn.register("fa2", "fa1").accepted
    assert walk.gateways.tunnels["fa2"][HA2].psk != p1        # a fresh key per tunnel
    anchor = walk.fa("fa2").visitors[NAI].fa_key
    assert anchor == fa_ha_key(walk.aaah.secrets[NAI], "fa2")
    assert walk.aaah.sessions[NAI].foreign_agent == "fa1"      # not told of the move
    walk.now += 2
    pos = walk.mark()
    assert mn.register("fa3", "fa2").accepted
    assert "fa:fa2 -> fa:fa3 BAck 0" in walk.trace(pos)
    (ama,) = [d for d in walk.diameter(pos) if d.name == "AMA" and d.dst == "fa:fa3"]
    assert ama.msg.vpn_info.handoff.psk == handoff_psk(anchor, "fa2", "fa3")
    retire(walk)
    assert walk.gateways.ids("fa2") == {f"{OWNER}/fa2-fa3"}
    assert walk.gateways.errors == []


def test_inter_domain_without_cached_old_info_no_handoff() -> None:
    """The home AAA cannot key a handoff for an old FA it knows nothing of (here: the
    MN names an address that is no FA): plain move, no BU."""
    walk, mn = make()
    pos = walk.mark()
    assert mn.register("fa3", None, previous_coa="10.0.0.99").accepted
    assert not bus(walk, pos)
    assert all(d.msg.vpn_info.handoff is None for d in walk.diameter(pos) if d.name == "AMA")


# ------------------------------------------------------------------ holding the downlink
# The old FA holds a departed MN's downlink from the moment its link leaves the old
# access switch (port-status delete / link down) until the new FA's Binding Update: the
# held frames then go into the forwarding tunnel instead of being dropped at the switch.


def downlink(walk: Walk, mn: MobileNode, switch: str = "acc1") -> list[int]:
    fa = walk.fa("fa1" if switch == "acc1" else "fa2")
    return walk.table(switch).lookup(fa.conf.fa_port, fa.conf.inside_mac, mn.mac, 0x0800,
                                     17, 5001)


def port_down(walk: Walk, mn: MobileNode, fa: str = "fa1") -> list[str]:
    pos = walk.mark()
    walk.execute(f"fa:{fa}", walk.fa(fa).on_port_down(walk.now, mn.port))
    return walk.trace(pos)


def test_port_down_holds_the_downlink_until_the_bu(walk_mn: tuple[Walk, MobileNode]) -> None:
    walk, mn = walk_mn
    assert downlink(walk, mn) == [mn.port]
    assert port_down(walk, mn) == ["fa:fa1 HoldTraffic acc1", "fa:fa1 SendFlows acc1"]
    (hold,) = [a for _r, a in walk.of_type(HoldTraffic)]
    assert (hold.dpid, hold.mn_mac, hold.nai) == (walk.fa("fa1").conf.access_dpid,
                                                  mn.mac, NAI)
    # the FA's IPv4 towards the MN goes to the controller; the MN's uplink is gone
    assert downlink(walk, mn) == [flows.OFPP_CONTROLLER]
    fa_port = walk.fa("fa1").conf.fa_port
    assert walk.table("acc1").lookup(mn.port, mn.mac, "00:00:00:00:00:01") == []
    # ARP for the MN is not held (only IPv4 is routed on)
    assert walk.table("acc1").lookup(fa_port, "02:00:00:00:00:11", mn.mac, 0x0806) == []
    # the visitor stays (its registration still counts until the move tells)
    assert NAI in walk.fa("fa1").visitors and HA1 in walk.gateways.ids("fa1")
    assert port_down(walk, mn) == []          # a second event holds nothing new
    walk.now += 0.3
    pos = walk.mark()
    assert mn.register("fa2", "fa1").accepted
    trace = walk.trace(pos)
    tail = trace[trace.index("fa:fa2 -> fa:fa1 BU"):]
    assert tail == ["fa:fa2 -> fa:fa1 BU", "fa:fa1 SendFlows acc1",
                    f"fa:fa1 AddTunnel fa1 {FWD12}", f"fa:fa1 ReleaseHold forward {FWD12}",
                    "fa:fa1 -> fa:fa2 BAck 0", f"fa:fa2 AddTunnel fa2 {FWD12} initiator"]
    (release,) = [a for _r, a in walk.of_type(ReleaseHold)]
    assert release.forward and release.mn_mac == mn.mac and release.peer == "fa2"
    assert release.mods == flows.release_hold(mn.mac)      # the punt goes after the flush
    assert downlink(walk, mn) == [] and walk.fa("fa1").holds == {}
    assert walk.fa("fa1").counters["holds_forwarded"] == 1
    walk.now += 5
    walk.tick()                                            # nothing left to expire
    assert walk.of_type(ReleaseHold, pos)[1:] == []


def held_move(to: str, seamless: bool = True) -> tuple[Walk, MobileNode, int]:
    """A smooth-handoff MN (``seamless``: with seamless handover) registered at FA1,
    its port gone there (its downlink held), then accepted at ``to``: the walk, the MN
    and the log position before that move."""
    walk = Walk(topology(destinations=MIXED, smooth_handoff=True,
                         seamless_handover=seamless))
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    walk.now += 2.0
    assert port_down(walk, mn)
    walk.now += 0.3
    pos = walk.mark()
    assert mn.register(to, "fa1").accepted
    return walk, mn, pos


def test_with_seamless_handover_the_held_downlink_goes_to_the_mn_once_authenticated(
) -> None:
    """Issue 14: with seamless handover and smooth handoff, the new FA's AAA accepting
    the move (the local AAA checked the MN-FA authenticator over this very RRQ, newer
    than the last) is the moment the MN is known to be at that port: the new FA asks
    for what the old FA holds for it there at once (``DeliverHeld``: its port, its
    MAC), beside the relay to the HA, not after the HA's reply and the Binding Update.
    Without seamless handover (smooth handoff alone) nothing changes."""
    for seamless in (True, False):
        walk, mn, pos = held_move("fa2", seamless=seamless)
        delivered = walk.of_type(DeliverHeld, pos)
        if not seamless:
            assert delivered == []
            continue
        ((role, action),) = delivered
        fa2 = walk.fa("fa2")
        assert role == "fa:fa2"
        assert (action.foreign_agent, action.dpid, action.port, action.mn_mac,
                action.nai) == ("fa2", fa2.conf.access_dpid, mn.port, mn.mac, NAI)
        # before the relay (the runtime runs the relay in line: its reply, this FA's
        # reply and the Binding Update that releases the hold come back within it)
        order = [type(a) for _r, a in walk.since(pos)]
        assert order.index(DeliverHeld) < order.index(RelayToHomeAgent)
        assert order.index(DeliverHeld) < order.index(ReleaseHold)


def test_seamless_handover_alone_holds_the_downlink_and_delivers_it() -> None:
    """Issue 14: a seamless MN without smooth handoff: its old FA holds its downlink
    from the moment its port goes too (nothing forwards it there: without this it was
    lost until the HA switched), the new FA asks for it when its AAA accepted the move,
    and no Binding Update follows; the hold ends at ``hold_time`` (dropping what was
    not delivered).  Neither option: nothing held (today's behaviour)."""
    walk = Walk(topology(destinations=MIXED, smooth_handoff=False, seamless_handover=True))
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    walk.now += 2.0
    assert port_down(walk, mn) == ["fa:fa1 HoldTraffic acc1", "fa:fa1 SendFlows acc1"]
    assert downlink(walk, mn) == [flows.OFPP_CONTROLLER]
    walk.now += 0.3
    pos = walk.mark()
    assert mn.register("fa2", "fa1").accepted
    ((role, action),) = walk.of_type(DeliverHeld, pos)
    assert (role, action.port, action.mn_mac) == ("fa:fa2", mn.port, mn.mac)
    assert "fa:fa2 -> fa:fa1 BU" not in walk.trace(pos)
    # the old FA's end of its tunnel to the HA goes at once, as before (kept, it held
    # up the preparation of the same tunnel id for the move back: docs/decisions.md)
    assert f"fa:fa1 RemoveTunnel fa1 {HA1}" in walk.trace(pos)
    walk.now += walk.fa("fa1").conf.hold_time
    pos = walk.mark()
    walk.tick()
    assert "fa:fa1 ReleaseHold drop" in walk.trace(pos)
    assert downlink(walk, mn) == [] and walk.fa("fa1").holds == {}


def test_an_inter_domain_seamless_move_asks_for_the_held_downlink_on_the_full_path(
) -> None:
    """Issue 14: a move to another domain's FA goes home (AAAH, HA); the AMA that
    carries the HA's reply is the new FA's proof: ``DeliverHeld`` then, before its
    steering and reply."""
    walk, _mn, pos = held_move("fa3")
    assert "aaah -> ha HAR" in walk.trace(pos)
    ((role, action),) = walk.of_type(DeliverHeld, pos)
    assert (role, action.foreign_agent, action.nai) == ("fa:fa3", "fa3", NAI)
    order = [type(a) for _r, a in walk.since(pos)]
    assert order.index(DeliverHeld) < order.index(ReleaseHold)


def test_no_early_delivery_for_a_first_registration_or_a_renewal() -> None:
    """Nothing is held for an MN that did not move: no ``DeliverHeld``."""
    walk = Walk(topology(destinations=MIXED, smooth_handoff=True, seamless_handover=True))
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    walk.now += 4.0     # past the FA's in-progress hold
    assert mn.register("fa1").accepted
    assert walk.of_type(DeliverHeld) == []


def test_hold_survives_visitor_left_before_the_bu(walk_mn: tuple[Walk, MobileNode]) -> None:
    """The runtime's "visitor left" clean-up may reach the old FA before the BU: the
    steering goes, the hold stays for the BU."""
    walk, mn = walk_mn
    port_down(walk, mn)
    walk.execute("fa:fa1", walk.fa("fa1").on_visitor_left(walk.now, NAI))
    assert downlink(walk, mn) == [flows.OFPP_CONTROLLER]
    pos = walk.mark()
    assert mn.register("fa2", "fa1").accepted
    assert f"fa:fa1 ReleaseHold forward {FWD12}" in walk.trace(pos)
    assert downlink(walk, mn) == []


def test_without_a_bu_the_held_downlink_is_dropped(walk_mn: tuple[Walk, MobileNode]) -> None:
    walk, mn = walk_mn
    port_down(walk, mn)
    hold_time = walk.fa("fa1").conf.hold_time
    walk.now += hold_time - 0.5
    walk.tick()
    assert downlink(walk, mn) == [flows.OFPP_CONTROLLER]
    walk.now += 1.0
    pos = walk.mark()
    walk.tick()
    assert walk.trace(pos) == ["fa:fa1 ReleaseHold drop"]
    (release,) = [a for _r, a in walk.of_type(ReleaseHold, pos)]
    assert not release.forward and release.tunnel_id == ""
    assert downlink(walk, mn) == [] and walk.fa("fa1").counters["holds_expired"] == 1
    # a BU after that still sets the forwarding tunnel; nothing is held any more
    pos = walk.mark()
    assert mn.register("fa2", "fa1").accepted
    trace = walk.trace(pos)
    assert f"fa:fa1 AddTunnel fa1 {FWD12}" in trace
    assert not any("ReleaseHold" in line for line in trace)


def test_back_at_the_old_fa_before_the_bu(walk_mn: tuple[Walk, MobileNode]) -> None:
    """The link comes back (another port of the same switch) before any BU: the new
    steering replaces the punt in one batch and the held frames go to the FA, which
    delivers them."""
    walk, mn = walk_mn
    port_down(walk, mn)
    walk.now += 1.5        # past the FA's retransmission hold of the first registration
    pos = walk.mark()
    assert mn.register("fa1", port=7).accepted
    trace = walk.trace(pos)
    assert trace.index("fa:fa1 SendFlows acc1") < trace.index("fa:fa1 ReleaseHold forward")
    (release,) = [a for _r, a in walk.of_type(ReleaseHold, pos)]
    assert release.forward and release.tunnel_id == "" and release.mods == ()
    assert downlink(walk, mn) == [7]


def test_port_down_without_smooth_handoff_changes_nothing() -> None:
    walk, mn = make(smooth=False)
    before = list(walk.table("acc1").flows)
    assert port_down(walk, mn) == []
    assert walk.table("acc1").flows == before and walk.fa("fa1").holds == {}


def test_port_down_elsewhere_changes_nothing(walk_mn: tuple[Walk, MobileNode]) -> None:
    walk, mn = walk_mn
    fa = walk.fa("fa1")
    assert fa.on_port_down(walk.now, mn.port + 5) == []
    assert fa.on_port_down(walk.now, fa.conf.fa_port) == []
    assert walk.fa("fa2").on_port_down(walk.now, mn.port) == []   # not its visitor


def test_ha_keeps_the_old_fas_tunnel_until_the_new_one_took_over(
        walk_mn: tuple[Walk, MobileNode]) -> None:
    """Make before break: the HA does not delete its tunnel to the old FA at the move
    (what it sends meanwhile reaches the old FA, which holds it for the forwarding
    tunnel); the new FA's SA, the newest, takes the downlink once it is up.  The old
    end goes RETIRE_AFTER later (or with the old FA's delete at the BU)."""
    from controller.core.home_agent import RETIRE_AFTER
    walk, mn = walk_mn
    pos = walk.mark()
    assert mn.register("fa2", "fa1").accepted
    trace = walk.trace(pos)
    assert f"ha RemoveTunnel ha {HA1}" not in trace and f"ha AddTunnel ha {HA2}" in trace
    assert {HA1, HA2} <= walk.gateways.ids("ha")
    walk.now += RETIRE_AFTER - 0.5
    walk.tick()
    assert HA1 in walk.gateways.ids("ha")
    walk.now += 1.0
    pos = walk.mark()
    walk.tick()
    assert f"ha RemoveTunnel ha {HA1}" in walk.trace(pos)
    assert HA1 not in walk.gateways.ids("ha") and HA2 in walk.gateways.ids("ha")


def test_ha_moving_back_within_the_retirement(walk_mn: tuple[Walk, MobileNode]) -> None:
    walk, mn = walk_mn
    assert mn.register("fa2", "fa1").accepted
    walk.now += 1.0
    walk.fa("fa1").in_progress.clear()      # (the FA's own retransmission hold)
    pos = walk.mark()
    assert mn.register("fa1", "fa2").accepted
    assert f"ha AddTunnel ha {HA1}" in walk.trace(pos)
    walk.now += 5
    walk.tick()
    # HA1 serves the MN again: its retirement was cancelled; HA2 retired in turn
    assert HA1 in walk.gateways.ids("ha") and HA2 not in walk.gateways.ids("ha")


def test_ha_without_smooth_handoff_breaks_first() -> None:
    walk, mn = make(smooth=False)
    pos = walk.mark()
    assert mn.register("fa2", "fa1").accepted
    trace = walk.trace(pos)
    assert trace.index(f"ha RemoveTunnel ha {HA1}") < trace.index(f"ha AddTunnel ha {HA2}")
    assert walk.ha.retiring == {}


def test_the_downlink_fails_over_to_the_controller_at_once(
        walk_mn: tuple[Walk, MobileNode]) -> None:
    """A smooth-handoff MN's downlink at its access switch goes through a fast-failover
    group: the moment its port is gone the switch punts it, before the controller has
    heard of the port (the hold flow follows)."""
    walk, mn = walk_mn
    table = walk.table("acc1")
    assert downlink(walk, mn) == [mn.port]
    table.dead_ports.add(mn.port)
    assert downlink(walk, mn) == [flows.OFPP_CONTROLLER]
    assert port_down(walk, mn)[0] == "fa:fa1 HoldTraffic acc1"
    assert downlink(walk, mn) == [flows.OFPP_CONTROLLER]     # now by the hold flow
    # an MN without smooth handoff: plain output, dropped with its port as before
    walk2, mn2 = make(smooth=False)
    walk2.table("acc1").dead_ports.add(mn2.port)
    assert downlink(walk2, mn2) == [mn2.port]
    assert walk2.table("acc1").groups == {}


def test_a_seamless_mns_downlink_fails_over_to_the_controller_at_once() -> None:
    """Issue 14: a seamless MN without smooth handoff gets the same fast-failover group
    (its old FA now holds its downlink too): the frames between the port's loss and
    the hold flow are punted, not dropped."""
    walk = Walk(topology(destinations=MIXED, smooth_handoff=False, seamless_handover=True))
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    walk.table("acc1").dead_ports.add(mn.port)
    assert downlink(walk, mn) == [flows.OFPP_CONTROLLER]


def test_old_fa_keeps_its_path_until_retired_and_cancels_when_back(
        walk_mn: tuple[Walk, MobileNode]) -> None:
    """Make before break at the old FA: its tunnels to the HA and the CN-GW outlive the
    move by RETIRE_AFTER (the uplink the new FA's secondary tunnel sends it until the
    primaries' rekey goes on); coming back cancels the retirement."""
    walk, mn = walk_mn
    assert mn.register("fa2", "fa1").accepted
    fa1 = walk.fa("fa1")
    assert set(fa1.retiring) == {HA1, RO1}
    assert {t.tunnel_id for t in fa1.tunnels_wanted()} == {HA1, RO1, FWD12}
    walk.now += 1.0
    fa1.in_progress.clear()
    walk.fa("fa2").in_progress.clear()
    assert mn.register("fa1", "fa2").accepted
    assert fa1.retiring == {}                               # set anew, not retired
    retire(walk)
    assert {HA1, RO1} <= walk.gateways.ids("fa1")
    # without smooth handoff the old FA deletes at once (claim 17)
    walk2, mn2 = make(smooth=False)
    assert mn2.register("fa2", "fa1").accepted
    assert walk2.fa("fa1").retiring == {} and walk2.gateways.ids("fa1") == set()
