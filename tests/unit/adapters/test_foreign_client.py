"""Issue 18: Mobile IPv4 clients we did not write.

The pure parts: the FA answers at the request's UDP source port (and IP source
address) - relayed replies, its own denials, timeouts alike - and what the FA and the
HA answer each bad field (RFC 5944 §3.7-3.8, RFC 2794, 3012, 3024, 3115), with the
walk harness over the real roles.  Requests here are laid out byte by byte (struct +
HMAC-MD5), not with the MN client, so that any flag and extension can be set.
The same client against the running stack: tests/integration/test_foreign_client.py.
"""

from __future__ import annotations

import dataclasses
import asyncio
import hashlib
import hmac
import socket
import struct
from types import SimpleNamespace
from typing import Any

import pytest
from os_ken.lib.packet import ipv4, packet, udp
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.adapters import openflow
from controller.adapters.mip_transport import MipEndpoint
from controller.config import load_topology
from controller.core import conformance
from controller.core.vpn import fa_ha_key
from controller.proto import mip_keys
from controller.core.actions import AddTunnel, ReplyMip, SendFlows, SendToMobileNode
from controller.proto import diameter as dia
from controller.proto import mip
from tests.unit.harness import DEFAULT_TOPOLOGY, MobileNode, Walk, ip_packed

NAI = "alice@home.example"
PORT = 40434            # the client's ephemeral UDP port


@pytest.fixture
def walk() -> Walk:
    return Walk()


@pytest.fixture
def mn(walk: Walk) -> MobileNode:
    return MobileNode(walk)


def cvse(vendor: int, vtype: int, value: bytes = b"") -> bytes:
    """RFC 3115 §2: Type=38 Reserved Length(16) Vendor/Org-ID(32) CVSE-Type(16) Value."""
    return struct.pack("!BBHIH", 38, 0, 6 + len(value), vendor, vtype) + value


def request(walk: Walk, mn: MobileNode, fa: str = "fa1", *, flags: int = mip.FLAG_T,
            lifetime: int = 300, ident: int | None = None, home_agent: str | None = None,
            for_home: bytes = b"", for_fa: bytes = b"", ha_spi: int | None = None,
            aaa_spi: int | None = None) -> bytes:
    """fixed part | NAI | ``for_home`` | MN-HA | ``for_fa`` | MN-AAA (RFC 5944 §3.3,
    §3.5.2; RFC 2794; RFC 3012 §6), each authenticator HMAC-MD5 over what precedes it."""
    c = mn.config
    assert c.ha_key is not None and c.ha_spi is not None
    fixed = struct.pack("!BBH4s4s4sQ", mip.REGISTRATION_REQUEST, flags, lifetime,
                        ip_packed(c.home_address), ip_packed(home_agent or c.home_agent),
                        ip_packed(walk.topo.gateways[fa].core.ip),
                        mn.identification() if ident is None else ident)
    msg = fixed + struct.pack("!BB", 131, len(c.nai)) + c.nai.encode() + for_home
    msg += struct.pack("!BBI", 32, 20, c.ha_spi if ha_spi is None else ha_spi)
    msg += hmac.new(c.ha_key, msg, hashlib.md5).digest() + for_fa
    msg += struct.pack("!BBHI", 36, 1, 20, c.spi if aaa_spi is None else aaa_spi)
    return msg + hmac.new(c.key, msg, hashlib.md5).digest()


def move(walk: Walk, mn: MobileNode, fa: str = "fa2", previous: str = "fa1",
         **kw: Any) -> bytes:
    """A request at ``fa`` naming ``previous`` in our previous-FA CVSE: an intra-domain
    move the AAAF answers locally, the FA relays to the HA (claim 17)."""
    coa = ip_packed(walk.topo.gateways[previous].core.ip)
    raw = request(walk, mn, fa, for_home=cvse(mip.MIPVPN_VENDOR_ID, mip.CVSE_PREVIOUS_FA,
                                               coa), **kw)
    if mn.mn_fa is not None:   # issue 11: the AAAF answers locally only with MN-FA auth,
        # keyed from the nonce of the last accepted reply (RFC 3957); it comes last
        raw = mip.append_auth(raw, mip.AuthKind.MN_FA, *mn.mn_fa)
    return raw


