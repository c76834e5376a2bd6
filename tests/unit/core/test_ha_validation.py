"""The home agent validates what it is told (issue 11).

Reproductions first: a HAR for an NAI that exists nowhere, and a legitimate user
claiming another user's home address, each made the HA load a tunnel and sign a
Binding Update that pointed CN-GW2's tunnel at the attacker.  Then one test per check:
of the HA (NAI known, home address the user's, the user's HA) and of
``vpn_policy.check_vpn_info`` (each field of the VPN information against topology and
profile), and that every VPN information the home AAA computes passes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import pytest

from controller.core.vpn import fa_ha_key
from controller.proto import mip_keys
from controller.core.aaa_home import Destination, UserRecord, VpnProfile
from controller.core.vpn import (QosSpec, SecuritySpec, TunnelEnd, TunnelSpec, VpnInfo,
                                 for_home_agent, rewrite_foreign_agent)
from controller.core.vpn_policy import check_vpn_info
from controller.proto import diameter as dia
from controller.proto import mip
from mininet_scripts.mn_state import Agent, MnConfig, MobileNodeState
from tests.unit.harness import MipSent, MobileNode, Walk, topology

ALICE = "alice@home.example"
BOB = "bob@home.example"
MALLORY = "mallory@evil.test"
ALICE_HOA, BOB_HOA = "10.10.0.100", "10.10.0.101"
HA_ADDRESS = "10.0.0.1"
FA1_COA, FA2_COA = "10.0.0.11", "10.0.0.12"
ATTACKER = "203.0.113.66"
ATTACKER_PSK = b"attacker-chosen-pre-shared-key!!"
MIXED = [("10.30.0.0/24", "cngw"), ("10.32.0.0/24", "cngw2")]


def walk_mixed(**kw: Any) -> Walk:
    return Walk(topology(destinations={ALICE: MIXED, BOB: MIXED}, **kw))


def send_har(walk: Walk, nai: str, raw_rrq: bytes, vpn_info: VpnInfo | None,
             home_address: str = ALICE_HOA) -> dia.HaAnswer:
    """A HAR as any Diameter peer could send it (through the codec), executed at the
    HA with the walk's executor (so BUs reach the CN-GWs); the HAA."""
    har = dia.HaRequest(
        session_id="x.attacker.test;1;1", origin_host="x.attacker.test",
        origin_realm="attacker.test", destination_realm="home.example",
        destination_host="ha.home.example", user_name=nai, reg_request=raw_rrq,
        authorization_lifetime=300, auth_session_state=1, feature_vector=0,
        home_address=home_address, home_agent_address=HA_ADDRESS, vpn_info=vpn_info)
    decoded = dia.decode(dia.encode(har))
    answer = walk.execute("ha", walk.ha.on_har(walk.now, decoded))
    assert isinstance(answer, dia.HaAnswer)
    return answer


def rrp_code(haa: dia.HaAnswer) -> int:
    rrp = mip.decode(haa.reg_reply)
    assert isinstance(rrp, mip.RegistrationReply)
    return rrp.code


def rrq(nai: str, home_address: str, coa: str, ident: int, aaa_key: bytes = b"k" * 16,
        ha: tuple[int, bytes] | None = None, lifetime: int = 300) -> bytes:
    """An RRQ as ``mn_client`` builds it, for any NAI / home address / care-of."""
    config = MnConfig(nai, home_address, HA_ADDRESS, 300, aaa_key, lifetime,
                      ha[0] if ha else None, ha[1] if ha else None)
    agent = Agent("10.21.0.1", coa, "02:00:00:00:21:01", 1800)
    return MobileNodeState(config).build_rrq(agent, ident, None, lifetime)


