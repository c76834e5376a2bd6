"""Claims 10-15 and 19 (with 2): registration with route optimisation.  Alice's
destination sits behind CN-GW2, a gateway of the dynamic type: the AAAH sets the VPN
set path FA<->CN-GW2 (no HA leg for it), the HAR carries it to the HA, the HA posts it
to CN-GW2 in a Binding Update and answers only after the Binding Acknowledge; the AAAF
caches the FA<->CN-GW2 information from the AMA (its instruction to the FA, claims
10-12) and the FA sets its end as initiator (claims 13-15)."""

from __future__ import annotations

import pytest

from controller.core.actions import AddTunnel
from controller.core.binding import check_binding_update
from controller.proto import diameter as dia
from controller.proto import mip
from tests.unit.harness import MipSent, MobileNode, Walk, topology

NAI = "alice@home.example"
RO = "alice_home.example/cngw2-fa1"
HA_FA = "alice_home.example/ha-fa1"
STATIC = "static/ha-cngw"
DYNAMIC_ONLY = {NAI: [("10.32.0.0/24", "cngw2")]}
MIXED = {NAI: [("10.30.0.0/24", "cngw"), ("10.32.0.0/24", "cngw2")]}

RO_REGISTRATION = [
    "mn -> fa:fa1 RRQ",
    "fa:fa1 -> aaaf:domain-a AMR",
    "aaaf:domain-a -> aaah AMR",
    "aaah -> ha HAR",
    "ha -> cngw:cngw2 BU",
    f"cngw:cngw2 AddTunnel cngw2 {RO}",
    "cngw:cngw2 -> ha BAck 0",
    "ha -> aaah HAA",
    "aaah -> aaaf:domain-a AMA",
    "aaaf:domain-a -> fa:fa1 AMA",
    "fa:fa1 SendFlows acc1",
    f"fa:fa1 AddTunnel fa1 {RO} initiator",
    "fa:fa1 -> mn RRP 0",
]


@pytest.fixture
def walk() -> Walk:
    return Walk(topology(destinations=DYNAMIC_ONLY))


@pytest.fixture
def mn(walk: Walk) -> MobileNode:
    return MobileNode(walk)


def sent(walk: Walk, name: str, pos: int = 0) -> list[MipSent]:
    return [i for _r, i in walk.log[pos:] if isinstance(i, MipSent) and i.name == name]


def test_route_optimised_registration_exact_walk(walk: Walk, mn: MobileNode) -> None:
    rrp = mn.register("fa1")
    assert walk.trace() == RO_REGISTRATION
    assert rrp is not None and rrp.accepted
    marks = [p.split(" Mark ")[1] for p in walk.trace(marks=True) if " Mark " in p]
    assert marks.index("bu_sent") < marks.index("bu_at_cngw") < marks.index(
        "back_at_ha") < marks.index("haa_sent")
    assert walk.gateways.ids("ha") == {STATIC}            # no HA leg for cngw2's prefix
    assert walk.gateways.ids("cngw2") == {RO} and walk.gateways.ids("fa1") == {RO}
    assert walk.gateways.errors == []


def test_vpn_set_path_fa_to_dynamic_gateway(walk: Walk, mn: MobileNode) -> None:
    mn.register("fa1")
    full = walk.aaah.sessions[NAI]
    assert [t.tunnel_id for t in full.tunnels] == [RO]
    (spec,) = full.tunnels
    assert spec.ends() == ("cngw2", "fa1") and spec.initiator == "fa1"
    assert spec.a.selectors == ("10.32.0.0/24",)
    assert spec.b.selectors == (f"{mn.conf.home_address}/32",)
    assert (spec.a.address, spec.b.address) == ("10.0.0.32", "10.0.0.11")
    assert len(spec.psk) == 32
    assert spec.security.ike == "aes128-sha256-ecp256"     # from the profile
    # HAR: the HA gets the FA<->CN-GW information to post it; AMA: the FA's own view
    (har,) = [d for d in walk.diameter() if d.name == "HAR"]
    assert [t.tunnel_id for t in har.msg.vpn_info.tunnels] == [RO]
    for ama in [d for d in walk.diameter() if d.name == "AMA"]:
        assert ama.msg.vpn_info.tunnels == (spec,)
        assert ama.msg.vpn_info.handoff is None


def test_binding_update_carries_the_tunnel(walk: Walk, mn: MobileNode) -> None:
    mn.register("fa1")
    (bu,) = sent(walk, "BU")
    key = walk.aaah.binding_keys["cngw2"]
    assert walk.ha.binding_keys["cngw2"] == key == walk.cngw().keys["ha"]
    checked = check_binding_update(bu.raw, key, walk.now)
    assert not isinstance(checked, int)
    assert checked.tunnels == walk.aaah.sessions[NAI].tunnels
    assert checked.nai == NAI and bu.msg.flags & mip.BU_FLAG_A
    assert (bu.msg.home_address, bu.msg.care_of_address) == (mn.conf.home_address,
                                                            "10.0.0.11")
    assert bu.msg.lifetime == mn.conf.lifetime
    assert walk.aaah.sessions[NAI].tunnels[0].psk not in bu.raw        # hidden
    (back,) = sent(walk, "BAck 0")
    assert back.msg.identification == bu.msg.identification
    # the CN-GW cached the VPN information; its end is the responder
    b = walk.cngw().bindings[mn.conf.home_address]
    assert b.tunnels == checked.tunnels and b.home_agent == "ha"
    assert b.expires == walk.now + mn.conf.lifetime
    side = walk.gateways.tunnels["cngw2"][RO]
    assert not side.initiator and side.psk == walk.gateways.tunnels["fa1"][RO].psk
    assert side.remote.address == "10.0.0.11"


