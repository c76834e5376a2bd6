"""Claim 17: after registering at FA1 the MN moves to FA2 (same domain) and re-registers
with the previous-FA extension; the AAAF answers locally and FA2 relays to the HA."""

from __future__ import annotations

import pytest

from controller.core import flows
from controller.core.actions import AddTunnel, RelayToHomeAgent, RemoveTunnel
from controller.core.vpn import fa_ha_key, tunnel_psk
from controller.proto import mip
from controller.proto import mip_keys
from tests.unit.harness import MobileNode, Walk

NAI = "alice@home.example"
OLD = "alice_home.example/ha-fa1"
NEW = "alice_home.example/ha-fa2"
FA1_COA, FA2_COA = "10.0.0.11", "10.0.0.12"

INTRA_MOVE = [
    "mn -> fa:fa2 RRQ",
    "fa:fa2 -> aaaf:domain-a AMR",
    "aaaf:domain-a -> fa:fa2 AMA",
    "fa:fa2 RelayToHomeAgent",
    "fa:fa2 -> ha RRQ",
    f"ha RemoveTunnel ha {OLD}",
    f"ha AddTunnel ha {NEW}",
    "ha -> fa:fa2 RRP 0",
    "fa:fa2 SendFlows acc2",
    f"fa:fa2 AddTunnel fa2 {NEW} initiator",
    "fa:fa2 -> mn RRP 0",
    "fa:fa2 NotifyVisitorLeft fa1",
    f"fa:fa1 RemoveTunnel fa1 {OLD}",
    "fa:fa1 SendFlows acc1",
]


@pytest.fixture
def walk() -> Walk:
    return Walk()


@pytest.fixture
def mn(walk: Walk) -> MobileNode:
    node = MobileNode(walk)
    assert node.register("fa1").accepted
    walk.now += 2.0
    return node


def forwards(walk: Walk, switch: str, fa: str, mn: MobileNode) -> list[int]:
    conf = walk.fa(fa).conf
    return walk.table(switch).lookup(mn.port, mn.mac, conf.inside_mac, flows.ETH_IPV4, 6)


def move(walk: Walk, mn: MobileNode, to: str = "fa2", previous: str | None = "fa1",
         **kw: object) -> tuple[int, mip.RegistrationReply | None]:
    pos = walk.mark()
    return pos, mn.register(to, previous, **kw)


def test_intra_domain_move_exact_walk(walk: Walk, mn: MobileNode) -> None:
    issued = walk.aaah.sessions[NAI].tunnels[0].psk
    pos, rrp = move(walk, mn)
    assert walk.trace(pos) == INTRA_MOVE
    assert rrp is not None and rrp.accepted and rrp.lifetime == mn.conf.lifetime
    # the AAAF answered alone: no AMR reached the home AAA, no HAR was sent
    assert [(d.src, d.dst, d.name) for d in walk.diameter(pos)] == [
        ("fa:fa2", "aaaf:domain-a", "AMR"), ("aaaf:domain-a", "fa:fa2", "AMA")]
    assert walk.aaaf().counters == {"proxied": 1, "local": 1, "rejected": 0}
    amr = walk.diameter(pos)[0].msg
    assert (amr.previous_fa, amr.previous_fa_address, amr.foreign_agent) == (
        "fa1", FA1_COA, "fa2")
    ama = walk.diameter(pos)[1].msg
    assert ama.reg_reply == b""                         # the HA has not answered yet
    assert [t.tunnel_id for t in ama.vpn_info.tunnels] == [NEW]
    # issue 11: a fresh key for the re-pointed tunnel, derived from the session secret
    # and the move's RRQ; the old FA's key is not reused
    rrq = mip.decode(amr.reg_request)
    secret = walk.ha.bindings[NAI].secret
    assert ama.vpn_info.tunnels[0].psk == tunnel_psk(secret, NEW, rrq.identification)
    assert ama.vpn_info.tunnels[0].psk != issued
    assert ama.session_secret == b"" and ama.fa_mn_key is None     # never to an FA
    assert ama.fa_ha_key.session_key == fa_ha_key(secret, "fa2")
    (relay,) = walk.of_type(RelayToHomeAgent, pos)
    assert relay[1].home_agent_address == "10.0.0.1" and relay[1].nai == NAI