def send(walk: Walk, mn: MobileNode, raw: bytes, fa: str = "fa1", src_port: int = PORT,
         src_ip: str = "") -> mip.RegistrationReply | None:
    pos = walk.mark()
    walk.mn_sends_rrq(fa, raw, mn.mac, mn.port, src_port=src_port, src_ip=src_ip)
    replies = walk.replies_to_mn(pos)
    assert len(replies) <= 1
    for _role, action in walk.of_type(SendToMobileNode, pos):   # every answer goes back
        assert action.udp_port == src_port, action
    if replies and replies[0] is not None and replies[0].accepted:
        nonce = mip_keys.nonce_reply(replies[0])
        if nonce is not None:    # the MN-FA key for its next moves, as the client does
            mn.mn_fa = (nonce.spi, mip_keys.mn_fa_key(mn.config.key, nonce.nonce,
                                                       mn.config.nai))
    return replies[0] if replies else None


# ------------------------------------------------------------------ the reply path


def test_punted_request_keeps_its_udp_source_port() -> None:
    frame = openflow.udp_frame("02:00:00:00:01:00", "ff:ff:ff:ff:ff:ff", "10.10.0.100",
                               "255.255.255.255", PORT, 434, b"\x01" + bytes(23))
    punted = openflow.parse_punted_mip(frame)
    assert punted is not None and (punted.src_ip, punted.src_port) == ("10.10.0.100", PORT)


def test_fa_keeps_the_source_in_its_pending_entry(walk: Walk, mn: MobileNode) -> None:
    fa = walk.fa("fa1")
    fa.on_registration_request(walk.now, request(walk, mn), mn.mac, mn.port,
                               src_port=PORT, src_ip="10.10.0.100")
    (pending,) = fa.pending.values()
    assert (pending.src_ip, pending.src_port) == ("10.10.0.100", PORT)


def test_accepted_reply_through_aaa_goes_to_the_source_port(walk: Walk,
                                                            mn: MobileNode) -> None:
    rrp = send(walk, mn, request(walk, mn))
    assert rrp is not None and rrp.code == 0
    ((_, out),) = walk.of_type(SendToMobileNode)
    assert (out.mn_ip, out.udp_port, out.port) == (mn.conf.home_address, PORT, mn.port)


def test_ha_reply_relayed_on_a_move_goes_to_the_source_port(walk: Walk,
                                                            mn: MobileNode) -> None:
    assert send(walk, mn, request(walk, mn)).code == 0
    walk.now += 5
    pos = walk.mark()
    rrp = send(walk, mn, move(walk, mn), "fa2", src_port=PORT + 1)
    assert rrp is not None and rrp.code == 0
    assert "fa:fa2 -> ha RRQ" in walk.trace(pos)     # claim 17: the FA relayed it


