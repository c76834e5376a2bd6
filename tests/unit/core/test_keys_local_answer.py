"""Issue 11: the AAAF answers a move locally only after verifying the MN with the
session's MN-FA key (RFC 3957 / RFC 4004 key distribution), every tunnel gets its own
key, and the FA authenticates the RRQ it relays to the HA (RFC 5944 §3.5.4)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.core.actions import AddTunnel, AnswerDiameter, RemoveTunnel
from controller.proto import diameter as dia
from controller.proto import mip
from controller.proto import mip_keys
from tests.unit.harness import MobileNode, Walk

NAI = "alice@home.example"
OLD = "alice_home.example/ha-fa1"
NEW = "alice_home.example/ha-fa2"
FA1_COA, FA2_COA = "10.0.0.11", "10.0.0.12"


@pytest.fixture
def walk() -> Walk:
    return Walk()


@pytest.fixture
def mn(walk: Walk) -> MobileNode:
    node = MobileNode(walk)
    assert node.register("fa1").accepted
    walk.now += 2.0
    return node


def forged_amr(walk: Walk, mn: MobileNode, raw: bytes) -> dia.AmRequest:
    """The AMR a peer of the AAAF sends naming fa1 as previous and fa2 as new FA."""
    input_len, auth_len, auth_off = mip.mn_aaa_auth_offsets(raw)
    return dia.AmRequest(
        session_id="attacker;1;1", origin_host="fa2.a.example", origin_realm="a.example",
        destination_realm="home.example", user_name=NAI, reg_request=raw,
        mn_aaa_spi=mn.config.spi, auth_input_length=input_len,
        authenticator_length=auth_len, authenticator_offset=auth_off,
        home_address=mn.config.home_address, home_agent_address=mn.config.home_agent,
        previous_fa_address=FA1_COA, previous_fa="fa1", foreign_agent="fa2")


def answers(actions: list) -> list[dia.AmAnswer]:
    return [a.answer for a in actions if isinstance(a, AnswerDiameter)]


@pytest.mark.parametrize("mn_fa", [None, (mip_keys.MN_FA_SPI, bytes(20))],
                         ids=["no-mn-fa", "garbage-mn-fa"])
def test_forged_amr_with_garbage_mn_ha_gets_no_local_answer(walk: Walk, mn: MobileNode,
                                                            mn_fa: object) -> None:
    """The reproduction: an MN-HA extension that is present but garbage used to get a
    local 2001 carrying the live HA<->FA1 PSK, and moved the AAAF's cache to fa2."""
    live_psk = walk.gateways.tunnels["ha"][OLD].psk
    before = walk.aaaf().sessions[NAI]
    raw = mn.rrq("fa2", "fa1", key=bytes(16), ha_key=bytes(16), mn_fa=mn_fa)
    assert mip.decode(raw).find(mip.MnHaAuth) is not None
    actions = walk.aaaf().on_amr(walk.now, forged_amr(walk, mn, raw))
    assert answers(actions) == []                 # no local answer: it goes home
    assert walk.aaaf().counters["local"] == 0
    assert walk.aaaf().sessions[NAI] == before    # cache unchanged
    # ... where the MN-AAA authenticator fails: refused, nothing released
    pos = walk.mark()
    mn.register("fa2", "fa1", key=bytes(16), ha_key=bytes(16), mn_fa=mn_fa)
    assert walk.replies_to_mn(pos)[0].code == mip.CODE_FA_MN_FAILED_AUTH
    assert not walk.of_type((AddTunnel, RemoveTunnel), pos)
    for d in walk.diameter(pos):
        assert live_psk not in d.wire
    assert walk.aaaf().sessions[NAI].vpn_info == before.vpn_info
    assert walk.ha.bindings[NAI].foreign_agent == "fa1"


# ------------------------------------------------------------------ legitimate moves


def all_keys(walk: Walk) -> dict[tuple[str, str], bytes]:
    return {(gw, tid): side.psk for gw, sides in walk.gateways.tunnels.items()
            for tid, side in sides.items()}


def test_legitimate_move_is_local_with_a_key_of_its_own(walk: Walk, mn: MobileNode) -> None:
    before = all_keys(walk)
    old = walk.gateways.tunnels["ha"][OLD].psk
    pos = walk.mark()
    rrp = mn.register("fa2", "fa1")
    assert rrp is not None and rrp.accepted
    assert walk.aaaf().counters["local"] == 1 and "aaah -> ha HAR" not in walk.trace(pos)
    new = walk.gateways.tunnels["ha"][NEW].psk
    assert new == walk.gateways.tunnels["fa2"][NEW].psk
    assert new != old and new not in before.values()
    others = {k: v for k, v in all_keys(walk).items() if k[1] != NEW}
    assert new not in others.values()
    # only the two ends (and the AAA that derived it) ever saw it: not FA1's AMA,
    # not any message to FA1, not the old FA's state
    for role, item in walk.log:
        if getattr(item, "dst", None) == "fa:fa1" or role == "fa:fa1":
            assert new not in getattr(item, "wire", getattr(item, "raw", b""))
    # the AAAF's answer to FA2 carries neither the session secret nor the MN-FA key
    (ama,) = [d for d in walk.diameter(pos) if d.name == "AMA"]
    cached = walk.aaaf().sessions[NAI]
    assert cached.secret not in ama.wire and cached.mn_fa_key not in ama.wire


