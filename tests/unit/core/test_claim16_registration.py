"""Claim 16: first registration through FA1, walked message by message over the real
roles (every Diameter message through encode/decode, every MIPv4 message as bytes)."""

from __future__ import annotations

import pytest

from controller.core import flows
from controller.core.actions import AddTunnel, RemoveTunnel, SendFlows
from controller.proto import diameter as dia
from controller.proto import mip
from controller.proto import mip_keys
from tests.unit.harness import MobileNode, T0, Walk

NAI = "alice@home.example"
TUNNEL = "alice_home.example/ha-fa1"
STATIC = "static/ha-cngw"

FIRST_REGISTRATION = [
    "mn -> fa:fa1 RRQ",
    "fa:fa1 -> aaaf:domain-a AMR",
    "aaaf:domain-a -> aaah AMR",
    "aaah -> ha HAR",
    f"ha AddTunnel ha {TUNNEL}",
    "ha -> aaah HAA",
    "aaah -> aaaf:domain-a AMA",
    "aaaf:domain-a -> fa:fa1 AMA",
    # steering before the FA's tunnel end (the FA's first packet to the MN follows
    # the tunnel at once); both before the reply
    "fa:fa1 SendFlows acc1",
    f"fa:fa1 AddTunnel fa1 {TUNNEL} initiator",
    "fa:fa1 -> mn RRP 0",
]


@pytest.fixture
def walk() -> Walk:
    return Walk()


@pytest.fixture
def mn(walk: Walk) -> MobileNode:
    return MobileNode(walk)


def by_name(walk: Walk, name: str, src: str = "", pos: int = 0) -> list:
    return [d for d in walk.diameter(pos) if d.name == name and (not src or d.src == src)]


def mn_traffic(walk: Walk, switch: str, mn: MobileNode, port: int | None = None) -> list[int]:
    """Where an IPv4 packet from the MN to its FA's inside MAC goes at ``switch``."""
    fa_mac = walk.fa("fa1" if switch == "acc1" else "fa2").conf.inside_mac
    return walk.table(switch).lookup(mn.port if port is None else port, mn.mac, fa_mac,
                                     flows.ETH_IPV4, 6)


def punted(walk: Walk, switch: str, port: int, mac: str) -> bool:
    out = walk.table(switch).lookup(port, mac, flows.BROADCAST_MAC, flows.ETH_IPV4,
                                    flows.IPPROTO_UDP, mip.MIP_PORT)
    return out == [flows.OFPP_CONTROLLER]


# ------------------------------------------------------------------ the walk


def test_first_registration_exact_message_order(walk: Walk, mn: MobileNode) -> None:
    rrp = mn.register("fa1")
    assert walk.trace() == FIRST_REGISTRATION
    assert rrp is not None and rrp.accepted and rrp.code == mip.CODE_ACCEPTED
    assert rrp.home_address == mn.conf.home_address and rrp.lifetime == mn.conf.lifetime
    # the marks of one handover record, in the claim's order
    phases = [p for p in walk.trace(marks=True) if " Mark " in p]
    assert phases == ["fa:fa1 Mark rrq_at_fa", "aaaf:domain-a Mark aaaf_proxy",
                      "aaah Mark aaah_authenticated", "ha Mark ha_bind",
                      "ha Mark ha_tunnel_set", "ha Mark haa_sent", "aaah Mark aaah_answer",
                      "fa:fa1 Mark ama_at_fa", "fa:fa1 Mark fa_setup",
                      "fa:fa1 Mark flows_installed", "fa:fa1 Mark tunnel_up",
                      "fa:fa1 Mark rrp_sent"]