def test_aaaf_caches_and_instructs_the_fa(walk: Walk, mn: MobileNode) -> None:
    """Claims 10-15: the AAAF extracts the safe-path information from the AMA, caches
    it and passes it (its instruction) to the FA, which builds FA<->CN-GW2."""
    mn.register("fa1")
    cached = walk.aaaf().sessions[NAI].vpn_info
    assert [t.tunnel_id for t in cached.tunnels] == [RO]
    assert cached.tunnels[0].psk == walk.gateways.tunnels["fa1"][RO].psk
    side = walk.gateways.tunnels["fa1"][RO]
    assert side.initiator and side.remote.gateway == "cngw2"
    assert side.remote.selectors == ("10.32.0.0/24",)
    assert walk.fa("fa1").visitors[NAI].vpn_info.tunnels == cached.tunnels


def test_mixed_profile_static_and_dynamic() -> None:
    walk = Walk(topology(destinations=MIXED))
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    assert walk.trace()[4:8] == [
        f"ha AddTunnel ha {HA_FA}",
        "ha -> cngw:cngw2 BU",
        f"cngw:cngw2 AddTunnel cngw2 {RO}",
        "cngw:cngw2 -> ha BAck 0",
    ]
    assert walk.gateways.ids("fa1") == {HA_FA, RO}
    assert walk.gateways.tunnels["ha"][HA_FA].local.selectors == ("10.30.0.0/24",)
    assert walk.gateways.ids("cngw") == {STATIC}          # the static one: no BU
    assert not [i for _r, i in walk.log if getattr(i, "dst", "") == "cngw:cngw"]


def test_static_gateway_refuses_binding_updates(walk: Walk, mn: MobileNode) -> None:
    mn.register("fa1")
    (bu,) = sent(walk, "BU")
    reply = walk.execute("cngw:cngw", walk.roles["cngw:cngw"].on_mip(walk.now, bu.raw, "ha"))
    assert mip.decode(reply).status == mip.BACK_ADMIN_PROHIBITED


@pytest.mark.parametrize("sender", ["fa:fa1", "ha"], ids=["unknown-sender", "replayed"])
def test_cngw_refuses_unauthenticated_or_replayed_bu(walk: Walk, mn: MobileNode,
                                                     sender: str) -> None:
    mn.register("fa1")
    (bu,) = sent(walk, "BU")
    pos = walk.mark()
    reply = walk.execute("cngw:cngw2", walk.cngw().on_mip(walk.now, bu.raw, sender))
    expected = (mip.BACK_AUTH_FAILED if sender != "ha"
                else mip.BACK_IDENTIFICATION_MISMATCH)
    assert mip.decode(reply).status == expected
    assert not walk.of_type(AddTunnel, pos)


def test_refused_bu_does_not_fail_the_registration(walk: Walk, mn: MobileNode) -> None:
    """A CN-GW that refuses (here: keys out of step) costs the MN its route-optimised
    path, not its registration; the HA marks it undistributed."""
    from controller.core.binding import BindingKey
    walk.cngw().keys["ha"] = BindingKey(0x200, bytes(16))
    rrp = mn.register("fa1")
    assert rrp is not None and rrp.accepted
    assert "cngw:cngw2 -> ha BAck 131" in walk.trace()
    assert walk.gateways.ids("cngw2") == set()
    assert walk.ha.bindings[NAI].distributed == set()
    assert walk.ha.counters["bu_failed"] == 1
    assert any(" Mark bu_failed" in p for p in walk.trace(marks=True))


def test_lost_bu_times_out_and_registration_completes(walk: Walk, mn: MobileNode) -> None:
    walk.lost.add("cngw:cngw2")
    rrp = mn.register("fa1")
    assert rrp is not None and rrp.accepted
    trace = walk.trace()
    assert "ha -> cngw:cngw2 BU" in trace and "ha -> aaah HAA" in trace
    assert not any("BAck" in line for line in trace)
    assert walk.ha.bindings[NAI].distributed == set()


def test_diameter_carries_no_forbidden_avps(walk: Walk, mn: MobileNode) -> None:
    mn.register("fa1")
    for d in walk.diameter():
        assert dia.decode(d.wire) == d.msg
        codes = {c for c, _f, v in dia.walk_avp_codes(d.wire) if v == 0}
        assert not codes & dia.FORBIDDEN_AVP_CODES