def test_full_registration_answer_to_the_fa_has_no_secret(walk: Walk,
                                                          mn: MobileNode) -> None:
    (to_aaaf,) = [d for d in walk.diameter() if d.name == "AMA" and d.dst.startswith("aaaf")]
    (to_fa,) = [d for d in walk.diameter() if d.name == "AMA" and d.dst == "fa:fa1"]
    secret = to_aaaf.msg.session_secret
    assert len(secret) == 32 and to_aaaf.msg.fa_mn_key is not None
    assert to_fa.msg.session_secret == b"" and to_fa.msg.fa_mn_key is None
    assert secret not in to_fa.wire and to_aaaf.msg.fa_mn_key.session_key not in to_fa.wire
    assert to_fa.msg.mn_fa_nonce == to_aaaf.msg.mn_fa_nonce          # for the MN
    (har,) = [d for d in walk.diameter() if d.name == "HAR"]
    assert har.msg.session_secret == secret == walk.ha.bindings[NAI].secret


def test_replayed_move_rrq_is_not_answered_locally(walk: Walk, mn: MobileNode) -> None:
    """The very bytes of an accepted local move, sent again (by anyone): the MN-FA
    authenticator verifies but the Identification is not newer: home, counted."""
    pos = walk.mark()
    assert mn.register("fa2", "fa1").accepted
    (amr,) = [d.msg for d in walk.diameter(pos) if d.name == "AMR"]
    walk.now += 2
    assert mn.register("fa1", "fa2").accepted                  # MN moves back, locally
    cached = walk.aaaf().sessions[NAI]
    actions = walk.aaaf().on_amr(walk.now, replace(amr, session_id="replay;1;1"))
    assert answers(actions) == []
    assert walk.aaaf().home_because["replay"] == 1
    assert walk.aaaf().sessions[NAI] == cached and walk.aaaf().counters["local"] == 2


def test_move_with_a_foreign_care_of_address_goes_home(walk: Walk, mn: MobileNode) -> None:
    """A genuine MN-FA authenticator does not let an AMR from FA2 claim FA3's address."""
    raw = mn.rrq("fa2", "fa1")
    rrq = mip.decode(raw)
    rrq.care_of_address = "10.0.0.99"
    forged = mip.encode(replace(rrq, extensions=[e for e in rrq.extensions
                                                 if not isinstance(e, (mip.MnHaAuth,
                                                                       mip.GeneralizedAuth,
                                                                       mip.MnFaAuth))]))
    c = mn.config
    forged = mip.append_auth(forged, mip.AuthKind.MN_HA, c.ha_spi, c.ha_key)
    forged = mip.append_auth(forged, mip.AuthKind.MN_AAA, c.spi, c.key)
    forged = mip.append_auth(forged, mip.AuthKind.MN_FA, *mn.mn_fa)
    assert answers(walk.aaaf().on_amr(walk.now, forged_amr(walk, mn, forged))) == []
    assert walk.aaaf().home_because["care_of_address"] == 1


def test_without_keys_from_home_nothing_is_local(walk: Walk, mn: MobileNode) -> None:
    """A cached session without the home AAA's keys (e.g. from an older AAAH) never
    gets a local answer."""
    walk.aaaf().sessions[NAI] = replace(walk.aaaf().sessions[NAI], mn_fa_key=b"",
                                        secret=b"")
    pos = walk.mark()
    assert mn.register("fa2", "fa1").accepted
    assert "aaah -> ha HAR" in walk.trace(pos)
    assert walk.aaaf().home_because["no_key"] == 1 and walk.aaaf().counters["local"] == 0


# ------------------------------------------------------------------ FA-HA authentication


def relayed(walk: Walk, mn: MobileNode, fa_key: bytes | None) -> bytes:
    raw = mn.rrq("fa2", "fa1")
    if fa_key is not None:
        raw = mip.append_auth(raw, mip.AuthKind.FA_HA, mip_keys.FA_HA_SPI, fa_key)
    return raw


@pytest.mark.parametrize("fa_key", [None, bytes(32), "fa1"],
                         ids=["no-fa-ha", "wrong-key", "other-fa's-key"])