def test_every_diameter_message_is_wire_valid(walk: Walk, mn: MobileNode) -> None:
    mn.register("fa1")
    sent = walk.diameter()
    assert [d.name for d in sent] == ["AMR", "AMR", "HAR", "HAA", "AMA", "AMA"]
    for d in sent:
        assert dia.decode(d.wire) == d.msg
        assert dia.parse_header(d.wire).application_id == dia.MIP4_APPLICATION_ID
        codes = {code for code, _flags, vendor in dia.walk_avp_codes(d.wire) if vendor == 0}
        assert not codes & dia.FORBIDDEN_AVP_CODES
    amr_fa, amr_aaaf = by_name(walk, "AMR")
    assert amr_fa.msg.reg_request == amr_aaaf.msg.reg_request   # the MN's bytes, untouched
    assert amr_fa.msg.originating_foreign_aaa is None
    assert amr_aaaf.msg.originating_foreign_aaa == ("a.example", "aaaf.a.example")
    assert amr_fa.msg.foreign_agent == "fa1" and amr_fa.msg.user_name == NAI
    assert all(d.msg.result_code == dia.SUCCESS for d in sent if d.name in ("HAA", "AMA"))


def test_fa_receives_only_tunnels_it_ends(walk: Walk, mn: MobileNode) -> None:
    mn.register("fa1")
    for ama in by_name(walk, "AMA"):          # AAAH -> AAAF and AAAF -> FA
        info = ama.msg.vpn_info
        assert info is not None and info.foreign_agent == "fa1"
        assert [t.tunnel_id for t in info.tunnels] == [TUNNEL]
        assert all("fa1" in t.ends() for t in info.tunnels)
        assert not any("cngw" in t.ends() for t in info.tunnels)
    # the AMA's wire bytes carry no PSK but the HA<->FA1 one
    ama_to_fa = by_name(walk, "AMA", src="aaaf:domain-a")[0]
    static_psk = walk.gateways.tunnels["ha"][STATIC].psk
    assert static_psk not in ama_to_fa.wire
    assert walk.gateways.tunnels["fa1"][TUNNEL].psk in ama_to_fa.wire


def test_har_carries_ha_fa_tunnel_with_32_byte_psk(walk: Walk, mn: MobileNode) -> None:
    mn.register("fa1")
    (har,) = by_name(walk, "HAR")
    info = har.msg.vpn_info
    tunnels = {t.tunnel_id: t for t in info.tunnels}
    assert set(tunnels) == {TUNNEL, STATIC}        # the HA keeps its CN-GW path
    ha_fa = tunnels[TUNNEL]
    assert len(ha_fa.psk) == 32
    assert ha_fa.ends() == ("ha", "fa1") and ha_fa.initiator == "fa1"
    assert ha_fa.b.selectors == (f"{mn.conf.home_address}/32",)
    assert ha_fa.a.selectors == ("10.30.0.0/24",)
    assert tunnels[STATIC].psk == b""              # stationary key is not repeated
    # both ends hold the same key; the FA initiates, the HA waits
    ha_side = walk.gateways.tunnels["ha"][TUNNEL]
    fa_side = walk.gateways.tunnels["fa1"][TUNNEL]
    assert ha_side.psk == fa_side.psk == ha_fa.psk
    assert fa_side.initiator and not ha_side.initiator
    assert (ha_side.remote.address, fa_side.remote.address) == ("10.0.0.11", "10.0.0.1")


def test_psk_differs_per_registration(walk: Walk, mn: MobileNode) -> None:
    mn.register("fa1")
    first = walk.gateways.tunnels["fa1"][TUNNEL].psk
    walk.now += 10
    pos = walk.mark()
    assert mn.register("fa1").accepted         # renewal: full path again, fresh key
    second = walk.gateways.tunnels["fa1"][TUNNEL].psk
    assert first != second and len(second) == 32
    assert walk.gateways.tunnels["ha"][TUNNEL].psk == second
    assert not walk.of_type(RemoveTunnel, pos)     # same tunnel id: re-keyed in place
    other = Walk()
    MobileNode(other).register("fa1")
    assert other.gateways.tunnels["fa1"][TUNNEL].psk not in (first, second)
    assert other.gateways.tunnels["ha"][STATIC].psk != walk.gateways.tunnels["ha"][STATIC].psk