def relayed(walk: Walk, raw: bytes, fa: str = "fa2") -> bytes:
    """``raw`` as FA ``fa`` relays it: signed with its FA-HA key for alice's session
    (RFC 5944 §3.5.4; without it the HA answers 132 before anything else)."""
    return mip.append_auth(raw, mip.AuthKind.FA_HA, mip_keys.FA_HA_SPI,
                           fa_ha_key(walk.ha.bindings[ALICE].secret, fa))


def alice_ha_key(walk: Walk) -> tuple[int, bytes]:
    user = walk.store.user(ALICE)
    assert user is not None
    return (user.mn_ha_spi, user.mn_ha_key)


def ident(walk: Walk) -> int:
    return mip.ntp_identification(walk.now)


def attack_info(nai: str, hoa: str, fa: str = "evil", fa_address: str = ATTACKER
                ) -> VpnInfo:
    """VPN information as an attacker writes it: an HA tunnel and a route-optimised
    CN-GW2 tunnel for ``hoa`` towards the attacker's address, with the attacker's key."""
    return VpnInfo(
        nai=nai, home_address=hoa, home_agent="ha", foreign_agent=fa,
        tunnels=(
            TunnelSpec(f"x/ha-{fa}", TunnelEnd("ha", HA_ADDRESS, ("10.30.0.0/24",)),
                       TunnelEnd(fa, fa_address, (f"{hoa}/32",)), psk=ATTACKER_PSK,
                       initiator=fa),
            TunnelSpec(f"x/cngw2-{fa}", TunnelEnd("cngw2", "10.0.0.32", ("10.32.0.0/24",)),
                       TunnelEnd(fa, fa_address, (f"{hoa}/32",)), psk=ATTACKER_PSK,
                       initiator=fa)))


def binding_updates(walk: Walk, pos: int = 0) -> list[MipSent]:
    return [i for _r, i in walk.since(pos)
            if isinstance(i, MipSent) and isinstance(i.msg, mip.BindingUpdate)]


def psks_loaded(walk: Walk) -> set[bytes]:
    return {side.psk for tunnels in walk.gateways.tunnels.values()
            for side in tunnels.values()}


# ------------------------------------------------------------------ reproductions


def test_har_for_an_unknown_nai_is_refused_and_nothing_is_set() -> None:
    """Issue 11 reproduction 1: mallory@evil.test exists nowhere; her HAR names an
    arbitrary FA address, alice's home address and her own PSK."""
    walk = walk_mixed()
    pos = walk.mark()
    haa = send_har(walk, MALLORY, rrq(MALLORY, ALICE_HOA, ATTACKER, ident(walk)),
                   attack_info(MALLORY, ALICE_HOA))
    assert haa.result_code == 4005 and rrp_code(haa) == mip.CODE_HA_MN_FAILED_AUTH
    assert haa.vpn_info is None
    assert len(walk.ha.bindings) == 0
    assert walk.gateways.history == [] and ATTACKER_PSK not in psks_loaded(walk)
    assert binding_updates(walk, pos) == []           # never signs a BU for it
    assert walk.cngw("cngw2").bindings == {}
    assert walk.ha.counters["refused"] == 1
    assert walk.ha.counters["refused_unknown_nai"] == 1


def test_alice_cannot_point_cngw2_at_herself_for_bobs_home_address() -> None:
    """Issue 11 reproduction 2: alice, with her own valid MN-HA key, asks for bob's
    home address: refused (129), nothing set, no BU."""
    walk = walk_mixed()
    pos = walk.mark()
    raw = rrq(ALICE, BOB_HOA, FA1_COA, ident(walk), ha=alice_ha_key(walk))
    haa = send_har(walk, ALICE, raw, attack_info(ALICE, BOB_HOA, "fa1", FA1_COA),
                   home_address=BOB_HOA)
    assert haa.result_code == 4005 and rrp_code(haa) == mip.CODE_HA_ADMIN_PROHIBITED
    assert len(walk.ha.bindings) == 0 and walk.gateways.history == []
    assert binding_updates(walk, pos) == []
    assert walk.ha.counters["refused_home_address"] == 1