def test_ha_removes_old_tunnel_before_adding_new(walk: Walk, mn: MobileNode) -> None:
    pos, _ = move(walk, mn)
    ha_ops = [(type(a).__name__, getattr(a, "tunnel_id", None) or a.side.tunnel_id)
              for role, a in walk.of_type((AddTunnel, RemoveTunnel), pos) if role == "ha"]
    assert ha_ops == [("RemoveTunnel", OLD), ("AddTunnel", NEW)]
    assert walk.gateways.ids("ha") == {NEW, "static/ha-cngw"}
    assert walk.gateways.ids("fa1") == set() and walk.gateways.ids("fa2") == {NEW}
    assert walk.gateways.errors == []


def test_tunnel_repointed_with_fresh_psk(walk: Walk, mn: MobileNode) -> None:
    issued = walk.aaah.sessions[NAI].tunnels[0]
    assert issued.tunnel_id == OLD and len(issued.psk) == 32
    move(walk, mn)
    fa2 = walk.gateways.tunnels["fa2"][NEW]
    ha = walk.gateways.tunnels["ha"][NEW]
    assert fa2.initiator and not ha.initiator
    assert (fa2.local.address, fa2.remote.address) == (FA2_COA, "10.0.0.1")
    assert (ha.local.address, ha.remote.address) == ("10.0.0.1", FA2_COA)
    assert fa2.local.selectors == (f"{mn.conf.home_address}/32",)
    assert ha.local.selectors == issued.a.selectors
    assert fa2.psk == ha.psk != issued.psk      # issue 11 (was: the same PSK)
    # both caches were rewritten on their own, and agree
    aaaf_info = walk.aaaf().sessions[NAI].vpn_info
    ha_info = walk.ha.bindings[NAI].vpn_info
    assert (aaaf_info.foreign_agent, aaaf_info.previous_foreign_agent) == ("fa2", "fa1")
    assert ha_info.foreign_agent == "fa2"
    (aaaf_t,) = aaaf_info.tunnels
    ha_t = {t.tunnel_id: t for t in ha_info.tunnels}[NEW]
    assert aaaf_t == ha_t
    assert "static/ha-cngw" in {t.tunnel_id for t in ha_info.tunnels}


def test_ha_binding_points_at_fa2(walk: Walk, mn: MobileNode) -> None:
    first = walk.ha.bindings[NAI].identification
    move(walk, mn)
    binding = walk.ha.bindings[NAI]
    assert binding.care_of_address == FA2_COA and binding.foreign_agent == "fa2"
    assert binding.identification > first
    assert NAI not in walk.fa("fa1").visitors
    assert walk.fa("fa2").visitors[NAI].vpn_info.foreign_agent == "fa2"


def test_steering_moves_from_acc1_to_acc2(walk: Walk, mn: MobileNode) -> None:
    assert forwards(walk, "acc1", "fa1", mn) == [1]
    assert forwards(walk, "acc2", "fa2", mn) == []
    move(walk, mn)
    assert forwards(walk, "acc2", "fa2", mn) == [1]
    assert walk.table("acc2").lookup(1, walk.fa("fa2").conf.inside_mac, mn.mac,
                                     flows.ETH_IPV4, 6) == [mn.port]
    assert forwards(walk, "acc1", "fa1", mn) == []
    assert flows.mn_cookie(mn.mac) not in walk.table("acc1").cookies()


def test_move_back_and_forth_stays_local(walk: Walk, mn: MobileNode) -> None:
    move(walk, mn)
    walk.now += 2
    pos, rrp = move(walk, mn, to="fa1", previous="fa2")
    assert rrp is not None and rrp.accepted
    assert "aaaf:domain-a -> aaah AMR" not in walk.trace(pos)
    assert walk.gateways.ids("ha") == {OLD, "static/ha-cngw"}
    assert walk.gateways.ids("fa1") == {OLD} and walk.gateways.ids("fa2") == set()
    assert walk.ha.bindings[NAI].care_of_address == FA1_COA
    assert forwards(walk, "acc1", "fa1", mn) == [1] and forwards(walk, "acc2", "fa2", mn) == []
    # back at FA1 under a key neither the first registration nor FA2 ever had
    back = walk.gateways.tunnels["fa1"][OLD].psk
    assert back == walk.gateways.tunnels["ha"][OLD].psk
    assert back != walk.aaah.sessions[NAI].tunnels[0].psk
    assert walk.aaaf().counters["local"] == 2 and walk.gateways.errors == []