def test_aaa_caches_hold_vpn_info(walk: Walk, mn: MobileNode) -> None:
    mn.register("fa1")
    full = walk.aaah.sessions[NAI]
    assert {t.tunnel_id for t in full.tunnels} == {TUNNEL, STATIC}
    cached = walk.aaaf().sessions[NAI]
    assert cached.home_realm == "home.example" and cached.expires > walk.now
    assert cached.vpn_info.foreign_agent == "fa1"
    assert [t.tunnel_id for t in cached.vpn_info.tunnels] == [TUNNEL]
    psk = walk.gateways.tunnels["fa1"][TUNNEL].psk
    assert cached.vpn_info.tunnels[0].psk == psk
    assert full.tunnels[0].psk == psk
    binding = walk.ha.bindings[NAI]
    assert binding.care_of_address == "10.0.0.11" and binding.foreign_agent == "fa1"
    assert walk.fa("fa1").visitors[NAI].port == mn.port


def test_acc1_forwards_mn_only_after_reply(walk: Walk, mn: MobileNode) -> None:
    fa = walk.fa("fa1")
    for port in (2, 3, 7):
        assert punted(walk, "acc1", port, mn.mac)
    assert mn_traffic(walk, "acc1", mn) == []
    assert walk.table("acc1").lookup(fa.conf.fa_port, fa.conf.inside_mac, mn.mac,
                                     flows.ETH_IPV4, 6) == []
    mn.register("fa1")
    # the flows were installed before the reply went out
    trace = walk.trace()
    assert trace.index("fa:fa1 SendFlows acc1") < trace.index("fa:fa1 -> mn RRP 0")
    assert mn_traffic(walk, "acc1", mn) == [fa.conf.fa_port]
    assert walk.table("acc1").lookup(fa.conf.fa_port, fa.conf.inside_mac, mn.mac,
                                     flows.ETH_IPV4, 6) == [mn.port]
    assert mn_traffic(walk, "acc1", mn, port=3) == []      # only from the MN's port
    for port in (2, 3, 7):                                  # signalling still punted
        assert punted(walk, "acc1", port, mn.mac)
        assert punted(walk, "acc1", port, "02:00:00:00:99:99")
    assert mn_traffic(walk, "acc2", mn) == []


# ------------------------------------------------------------------ denials


def assert_nothing_set_up(walk: Walk, pos: int, mn: MobileNode) -> None:
    assert not walk.of_type(AddTunnel, pos)
    assert not walk.of_type(SendFlows, pos)
    assert walk.gateways.history == []
    assert mn_traffic(walk, "acc1", mn) == []
    assert NAI not in walk.ha.bindings and NAI not in walk.aaaf().sessions


@pytest.mark.parametrize("kw", [{"key": bytes(16)}, {"nai": "bob@home.example"}],
                         ids=["wrong-mn-aaa-key", "unknown-nai"])
def test_authentication_rejected(walk: Walk, mn: MobileNode, kw: dict) -> None:
    rrp = mn.register("fa1", **kw)
    assert walk.trace() == [
        "mn -> fa:fa1 RRQ",
        "fa:fa1 -> aaaf:domain-a AMR",
        "aaaf:domain-a -> aaah AMR",
        "aaah -> aaaf:domain-a AMA",
        "aaaf:domain-a -> fa:fa1 AMA",
        "fa:fa1 -> mn RRP 67",
    ]
    assert [d.msg.result_code for d in by_name(walk, "AMA")] == [4001, 4001]
    assert all(d.msg.vpn_info is None for d in by_name(walk, "AMA"))
    assert rrp is not None and rrp.code == mip.CODE_FA_MN_FAILED_AUTH and not rrp.accepted
    assert walk.aaah.counters["rejected"] == 1
    assert_nothing_set_up(walk, 0, mn)