def test_alice_cannot_name_bobs_home_address_in_the_vpn_information() -> None:
    """Variant: alice's RRQ is all hers, the VPN information selects bob's address."""
    walk = walk_mixed()
    pos = walk.mark()
    info = valid_info(walk)
    info = replace(info, tunnels=tuple(
        t.with_end("fa1", TunnelEnd("fa1", FA1_COA, (f"{BOB_HOA}/32",)))
        if "fa1" in t.ends() else t for t in info.tunnels))
    raw = rrq(ALICE, ALICE_HOA, FA1_COA, ident(walk), ha=alice_ha_key(walk))
    haa = send_har(walk, ALICE, raw, info)
    assert haa.result_code == 4005 and rrp_code(haa) == mip.CODE_HA_ADMIN_PROHIBITED
    assert "VPN information" in haa.error_message
    assert len(walk.ha.bindings) == 0 and walk.gateways.history == []
    assert binding_updates(walk, pos) == []
    assert walk.ha.counters["refused_vpn_info"] == 1


def test_the_same_har_with_the_home_aaas_information_is_accepted() -> None:
    """The control for the two above: a correct HAR binds and posts the BU."""
    walk = walk_mixed()
    pos = walk.mark()
    raw = rrq(ALICE, ALICE_HOA, FA1_COA, ident(walk), ha=alice_ha_key(walk))
    haa = send_har(walk, ALICE, raw, valid_info(walk))
    assert haa.result_code == 2001 and rrp_code(haa) == mip.CODE_ACCEPTED
    assert ALICE in walk.ha.bindings and len(binding_updates(walk, pos)) == 1
    assert walk.ha.counters["refused"] == 0


# ------------------------------------------------------------------ the HA's checks


def test_relayed_rrq_with_another_users_home_address_is_refused() -> None:
    """An FA-relayed RRQ (claim 17 path) for alice, signed with her key, naming bob's
    home address: 129, the binding stays as it was."""
    walk = walk_mixed()
    mn = MobileNode(walk, "mn1")
    assert mn.register("fa1") is not None and ALICE in walk.ha.bindings
    before = walk.ha.bindings[ALICE]
    walk.now += 1
    raw = relayed(walk, rrq(ALICE, BOB_HOA, FA2_COA, ident(walk), ha=alice_ha_key(walk)))
    pos, history = walk.mark(), len(walk.gateways.history)
    reply = mip.decode(walk.execute("ha", walk.ha.on_registration_request(walk.now, raw)))
    assert isinstance(reply, mip.RegistrationReply)
    assert reply.code == mip.CODE_HA_ADMIN_PROHIBITED
    assert walk.ha.bindings[ALICE] is before and before.foreign_agent == "fa1"
    assert binding_updates(walk, pos) == [] and walk.gateways.history[history:] == []
    assert walk.ha.counters["refused_home_address"] == 1


def test_relayed_rrq_of_a_user_deleted_since_is_refused() -> None:
    walk = walk_mixed()
    assert MobileNode(walk, "mn1").register("fa1") is not None
    key = alice_ha_key(walk)
    walk.ha.db = _Db(None, None)          # alice removed from the VPN database
    walk.now += 1
    raw = relayed(walk, rrq(ALICE, ALICE_HOA, FA2_COA, ident(walk), ha=key))
    reply = mip.decode(walk.execute("ha", walk.ha.on_registration_request(walk.now, raw)))
    assert isinstance(reply, mip.RegistrationReply)
    assert reply.code == mip.CODE_HA_MN_FAILED_AUTH
    assert walk.ha.bindings[ALICE].foreign_agent == "fa1"
    assert walk.ha.counters["refused_unknown_nai"] == 1