def test_replayed_move_denied_by_ha(walk: Walk, mn: MobileNode) -> None:
    """A replayed Identification is not answered locally (issue 11: the AAAF keeps the
    newest it accepted); the home path's HA refuses it (RFC 5944 §5.7)."""
    ident = walk.ha.bindings[NAI].identification
    pos, rrp = move(walk, mn, identification=ident)
    assert rrp is not None and rrp.code == mip.CODE_HA_IDENTIFICATION_MISMATCH
    assert "fa:fa2 -> ha RRQ" not in walk.trace(pos)
    assert walk.aaaf().home_because["replay"] == 1
    assert not walk.of_type((AddTunnel, RemoveTunnel), pos)
    assert walk.ha.bindings[NAI].care_of_address == FA1_COA
    assert forwards(walk, "acc1", "fa1", mn) == [1] and forwards(walk, "acc2", "fa2", mn) == []


# ------------------------------------------------------------------ not a local move


def test_previous_fa_never_served_goes_to_home_aaa() -> None:
    walk = Walk()
    mn = MobileNode(walk)
    pos, rrp = move(walk, mn, to="fa2", previous="fa1")     # first time the AAAF sees it
    assert rrp is not None and rrp.accepted
    trace = walk.trace(pos)
    assert "aaaf:domain-a -> aaah AMR" in trace and "aaah -> ha HAR" in trace
    assert not walk.of_type(RelayToHomeAgent, pos)
    assert walk.aaaf().counters["local"] == 0
    assert walk.gateways.ids("fa2") == {NEW} and walk.gateways.ids("fa1") == set()
    assert walk.gateways.errors == []


def test_previous_fa_outside_the_domain_goes_to_home_aaa(walk: Walk, mn: MobileNode) -> None:
    old_psk = walk.gateways.tunnels["ha"][OLD].psk
    pos, rrp = move(walk, mn, previous=None, previous_coa="10.0.0.99")
    assert rrp is not None and rrp.accepted
    assert walk.trace(pos)[:5] == [
        "mn -> fa:fa2 RRQ",
        "fa:fa2 -> aaaf:domain-a AMR",
        "aaaf:domain-a -> aaah AMR",
        "aaah -> ha HAR",
        f"ha RemoveTunnel ha {OLD}",
    ]
    assert walk.diameter(pos)[0].msg.previous_fa == ""
    assert walk.aaaf().counters["local"] == 0
    new_psk = walk.gateways.tunnels["ha"][NEW].psk
    assert new_psk != old_psk and walk.gateways.tunnels["fa2"][NEW].psk == new_psk
    assert walk.ha.bindings[NAI].care_of_address == FA2_COA


def test_stale_cache_goes_to_home_aaa(walk: Walk, mn: MobileNode) -> None:
    walk.now += walk.aaaf().session_lifetime + 1
    pos, rrp = move(walk, mn)
    assert "aaaf:domain-a -> aaah AMR" in walk.trace(pos)
    assert rrp is not None and rrp.accepted
    assert walk.gateways.ids("fa2") == {NEW} and walk.gateways.errors == []


def test_retry_after_denied_move_stays_local_from_confirmed_info(walk: Walk,
                                                                 mn: MobileNode) -> None:
    """A move the HA denies must not leave the AAAF ahead of the HA: the AAAF keeps the
    information it had before the move until the MN's next RRQ confirms which FA it is
    registered at (the MN names only the FA of its last accepted registration)."""
    confirmed = walk.aaaf().sessions[NAI].vpn_info
    _, rrp = move(walk, mn, ha_key=bytes(16))                # answered locally, HA: 131
    assert rrp is not None and rrp.code == mip.CODE_HA_MN_FAILED_AUTH
    session = walk.aaaf().sessions[NAI]
    assert session.previous == confirmed and session.previous.foreign_agent == "fa1"
    assert walk.ha.bindings[NAI].foreign_agent == "fa1"
    walk.now += 1
    pos, rrp = move(walk, mn)                # the MN still names FA1: the retry is local
    assert rrp is not None and rrp.accepted
    assert walk.trace(pos) == INTRA_MOVE
    assert walk.ha.bindings[NAI].foreign_agent == "fa2"
    assert walk.gateways.ids("fa1") == set() and walk.gateways.ids("fa2") == {NEW}
    assert walk.gateways.tunnels["fa2"][NEW].psk == walk.gateways.tunnels["ha"][NEW].psk
    assert walk.aaaf().counters["local"] == 2 and walk.gateways.errors == []