def test_missing_nai_denied_without_diameter(walk: Walk, mn: MobileNode) -> None:
    walk.mn_sends_rrq("fa1", mn.rrq_without_nai("fa1"), mn.mac, mn.port)
    assert walk.trace() == ["mn -> fa:fa1 RRQ", "fa:fa1 -> mn RRP 97"]
    assert walk.diameter() == []
    (rrp,) = walk.replies_to_mn()
    assert rrp.code == mip.CODE_FA_MISSING_NAI
    assert_nothing_set_up(walk, 0, mn)


@pytest.mark.parametrize("delta", [0, -1, -(1 << 32)], ids=["same", "older", "1s-older"])
def test_replayed_identification_denied_by_ha(walk: Walk, mn: MobileNode,
                                              delta: int) -> None:
    ident = mn.identification()
    assert mn.register("fa1", identification=ident).accepted
    # within IN_PROGRESS_HOLD the FA itself drops a repeat as a retransmission
    walk.now += 1
    assert mn.register("fa1", identification=ident + delta) is None
    walk.now += 3  # past the FA's hold, still inside the HA's 7 s replay window
    pos = walk.mark()
    rrp = mn.register("fa1", identification=ident + delta)
    assert rrp is not None and rrp.code == mip.CODE_HA_IDENTIFICATION_MISMATCH
    assert walk.trace(pos) == [
        "mn -> fa:fa1 RRQ",
        "fa:fa1 -> aaaf:domain-a AMR",
        "aaaf:domain-a -> aaah AMR",
        "aaah -> ha HAR",
        "ha -> aaah HAA",
        "aaah -> aaaf:domain-a AMA",
        "aaaf:domain-a -> fa:fa1 AMA",
        "fa:fa1 -> mn RRP 133",
    ]
    assert by_name(walk, "HAA", pos=pos)[0].msg.result_code == dia.ERROR_MIP_REPLY_FAILURE
    # the reply tells the MN the HA's clock (high 32 bits), keeps its low 32 bits
    assert rrp.identification >> 32 == mip.ntp_identification(walk.now) >> 32
    assert rrp.identification & 0xFFFFFFFF == (ident + delta) & 0xFFFFFFFF
    assert not walk.of_type(AddTunnel, pos) and not walk.of_type(SendFlows, pos)
    assert walk.ha.bindings[NAI].identification == ident     # first binding intact


def test_stale_identification_outside_replay_window(walk: Walk, mn: MobileNode) -> None:
    rrp = mn.register("fa1", identification=mip.ntp_identification(T0 - 60))
    assert rrp is not None and rrp.code == mip.CODE_HA_IDENTIFICATION_MISMATCH
    assert_nothing_set_up(walk, 0, mn)


@pytest.mark.parametrize("raw", [b"", b"\x01", b"\x01" + bytes(10), b"\xff" * 30,
                                 b"\x01" + bytes(23) + b"\x07\x09abc"],
                         ids=["empty", "one-byte", "truncated", "bad-type", "bad-ext"])
def test_malformed_bytes_counted_no_action(walk: Walk, mn: MobileNode, raw: bytes) -> None:
    walk.mn_sends_rrq("fa1", raw, mn.mac, mn.port)
    assert walk.trace() == ["mn -> fa:fa1 MIP?"]          # undecodable, nothing follows
    assert len(walk.log) == 1
    assert walk.fa("fa1").counters["malformed"] == 1


def test_reply_bytes_at_fa_are_malformed_request(walk: Walk, mn: MobileNode) -> None:
    rrp = mip.encode(mip.RegistrationReply(0, 300, mn.conf.home_address, "10.0.0.1", 1))
    walk.mn_sends_rrq("fa1", rrp, mn.mac, mn.port)
    assert len(walk.log) == 1 and walk.fa("fa1").counters["malformed"] == 1


def test_rrq_from_fa_port_is_not_handled(walk: Walk, mn: MobileNode) -> None:
    walk.mn_sends_rrq("fa1", mn.rrq("fa1"), mn.mac, walk.fa("fa1").conf.fa_port)
    assert walk.log == [] and walk.counters["dropped_rrq"] == 1