def test_user_of_another_home_agent_is_refused() -> None:
    walk = walk_mixed()
    user = walk.store.user(ALICE)
    assert user is not None
    info = valid_info(walk)
    walk.store.put_user(replace(user, home_agent="ha-elsewhere"))
    raw = rrq(ALICE, ALICE_HOA, FA1_COA, ident(walk), ha=alice_ha_key(walk))
    haa = send_har(walk, ALICE, raw, info)
    assert rrp_code(haa) == mip.CODE_HA_ADMIN_PROHIBITED and len(walk.ha.bindings) == 0
    assert walk.ha.counters["refused_home_agent"] == 1


def test_rrq_for_another_home_agent_address_is_refused() -> None:
    walk = walk_mixed()
    config = MnConfig(ALICE, ALICE_HOA, "10.0.0.99", 300, b"k" * 16, 300,
                      *alice_ha_key(walk))
    agent = Agent("10.21.0.1", FA1_COA, "02:00:00:00:21:01", 1800)
    raw = MobileNodeState(config).build_rrq(agent, ident(walk), None, 300)
    haa = send_har(walk, ALICE, raw, valid_info(walk))
    assert rrp_code(haa) == mip.CODE_HA_UNKNOWN_HA_ADDRESS and len(walk.ha.bindings) == 0


def test_user_name_other_than_the_rrqs_nai_is_refused() -> None:
    walk = walk_mixed()
    raw = rrq(ALICE, ALICE_HOA, FA1_COA, ident(walk), ha=alice_ha_key(walk))
    bob = walk.store.user(BOB)
    assert bob is not None
    bob_raw = rrq(BOB, BOB_HOA, FA1_COA, ident(walk), ha=(bob.mn_ha_spi, bob.mn_ha_key))
    # alice's authentic RRQ under bob's User-Name, and bob's under alice's
    for user_name, raw_rrq, hoa in ((BOB, raw, ALICE_HOA), (ALICE, bob_raw, BOB_HOA)):
        haa = send_har(walk, user_name, raw_rrq, valid_info(walk), home_address=hoa)
        assert haa.result_code == 4005 and len(walk.ha.bindings) == 0
    assert walk.ha.counters["refused"] == 2


def test_har_home_address_avp_must_match_the_rrq() -> None:
    walk = walk_mixed()
    raw = rrq(ALICE, ALICE_HOA, FA1_COA, ident(walk), ha=alice_ha_key(walk))
    haa = send_har(walk, ALICE, raw, valid_info(walk), home_address=BOB_HOA)
    assert rrp_code(haa) == mip.CODE_HA_ADMIN_PROHIBITED and len(walk.ha.bindings) == 0


def test_har_home_agent_address_avp_must_be_this_ha() -> None:
    walk = walk_mixed()
    raw = rrq(ALICE, ALICE_HOA, FA1_COA, ident(walk), ha=alice_ha_key(walk))
    har = dia.HaRequest(
        session_id="s;1;1", origin_host="aaah.home.example", origin_realm="home.example",
        destination_realm="home.example", destination_host="ha.home.example",
        user_name=ALICE, reg_request=raw, authorization_lifetime=300,
        auth_session_state=1, feature_vector=0, home_address=ALICE_HOA,
        home_agent_address="10.0.0.99", vpn_info=valid_info(walk))
    answer = walk.execute("ha", walk.ha.on_har(walk.now, har))
    assert rrp_code(answer) == mip.CODE_HA_UNKNOWN_HA_ADDRESS
    assert len(walk.ha.bindings) == 0


def test_har_for_another_care_of_address_than_the_vpn_informations_fa_is_refused() -> None:
    walk = walk_mixed()
    raw = rrq(ALICE, ALICE_HOA, FA2_COA, ident(walk), ha=alice_ha_key(walk))
    haa = send_har(walk, ALICE, raw, valid_info(walk))      # computed for fa1
    assert rrp_code(haa) == mip.CODE_HA_ADMIN_PROHIBITED and len(walk.ha.bindings) == 0
    assert walk.ha.counters["refused_vpn_info"] == 1