def test_timeouts_answered_at_the_source_port(walk: Walk, mn: MobileNode,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert send(walk, mn, request(walk, mn)).code == 0
    walk.now += 5
    monkeypatch.setattr(walk, "_relay_to_ha", lambda key, action: None)
    rrp = send(walk, mn, move(walk, mn), "fa2", src_port=PORT + 2)
    assert rrp is not None and rrp.code == mip.CODE_FA_REG_TIMEOUT            # 78
    monkeypatch.setattr(walk, "_diameter", lambda key, action: None)
    rrp = send(walk, mn, move(walk, mn), "fa2", src_port=PORT + 3)
    assert rrp is not None and rrp.code == mip.CODE_FA_HA_UNREACHABLE          # 88


@pytest.mark.parametrize("src_ip,expected", [
    ("", "10.10.0.100"), ("0.0.0.0", "10.10.0.100"), ("10.10.0.100", "10.10.0.100"),
    ("10.21.0.77", "10.21.0.77")])
def test_reply_goes_to_the_request_source_address(walk: Walk, mn: MobileNode, src_ip: str,
                                                  expected: str) -> None:
    send(walk, mn, request(walk, mn, lifetime=0xFFFF), src_ip=src_ip)
    ((_, out),) = walk.of_type(SendToMobileNode)
    assert out.mn_ip == expected
    assert conformance.reply_address("0.0.0.0", "0.0.0.0") == "255.255.255.255"


@pytest.fixture
def rt(tmp_path: Any) -> Any:
    from controller.runtime import Runtime
    r = Runtime(load_topology(DEFAULT_TOPOLOGY), tmp_path, ":memory:", rest=None,
                gateway_factory=lambda name: SimpleNamespace(), advertise=False,
                persist=False, flow_sink=lambda dpid, mods: None)
    msgs: list[Any] = []
    fa = r.fa("fa1")
    r.datapaths[fa.conf.access_dpid] = SimpleNamespace(
        ofproto_parser=parser, ofproto=ofp, id=fa.conf.access_dpid, send_msg=msgs.append)
    r.test = SimpleNamespace(msgs=msgs, fa=fa)
    yield r
    for ex in [*r._gw_exec.values(), r._watch_exec]:
        ex.shutdown(wait=False)
    r.loop.close()


def test_runtime_sends_the_reply_to_the_request_source_port(rt: Any) -> None:
    """Punted at the access switch from UDP port 40434 -> the packet-out's UDP
    destination port is 40434 (was always 434), from the FA's address and port 434."""
    walk = Walk()
    mn = MobileNode(walk)
    fa = rt.test.fa
    raw = request(walk, mn, lifetime=0xFFFF)          # denied by the FA at once: 69
    frame = openflow.udp_frame(mn.mac, "ff:ff:ff:ff:ff:ff", mn.conf.home_address,
                               "255.255.255.255", PORT, 434, raw)
    rt.packet_in(fa.conf.access_dpid, mn.port, frame)

    async def settle() -> None:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if rt.test.msgs and not rt._tasks:
                return
    rt.loop.run_until_complete(settle())
    (msg,) = rt.test.msgs
    assert msg.actions[0].port == mn.port
    pkt = packet.Packet(msg.data)
    ip, u = pkt.get_protocol(ipv4.ipv4), pkt.get_protocol(udp.udp)
    assert (ip.src, ip.dst) == (fa.conf.inside_address, mn.conf.home_address)
    assert (u.src_port, u.dst_port) == (434, PORT)
    rrp = mip.decode(pkt.protocols[-1])
    assert isinstance(rrp, mip.RegistrationReply) and rrp.code == 69


def test_agent_endpoint_answers_the_sender_address_and_port() -> None:
    """The HA's direct replies and binding messages between agents (mip_transport):
    the answer goes to the datagram's source address and port, whatever it is."""
    async def main() -> tuple[bytes, tuple[str, int], tuple[str, int]]:
        async def handler(data: bytes, addr: tuple[str, int]) -> bytes:
            return b"reply to " + data
        ep = await MipEndpoint.open("ha", handler, "127.0.0.1", 0)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_sendto(sock, b"rrq", ep.address)
            data, peer = await asyncio.wait_for(loop.sock_recvfrom(sock, 100), 2)
            return data, peer, sock.getsockname()
        finally:
            sock.close()
            ep.close()
    data, peer, _mine = asyncio.run(main())
    assert data == b"reply to rrq" and peer[1] != 0


# ------------------------------------------------------------------ the FA's denials


@pytest.mark.parametrize("flags,code", [
    (mip.FLAG_T | mip.FLAG_x, 70), (mip.FLAG_T | mip.FLAG_r, 70),
    (mip.FLAG_T | mip.FLAG_M, 72), (mip.FLAG_T | mip.FLAG_G, 72)],
    ids=["x-bit", "r-bit", "minimal-encapsulation", "gre"])
def test_fa_refuses_reserved_bits_and_other_encapsulations(walk: Walk, mn: MobileNode,
                                                           flags: int, code: int) -> None:
    ident = mn.identification()
    rrp = send(walk, mn, request(walk, mn, flags=flags, ident=ident))
    assert walk.trace() == ["mn -> fa:fa1 RRQ", f"fa:fa1 -> mn RRP {code}"]
    assert rrp is not None and rrp.code == code
    # RFC 5944 §3.7.2.3: Home Address, Home Agent, Identification copied
    assert (rrp.home_address, rrp.home_agent, rrp.identification) == (
        mn.conf.home_address, mn.config.home_agent, ident)


def test_lifetime_too_long_carries_the_fa_maximum(walk: Walk, mn: MobileNode) -> None:
    rrp = send(walk, mn, request(walk, mn, lifetime=0xFFFF))
    assert rrp is not None and rrp.code == mip.CODE_FA_LIFETIME_TOO_LONG
    assert rrp.lifetime == walk.fa("fa1").conf.max_lifetime == 1800
    assert walk.diameter() == []


def test_unknown_cvse_for_the_fa_refused_with_100(walk: Walk, mn: MobileNode) -> None:
    rrp = send(walk, mn, request(walk, mn, for_fa=cvse(9, 1, b"x")))
    assert rrp is not None and rrp.code == mip.CODE_FA_UNKNOWN_CVSE_FROM_MN
    assert walk.diameter() == []


def test_unknown_cvse_for_the_home_refused_by_the_ha_with_140(walk: Walk,
                                                             mn: MobileNode) -> None:
    rrp = send(walk, mn, request(walk, mn, for_home=cvse(9, 1, b"x")))
    assert rrp is not None and rrp.code == mip.CODE_HA_UNKNOWN_CVSE_FROM_MN
    assert walk.trace()[-2:] == ["aaaf:domain-a -> fa:fa1 AMA", "fa:fa1 -> mn RRP 140"]
    assert NAI not in walk.ha.bindings and not walk.of_type(AddTunnel)


def test_unknown_extension_0_127_silently_discarded(walk: Walk, mn: MobileNode) -> None:
    """IANA Mobile IPv4 Numbers (RFC 5944 §1.9): not answered, counted."""
    raw = request(walk, mn)
    raw = raw[:24] + b"\x63\x02ab" + raw[24:]          # type 99 after the fixed part
    assert send(walk, mn, raw) is None and walk.diameter() == []
    assert walk.fa("fa1").counters["unknown_extension"] == 1


def test_unknown_extension_128_255_skipped(walk: Walk, mn: MobileNode) -> None:
    rrp = send(walk, mn, request(walk, mn, for_home=b"\xc8\x03abc"))   # type 200
    assert rrp is not None and rrp.code == 0


def test_poorly_formed_extensions_answered_with_70(walk: Walk, mn: MobileNode) -> None:
    ident = mn.identification()
    raw = request(walk, mn, ident=ident)[:24] + b"\x83\x40alice"     # NAI overruns
    rrp = send(walk, mn, raw)
    assert rrp is not None and rrp.code == mip.CODE_FA_POORLY_FORMED_REQUEST
    assert rrp.identification == ident and rrp.home_address == mn.conf.home_address


def test_care_of_address_not_the_fas_refused_with_77(walk: Walk, mn: MobileNode) -> None:
    rrp = send(walk, mn, request(walk, mn, "fa2"))          # FA2's CoA, sent at FA1
    assert rrp is not None and rrp.code == 77 and walk.diameter() == []


def test_wrong_mn_aaa_spi_refused_with_67(walk: Walk, mn: MobileNode) -> None:
    """The right key under another SPI: the SPI names the association (RFC 3012 §6)."""
    rrp = send(walk, mn, request(walk, mn, aaa_spi=mn.config.spi + 1))
    assert rrp is not None and rrp.code == mip.CODE_FA_MN_FAILED_AUTH
    assert NAI not in walk.ha.bindings


def test_wrong_mn_ha_spi_refused_with_131(walk: Walk, mn: MobileNode) -> None:
    assert mn.config.ha_spi is not None
    rrp = send(walk, mn, request(walk, mn, ha_spi=mn.config.ha_spi + 1))
    assert rrp is not None and rrp.code == mip.CODE_HA_MN_FAILED_AUTH
    assert NAI not in walk.ha.bindings


def test_unknown_home_agent_refused_with_136_and_the_ha_address(walk: Walk,
                                                                mn: MobileNode) -> None:
    for home_agent in ("10.0.0.99", "255.255.255.255"):   # wrong, or discovery
        rrp = send(walk, mn, request(walk, mn, home_agent=home_agent))
        assert rrp is not None and rrp.code == mip.CODE_HA_UNKNOWN_HA_ADDRESS
        assert rrp.home_agent == walk.ha.address == "10.0.0.1"   # its unicast address
    assert NAI not in walk.ha.bindings


def test_stale_identification_answered_with_the_ha_clock(walk: Walk,
                                                         mn: MobileNode) -> None:
    ident = mip.ntp_identification(walk.now - 100) | 0x1234
    rrp = send(walk, mn, request(walk, mn, ident=ident))
    assert rrp is not None and rrp.code == mip.CODE_HA_IDENTIFICATION_MISMATCH
    assert rrp.identification >> 32 == mip.ntp_identification(walk.now) >> 32
    assert rrp.identification & 0xFFFFFFFF == ident & 0xFFFFFFFF


def test_ha_adjusts_the_lifetime(walk: Walk, mn: MobileNode) -> None:
    walk.ha.max_lifetime = 600
    rrp = send(walk, mn, request(walk, mn, lifetime=1000))
    assert rrp is not None and rrp.code == 0 and rrp.lifetime == 600
    assert walk.fa("fa1").visitors[NAI].lifetime == 600


def test_simultaneous_bindings_accepted_with_code_1(walk: Walk, mn: MobileNode) -> None:
    rrp = send(walk, mn, request(walk, mn, flags=mip.FLAG_T | mip.FLAG_S))
    assert rrp is not None and rrp.code == mip.CODE_ACCEPTED_NO_SIMULTANEOUS
    assert rrp.accepted and NAI in walk.fa("fa1").visitors


# ------------------------------------------------------------------ the HA's denials


@pytest.mark.parametrize("kw,code", [
    ({"flags": mip.FLAG_T | mip.FLAG_x}, 134), ({"flags": mip.FLAG_T | mip.FLAG_r}, 134),
    ({"flags": mip.FLAG_T | mip.FLAG_M}, 139), ({"flags": mip.FLAG_T | mip.FLAG_G}, 139),
    ({"for_home": cvse(9, 7)}, 140)],
    ids=["x-bit", "r-bit", "minimal-encapsulation", "gre", "unknown-cvse"])
def test_ha_refuses_what_its_fa_would_have(walk: Walk, mn: MobileNode, kw: dict,
                                           code: int) -> None:
    """A relayed request (claim 17 path) the HA gets without our FA's checks."""
    assert send(walk, mn, request(walk, mn)).code == 0
    walk.now += 5
    raw = mip.append_auth(request(walk, mn, "fa2", **kw), mip.AuthKind.FA_HA,  # issue 11
                          mip_keys.FA_HA_SPI, fa_ha_key(walk.ha.bindings[NAI].secret, "fa2"))
    actions = walk.ha.on_registration_request(walk.now, raw)
    (reply,) = [a for a in actions if isinstance(a, ReplyMip)]
    rrp = mip.decode(reply.raw)
    assert isinstance(rrp, mip.RegistrationReply) and rrp.code == code
    assert walk.ha.bindings[NAI].foreign_agent == "fa1"       # nothing changed


# ------------------------------------------------------------------ unmatched replies


def test_reply_matching_no_request_is_dropped_and_counted(walk: Walk,
                                                          mn: MobileNode) -> None:
    fa = walk.fa("fa1")
    rrp = mip.encode(mip.RegistrationReply(0, 300, mn.conf.home_address, "10.0.0.1", 1))
    assert fa.on_mip(walk.now, rrp, "ha") == []
    assert fa.counters["reply_unmatched"] == 1


@pytest.mark.parametrize("field", ["home_address", "identification"])
def test_ha_reply_for_another_request_is_dropped(walk: Walk, mn: MobileNode,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 field: str) -> None:
    assert send(walk, mn, request(walk, mn)).code == 0
    walk.now += 5
    real = walk._relay_to_ha

    def other(key: str, action: Any) -> bytes | None:
        raw = real(key, action)
        assert raw is not None
        rrp = mip.decode(raw)
        if field == "home_address":
            rrp.home_address = "10.10.0.200"
        else:
            rrp.identification += 1
        return mip.encode(rrp)
    monkeypatch.setattr(walk, "_relay_to_ha", other)
    pos = walk.mark()
    assert send(walk, mn, move(walk, mn), "fa2") is None
    fa2 = walk.fa("fa2")
    assert fa2.counters["reply_unmatched"] == 1 and NAI not in fa2.visitors
    assert not walk.of_type(SendFlows, pos) or all(r != "fa:fa2" for r, _ in
                                                   walk.of_type(SendFlows, pos))
    assert NAI not in fa2.in_progress          # the MN's retry is not held back


def test_ha_reply_that_does_not_decode_answered_with_71(
        walk: Walk, mn: MobileNode, monkeypatch: pytest.MonkeyPatch) -> None:
    assert send(walk, mn, request(walk, mn)).code == 0
    walk.now += 5
    monkeypatch.setattr(walk, "_relay_to_ha", lambda key, action: b"\x03\x00\x01")
    rrp = send(walk, mn, move(walk, mn), "fa2", src_port=PORT + 4)
    assert rrp is not None and rrp.code == mip.CODE_FA_POORLY_FORMED_REPLY
    assert NAI not in walk.fa("fa2").visitors


def test_ama_reply_for_another_request_is_dropped(walk: Walk, mn: MobileNode,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # the HA's reply, as it leaves the HA in its HAA, names another home address (the
    # seam is the walk's Diameter hop: the roles may be compiled, issue 15)
    real = walk._diameter
    swapped: list[int] = []

    def other_reply(key: str, action: Any) -> Any:
        answer = real(key, action)
        if isinstance(answer, dia.HaAnswer) and answer.reg_reply:
            rrp = mip.decode(answer.reg_reply)
            swapped.append(rrp.identification)
            answer = dataclasses.replace(answer, reg_reply=mip.encode(mip.RegistrationReply(
                rrp.code, 300, "10.10.0.200", "10.0.0.1", rrp.identification)))
        return answer
    monkeypatch.setattr(walk, "_diameter", other_reply)
    assert send(walk, mn, request(walk, mn)) is None
    assert len(swapped) == 1
    fa = walk.fa("fa1")
    assert fa.counters["reply_unmatched"] == 1 and NAI not in fa.visitors
    assert not [r for r, _ in walk.of_type(SendFlows) if r == "fa:fa1"]


def test_same_nai_from_elsewhere_is_not_a_retransmission(walk: Walk, mn: MobileNode) -> None:
    """Review of issue 11/18: the FA's retransmission hold was keyed by NAI alone, so an
    RRQ naming alice from another MAC (or a restarted client on another UDP port) was
    swallowed as a retransmission of hers.  Now only the same MN's tries are held."""
    raw = request(walk, mn)
    assert send(walk, mn, raw).code == 0
    fa = walk.fa("fa1")
    # the very same try again (same MAC, port, source): held as a retransmission
    assert send(walk, mn, raw) is None
    assert fa.counters["retransmit_suppressed"] == 1
    # the same NAI from another MAC, with a garbage authenticator: answered (denied)
    # at its own source, not silenced
    bad = bytearray(request(walk, mn))
    bad[-1] ^= 0xFF
    pos = walk.mark()
    walk.mn_sends_rrq("fa1", bytes(bad), "02:00:00:00:66:66", mn.port, src_port=PORT + 9)
    (reply,) = walk.replies_to_mn(pos)
    assert reply is not None and reply.code != 0
    assert fa.counters["retransmit_suppressed"] == 1
    # the real MN restarted on another UDP port: a new registration, answered there
    assert send(walk, mn, request(walk, mn), src_port=PORT + 10).code == 0