# ------------------------------------------------------------------ MN-HA authentication


@pytest.mark.parametrize("kw", [{"ha_key": bytes(16)}, {"no_mn_ha": True}],
                         ids=["wrong-mn-ha-key", "no-mn-ha"])
def test_mn_ha_authentication_failure_denied_by_ha(walk: Walk, mn: MobileNode,
                                                   kw: dict) -> None:
    """The user has an MN-HA key: the HA requires a valid MN-HA authenticator even on
    the AAA path (MN-AAA was fine): 131, nothing set up anywhere."""
    rrp = mn.register("fa1", **kw)
    assert walk.trace() == [
        "mn -> fa:fa1 RRQ",
        "fa:fa1 -> aaaf:domain-a AMR",
        "aaaf:domain-a -> aaah AMR",
        "aaah -> ha HAR",
        "ha -> aaah HAA",
        "aaah -> aaaf:domain-a AMA",
        "aaaf:domain-a -> fa:fa1 AMA",
        "fa:fa1 -> mn RRP 131",
    ]
    assert rrp is not None and rrp.code == mip.CODE_HA_MN_FAILED_AUTH
    assert walk.ha.counters["denied"] == 1
    assert_nothing_set_up(walk, 0, mn)


def test_rrq_extension_order_and_reply_authenticated(walk: Walk, mn: MobileNode) -> None:
    """RFC 5944 §3.6.1.3 order: NAI, MN-HA, MN-AAA; the HA's reply carries MN-HA auth
    the MN can verify."""
    raw = mn.rrq("fa1", "fa2")
    msg = mip.decode(raw)
    assert [type(e) for e in msg.extensions] == [mip.NaiExtension, mip.CriticalVendorExtension,
                                                 mip.MnHaAuth, mip.GeneralizedAuth]
    assert mip.verify_auth(raw, mip.AuthKind.MN_HA, mn.conf.mn_ha_key)
    assert mip.verify_auth(raw, mip.AuthKind.MN_AAA, mn.conf.mn_aaa_key)
    mn.register("fa1")
    (reply,) = [i for _r, i in walk.log if getattr(i, "dst", "") == "mn"]
    assert mip.verify_auth(reply.raw, mip.AuthKind.MN_HA, mn.conf.mn_ha_key)
    # issue 11: the FA appends the MN's MN-FA key generation nonce after the HA's part
    assert isinstance(reply.msg.extensions[-2], mip.MnHaAuth)
    nonce = mip_keys.nonce_reply(reply.msg)
    assert nonce is not None and nonce.spi == mip_keys.MN_FA_SPI
    # ... and the MN's next RRQ ends with MN-FA authentication under the derived key
    raw = mn.rrq("fa2", "fa1")
    assert [type(e) for e in mip.decode(raw).extensions][-2:] == [mip.GeneralizedAuth,
                                                                  mip.MnFaAuth]
    key = mip_keys.mn_fa_key(mn.conf.mn_aaa_key, nonce.nonce, mn.conf.nai)
    assert mip_keys.verify_mn_fa(raw, mip_keys.MN_FA_SPI, key)
    assert walk.aaaf().sessions[mn.conf.nai].mn_fa_key == key


def test_user_without_mn_ha_key_registers_through_aaa() -> None:
    from tests.unit.harness import DEFAULT_TOPOLOGY, topology
    walk = Walk(topology(DEFAULT_TOPOLOGY, mn_ha=False))
    mn = MobileNode(walk)
    assert mn.config.ha_key is None
    assert mn.register("fa1").accepted
    assert walk.trace() == FIRST_REGISTRATION
    walk.now += 2
    pos = walk.mark()
    assert mn.register("fa2", "fa1").accepted      # no MN-HA: the move goes home
    assert "aaah -> ha HAR" in walk.trace(pos) and walk.aaaf().counters["local"] == 0