# ------------------------------------------------------------------ check_vpn_info


def valid_info(walk: Walk, fa: str = "fa1", **kw: Any) -> VpnInfo:
    """What the home AAA puts in the HAR for alice at ``fa``."""
    user = walk.store.user(ALICE)
    assert user is not None
    coa = walk.topo.gateways[fa].core.ip
    return for_home_agent(walk.aaah.vpn_set_path(user, fa, coa, **kw))


def check(walk: Walk, info: VpnInfo, coa: str | None = FA1_COA,
          nai: str = ALICE) -> str | None:
    user = walk.store.user(nai)
    assert user is not None
    return check_vpn_info(info, user, walk.store.profile(nai), walk.built.gateway_infos,
                          care_of_address=coa)


def _tunnel(info: VpnInfo, prefix: str) -> int:
    return next(i for i, t in enumerate(info.tunnels) if t.tunnel_id.startswith(prefix))


def _set(info: VpnInfo, prefix: str, **changes: Any) -> VpnInfo:
    tunnels = list(info.tunnels)
    i = _tunnel(info, prefix)
    tunnels[i] = replace(tunnels[i], **changes)
    return replace(info, tunnels=tuple(tunnels))


def _end(info: VpnInfo, prefix: str, which: str, **changes: Any) -> VpnInfo:
    spec = info.tunnels[_tunnel(info, prefix)]
    return _set(info, prefix, **{which: replace(getattr(spec, which), **changes)})


MUTATIONS: list[tuple[str, Callable[[VpnInfo], VpnInfo], str]] = [
    ("another user", lambda i: replace(i, nai=BOB), "is for user"),
    ("home address", lambda i: replace(i, home_address=BOB_HOA), "home address"),
    ("home agent", lambda i: replace(i, home_agent="fa2"), "home agent"),
    ("fa not an fa", lambda i: replace(i, foreign_agent="cngw"), "not a foreign agent"),
    ("fa not at coa", lambda i: rewrite_foreign_agent(i, "fa2", FA2_COA), "care-of"),
    ("previous fa", lambda i: replace(i, previous_foreign_agent="evil"), "previous"),
    ("smooth handoff", lambda i: replace(i, smooth_handoff=True), "smooth handoff"),
    ("distribution", lambda i: replace(i, distribution="on_demand"), "distribution"),
    ("end not a gateway", lambda i: _end(i, "alice", "b", gateway="evil"),
     "not a gateway of the topology"),
    ("end address", lambda i: _end(i, "alice_home.example/ha", "b", address=ATTACKER),
     "not its core address"),
    ("static end address", lambda i: _end(i, "static", "b", address=ATTACKER),
     "not its core address"),
    ("ends off the path", lambda i: _set(i, "alice_home.example/ha", tunnel_id="x/ha-fa1"),
     "not on the user's VPN path"),
    ("gateway not in profile", lambda i: replace(i, tunnels=i.tunnels + (TunnelSpec(
        "alice_home.example/cngw-fa1", TunnelEnd("cngw", "10.0.0.31", ("10.30.0.0/24",)),
        TunnelEnd("fa1", FA1_COA, (f"{ALICE_HOA}/32",)), psk=b"k" * 32,
        initiator="fa1"),)), "not on the user's VPN path"),
    ("twice", lambda i: replace(i, tunnels=i.tunnels + i.tunnels[:1]), "twice"),
    ("missing", lambda i: replace(i, tunnels=i.tunnels[1:]), "missing"),
    ("mn selector", lambda i: _end(i, "alice_home.example/cngw2", "b",
                                   selectors=(f"{BOB_HOA}/32",)), "MN-side selectors"),
    ("mn selector extra", lambda i: _end(i, "alice_home.example/ha", "b",
                                         selectors=(f"{ALICE_HOA}/32", "0.0.0.0/0")),
     "MN-side selectors"),
    ("cn selector wide", lambda i: _end(i, "alice_home.example/ha", "a",
                                        selectors=("0.0.0.0/0",)),
     "correspondent selector"),
    ("cn selector other gw", lambda i: _end(i, "alice_home.example/cngw2", "a",
                                            selectors=("10.30.0.0/24",)),
     "correspondent selector"),
    ("cn selector home", lambda i: _end(i, "alice_home.example/ha", "a",
                                        selectors=(f"{BOB_HOA}/32",)),
     "correspondent selector"),
    ("cn selector none", lambda i: _end(i, "alice_home.example/cngw2", "a", selectors=()),
     "no correspondent selector"),
    ("cn selector junk", lambda i: _end(i, "alice_home.example/ha", "a",
                                        selectors=("not-a-net",)), "not an IPv4 network"),
    ("security", lambda i: _set(i, "alice_home.example/ha",
                                security=SecuritySpec("aes128-sha1-modp1024", "null")),
     "security"),
    ("qos", lambda i: _set(i, "alice_home.example/cngw2", qos=QosSpec(0, 46)), "qos"),
    ("initiator", lambda i: _set(i, "alice_home.example/cngw2", initiator="cngw2"),
     "initiator"),
    ("no key", lambda i: _set(i, "alice_home.example/ha", psk=b""), "no key"),
    ("static with a key", lambda i: _set(i, "static", psk=ATTACKER_PSK), "stationary"),
    ("static selectors", lambda i: _end(i, "static", "a", selectors=(f"{ALICE_HOA}/32",)),
     "stationary"),
]