def test_confirmed_move_drops_the_previous_info(walk: Walk, mn: MobileNode) -> None:
    move(walk, mn)
    assert walk.aaaf().sessions[NAI].previous.foreign_agent == "fa1"
    walk.now += 2
    pos, rrp = move(walk, mn, to="fa1", previous="fa2")   # names FA2: FA2 was right
    assert rrp is not None and rrp.accepted and "aaah -> ha HAR" not in walk.trace(pos)
    session = walk.aaaf().sessions[NAI]
    assert session.vpn_info.foreign_agent == "fa1" and session.previous.foreign_agent == "fa2"


# ------------------------------------------------------------------ MN-HA authentication


def test_forged_intra_move_is_refused(walk: Walk, mn: MobileNode) -> None:
    """An RRQ signed with wrong keys and a fresh identification: the AAAF answers
    locally (it carries an MN-HA extension), the HA checks it and refuses (131);
    nothing moves."""
    pos, rrp = move(walk, mn, key=bytes(16), ha_key=bytes(16))
    assert walk.trace(pos) == [
        "mn -> fa:fa2 RRQ",
        "fa:fa2 -> aaaf:domain-a AMR",
        "aaaf:domain-a -> fa:fa2 AMA",
        "fa:fa2 RelayToHomeAgent",
        "fa:fa2 -> ha RRQ",
        "ha -> fa:fa2 RRP 131",
        "fa:fa2 -> mn RRP 131",
    ]
    assert rrp is not None and rrp.code == mip.CODE_HA_MN_FAILED_AUTH
    assert walk.ha.bindings[NAI].foreign_agent == "fa1"
    assert not walk.of_type((AddTunnel, RemoveTunnel), pos)
    assert walk.gateways.ids("ha") == {OLD, "static/ha-cngw"}
    assert forwards(walk, "acc1", "fa1", mn) == [1] and forwards(walk, "acc2", "fa2", mn) == []
    # the denied move did not advance the AAAF: the genuine MN still moves locally
    walk.now += 1
    pos, rrp = move(walk, mn)
    assert rrp is not None and rrp.accepted and walk.trace(pos) == INTRA_MOVE


def test_move_without_mn_fa_goes_to_home_aaa(walk: Walk, mn: MobileNode) -> None:
    """Without MN-FA authentication the AAAF cannot check the RRQ (issue 11; an MN-HA
    extension it cannot verify no longer suffices): it sends it home, where the MN-AAA
    authenticator is checked (here: forged, 67)."""
    pos, rrp = move(walk, mn, key=bytes(16), mn_fa=None)
    assert walk.trace(pos) == [
        "mn -> fa:fa2 RRQ",
        "fa:fa2 -> aaaf:domain-a AMR",
        "aaaf:domain-a -> aaah AMR",
        "aaah -> aaaf:domain-a AMA",
        "aaaf:domain-a -> fa:fa2 AMA",
        "fa:fa2 -> mn RRP 67",
    ]
    assert rrp is not None and rrp.code == mip.CODE_FA_MN_FAILED_AUTH
    assert walk.ha.bindings[NAI].foreign_agent == "fa1"
    assert not walk.of_type((AddTunnel, RemoveTunnel), pos)


@pytest.mark.parametrize("kw", [{"ha_key": bytes(16)}, {"no_mn_ha": True}],
                         ids=["wrong-mn-ha-key", "no-mn-ha"])
def test_relayed_rrq_needs_mn_ha_at_the_ha(walk: Walk, mn: MobileNode, kw: dict) -> None:
    """The HA itself: a relayed RRQ without a valid MN-HA authenticator gets 131 (from
    a genuine FA: its FA-HA authenticator verifies)."""
    raw = mip.append_auth(mn.rrq("fa2", "fa1", **kw), mip.AuthKind.FA_HA,
                          mip_keys.FA_HA_SPI, fa_ha_key(walk.ha.bindings[NAI].secret, "fa2"))
    pos = walk.mark()
    reply = walk.execute("ha", walk.ha.on_registration_request(walk.now, raw))
    assert mip.decode(reply).code == mip.CODE_HA_MN_FAILED_AUTH
    assert walk.since(pos) == [] and walk.ha.bindings[NAI].foreign_agent == "fa1"