def test_relayed_rrq_without_valid_fa_ha_gets_132(walk: Walk, mn: MobileNode,
                                                  fa_key: object) -> None:
    from controller.core.vpn import fa_ha_key
    binding = walk.ha.bindings[NAI]
    if fa_key == "fa1":
        fa_key = fa_ha_key(binding.secret, "fa1")
    raw = relayed(walk, mn, fa_key)  # type: ignore[arg-type]
    pos = walk.mark()
    reply = walk.execute("ha", walk.ha.on_registration_request(walk.now, raw))
    assert mip.decode(reply).code == mip.CODE_HA_FA_FAILED_AUTH
    assert walk.since(pos) == [] and walk.ha.bindings[NAI] == binding
    assert walk.ha.counters["fa_auth_failed"] == 1
    assert walk.gateways.ids("ha") == {OLD, "static/ha-cngw"}


def test_fa_ha_authenticator_must_be_the_last_extension(walk: Walk, mn: MobileNode) -> None:
    from controller.core.vpn import fa_ha_key
    raw = relayed(walk, mn, fa_ha_key(walk.ha.bindings[NAI].secret, "fa2"))
    raw += mip.encode_extension(mip.NaiExtension("x@y.example"))     # appended after it
    reply = walk.execute("ha", walk.ha.on_registration_request(walk.now, raw))
    assert mip.decode(reply).code == mip.CODE_HA_FA_FAILED_AUTH


def test_genuine_relay_carries_fa_ha_and_is_accepted(walk: Walk, mn: MobileNode) -> None:
    from controller.core.vpn import fa_ha_key
    pos = walk.mark()
    assert mn.register("fa2", "fa1").accepted
    (to_ha,) = [i for _r, i in walk.log[pos:] if getattr(i, "dst", None) == "ha"
                and getattr(i, "name", "") == "RRQ"]
    assert isinstance(to_ha.msg.extensions[-1], mip.FaHaAuth)
    assert to_ha.msg.extensions[-1].spi == mip_keys.FA_HA_SPI
    assert mip.verify_auth(to_ha.raw, mip.AuthKind.FA_HA,
                           fa_ha_key(walk.ha.bindings[NAI].secret, "fa2"))
    assert walk.ha.counters["fa_auth_failed"] == 0


# ------------------------------------------------------------------ restart


def test_keys_survive_export_and_restore(walk: Walk, mn: MobileNode) -> None:
    import json
    from controller.core.aaa_foreign import ForeignAaa
    from controller.core.home_agent import HomeAgent
    assert mn.register("fa2", "fa1").accepted
    aaaf = walk.aaaf()
    rec = json.loads(json.dumps(aaaf.export_state(NAI)))
    fresh = ForeignAaa(aaaf.host, aaaf.realm, aaaf.foreign_agents, aaaf.home_realms)
    fresh.restore_state(NAI, rec)
    assert fresh.sessions[NAI] == aaaf.sessions[NAI]
    ha = walk.ha
    fresh_ha = HomeAgent(ha.name, ha.address, ha.host, ha.realm, ha.foreign_agents)
    fresh_ha.restore_state(NAI, json.loads(json.dumps(ha.export_state(NAI))))
    assert fresh_ha.bindings[NAI].secret == ha.bindings[NAI].secret != b""
    fa2 = walk.fa("fa2")
    visitor = fa2.visitors[NAI]
    assert visitor.fa_key
    walk.fa("fa1").restore_state(NAI, json.loads(json.dumps(fa2.export_state(NAI))))
    assert walk.fa("fa1").visitors[NAI].fa_key == visitor.fa_key
    aaah = walk.aaah
    secret = aaah.secrets[NAI]
    rec = json.loads(json.dumps(aaah.export_state(NAI)))
    del aaah.secrets[NAI]
    aaah.restore_state(NAI, rec)
    assert aaah.secrets[NAI] == secret
    for record in (rec, fresh.export_state(NAI)):
        assert secret.hex() in json.dumps(record)          # hex, like the PSKs
    assert secret.hex() not in repr(aaaf.sessions[NAI]) and "secret=" not in repr(
        aaaf.sessions[NAI])


def test_vpn_information_without_a_handoff_is_not_copied_to_drop_it() -> None:
    """Issue 15: the AAAs cache the VPN information without its handoff tunnel; when it
    has none, they keep the very object (frozen) instead of a copy; with one, a copy
    without it, as ``dataclasses.replace``."""
    from dataclasses import replace

    from controller.core.aaa_home import with_handoff
    from controller.core.vpn import QosSpec, SecuritySpec, TunnelEnd, TunnelSpec, VpnInfo
    t = TunnelSpec("u/ha-fa1", TunnelEnd("ha", "10.0.0.1", ()), TunnelEnd("fa1", "10.0.0.2", ()),
                   b"k" * 32, SecuritySpec(), QosSpec())
    plain = VpnInfo("u@home.example", "10.64.0.1", "ha", "fa1", (t,))
    assert with_handoff(plain, None) is plain
    handed = with_handoff(plain, t)
    assert handed == replace(plain, handoff=t) and handed.handoff is t
    assert with_handoff(handed, replace(t)) is handed          # equal tunnel: same value
    assert with_handoff(handed, None) == plain