@pytest.mark.parametrize("what,mutate,reason", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_check_vpn_info_refuses(what: str, mutate: Callable[[VpnInfo], VpnInfo],
                                reason: str) -> None:
    walk = walk_mixed()
    info = valid_info(walk)
    assert check(walk, info) is None
    got = check(walk, mutate(info))
    assert got is not None and reason in got, got
    assert ATTACKER_PSK.hex() not in got and "attacker-chosen" not in got


@pytest.mark.parametrize("destinations,kw", [
    (MIXED, {}),
    ([("10.30.0.0/24", "cngw")], {}),
    ([("10.32.0.0/24", "cngw2")], {}),
    ([("10.32.0.0/25", "cngw2"), ("10.32.0.128/25", "cngw2")], {}),
    (MIXED, {"distribution": "on_demand"}),
    (MIXED, {"smooth_handoff": True}),
], ids=["mixed", "static", "dynamic", "two-prefixes", "on-demand", "smooth-handoff"])
def test_every_information_the_home_aaa_computes_passes(
        destinations: list[tuple[str, str]], kw: dict[str, Any]) -> None:
    walk = Walk(topology(destinations={ALICE: destinations}, **kw))
    full = walk.aaah.vpn_set_path(walk.store.user(ALICE), "fa1", FA1_COA)
    assert check(walk, full) is None
    assert check(walk, for_home_agent(full)) is None
    # a local move (claims 7, 17) rewrites it: still the user's path at the new FA
    moved = rewrite_foreign_agent(full, "fa2", FA2_COA)
    assert check(walk, moved, coa=FA2_COA) is None
    assert check(walk, moved, coa=FA1_COA) is not None


def test_smooth_handoff_tunnel_is_checked() -> None:
    walk = Walk(topology(destinations={ALICE: MIXED}, smooth_handoff=True))
    user = walk.store.user(ALICE)
    aaah = walk.aaah
    aaah.sessions[ALICE] = aaah.vpn_set_path(user, "fa1", FA1_COA)
    aaah.secrets[ALICE] = bytes(range(32))      # the session's secret (issue 11)
    info = aaah.vpn_set_path(user, "fa2", FA2_COA, previous_fa="fa1")
    info = replace(info, handoff=aaah._handoff(ALICE, info, "fa1"))
    assert info.handoff is not None
    assert check(walk, info, coa=FA2_COA) is None
    bad = replace(info, handoff=replace(info.handoff, a=replace(info.handoff.a,
                                                               selectors=("0.0.0.0/0",))))
    assert "correspondent selector" in (check(walk, bad, coa=FA2_COA) or "")
    bad = replace(info, handoff=replace(info.handoff, b=replace(info.handoff.b,
                                                               address=ATTACKER)))
    assert "core address" in (check(walk, bad, coa=FA2_COA) or "")
    bad = replace(info, previous_foreign_agent="fa3")
    assert "handoff" in (check(walk, bad, coa=FA2_COA) or "")


def test_profile_destination_outside_its_gateways_prefixes_is_refused() -> None:
    """A profile may say 0.0.0.0/0 behind CN-GW2 (issue 11 point 6): the home AAA
    computes it, the HA does not take it (CN-GW2 only has 10.32.0.0/24)."""
    walk = walk_mixed()
    # the loader and REST refuse such a profile now; it can still be in a database
    # written by an older version (or by hand): the HA does not take it either
    prof = walk.store.profile(ALICE)
    assert prof is not None
    walk.store.put_profile(replace(prof, destinations=(Destination("0.0.0.0/0", "cngw2"),)),
                           now=walk.now)
    info = valid_info(walk)
    assert "correspondent selector" in (check(walk, info) or "")


def test_user_without_profile_gets_no_tunnels() -> None:
    walk = walk_mixed()
    user = walk.store.user(ALICE)
    assert user is not None
    empty = for_home_agent(_aaah_path(walk, user, None))
    gateways = walk.built.gateway_infos
    assert empty.tunnels == ()
    assert check_vpn_info(empty, user, None, gateways, care_of_address=FA1_COA) is None
    full = replace(empty, tunnels=valid_info(walk).tunnels)
    assert "not on the user's VPN path" in (
        check_vpn_info(full, user, None, gateways, care_of_address=FA1_COA) or "")


def test_profile_naming_an_unknown_gateway_is_refused_not_raised() -> None:
    walk = walk_mixed()
    info = valid_info(walk)
    user = walk.store.user(ALICE)
    profile = VpnProfile(ALICE, (Destination("10.99.0.0/24", "nosuch"),), SecuritySpec(),
                         QosSpec())
    got = check_vpn_info(info, user, profile, walk.built.gateway_infos,
                         care_of_address=FA1_COA)
    assert got is not None and "no usable gateway" in got


def test_check_works_on_plain_user_records() -> None:
    """The pure function needs no database: a hand-made record and profile."""
    walk = walk_mixed()
    user = UserRecord(ALICE, ALICE_HOA, "ha", 300, b"k" * 16)
    profile = VpnProfile(ALICE, (Destination("10.32.0.0/24", "cngw2"),), SecuritySpec(),
                         QosSpec())
    info = for_home_agent(_aaah_path(walk, user, profile))
    assert check_vpn_info(info, user, profile, walk.built.gateway_infos,
                          care_of_address=FA1_COA) is None


class _Db:
    """A VpnDatabase holding one user (or none)."""

    def __init__(self, user: UserRecord | None, profile: VpnProfile | None) -> None:
        self._user, self._profile = user, profile

    def user(self, nai: str) -> UserRecord | None:
        return self._user if self._user and nai == self._user.nai else None

    def profile(self, nai: str) -> VpnProfile | None:
        return self._profile if self._profile and nai == self._profile.nai else None


def _aaah_path(walk: Walk, user: UserRecord, profile: VpnProfile | None) -> VpnInfo:
    aaah = walk.aaah
    saved = aaah.db
    aaah.db = _Db(user, profile)
    try:
        return aaah.vpn_set_path(user, "fa1", FA1_COA)
    finally:
        aaah.db = saved
