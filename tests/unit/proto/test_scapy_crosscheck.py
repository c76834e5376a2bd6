"""Our wire bytes as scapy (an implementation we did not write) sees them.

Complements the scapy checks in test_mip_codec.py (fixed RRQ/RRP fields): here the RRQ
exactly as the mobile node builds it (extensions included, byte-literal with the RFC
layouts), the flag bit positions against scapy's names, and the Diameter messages
(AMR/AMA/HAR/HAA, CER/CEA, DWR/DWA) parsed by ``scapy.contrib.diameter`` with no raw
leftovers — and the reverse: messages built by scapy decoded by our codec.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from controller.proto import diameter as d
from controller.proto import mip
from tests.unit.proto.test_diameter_codec import AMA, AMR, BASE, HAA, HAR

scapy_mip = pytest.importorskip("scapy.layers.mobileip")
sd = pytest.importorskip("scapy.contrib.diameter")
from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.packet import Raw  # noqa: E402

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")

# ------------------------------------------------------------------ Mobile IPv4


def _mn_rrq(previous_coa: str | None) -> bytes:
    from mininet_scripts.mn_state import Agent, MnConfig, MobileNodeState
    cfg = MnConfig(nai="alice@home.example", home_address="10.10.0.100",
                   home_agent="10.0.0.1", spi=300, key=KEY, lifetime=300)
    state = MobileNodeState(cfg)
    agent = Agent(router_address="10.22.0.1", care_of_address="10.0.0.12",
                  registration_lifetime=1800, mac="02:00:00:00:22:01")
    return state.build_rrq(agent, 0xEEB3CD44403A90F3, previous_coa, 300)


def test_mn_rrq_equals_scapy_plus_rfc_extensions() -> None:
    """The RRQ of a move, as the MN sends it, = scapy's RRQ + extensions laid out per
    RFC 2794 (NAI), RFC 3115 (CVSE), RFC 3012 (MN-AAA)."""
    ours = _mn_rrq("10.0.0.11")
    exts = bytes.fromhex(
        # MN-NAI (RFC 2794 §2): Type=131 Length=18 "alice@home.example"
        "83" "12" + b"alice@home.example".hex()
        # CVSE (RFC 3115 §2): Type=38 Reserved=0 Length(16)=10 Vendor/Org-ID=32473
        #   CVSE-Type=1 (mipvpn: previous FA care-of address) Value=10.0.0.11
        + "26" "00" "000a" "00007ed9" "0001" "0a00000b"
        # MN-AAA (RFC 3012 §6): Type=36 Subtype=1 Length(16)=20 SPI=300, then 16 bytes
        + "24" "01" "0014" "0000012c")
    theirs = bytes(scapy_mip.MobileIP(type=1) / scapy_mip.MobileIPRRQ(
        flags=0x02, lifetime=300, homeaddr="10.10.0.100", haaddr="10.0.0.1",
        coaddr="10.0.0.12", id=0xEEB3CD44403A90F3) / Raw(exts))
    assert ours[:-16] == theirs
    assert mip.verify_auth(ours, mip.AuthKind.MN_AAA, KEY)
    # scapy, from an IP/UDP 434 datagram: fixed part parsed, extensions left as payload
    pkt = IP(bytes(IP(src="10.10.0.100", dst="255.255.255.255") / UDP(sport=434, dport=434)
                   / ours))
    rrq = pkt[scapy_mip.MobileIPRRQ]
    assert (rrq.flags, rrq.lifetime, rrq.homeaddr, rrq.haaddr, rrq.coaddr, rrq.id) == (
        0x02, 300, "10.10.0.100", "10.0.0.1", "10.0.0.12", 0xEEB3CD44403A90F3)
    assert bytes(rrq.payload) == exts + ours[-16:]
    assert pkt[UDP].len == 8 + len(ours)


def test_mn_rrq_with_mn_ha_auth_in_rfc_order() -> None:
    """With an MN-HA key: NAI, MN-HA (RFC 5944 §3.5.2: Type=32 Length=20 SPI), then
    MN-AAA (RFC 3012 §6) last, each HMAC-MD5 over everything before its authenticator."""
    from mininet_scripts.mn_state import Agent, MnConfig, MobileNodeState
    ha_key = bytes(range(16, 32))
    cfg = MnConfig(nai="alice@home.example", home_address="10.10.0.100",
                   home_agent="10.0.0.1", spi=300, key=KEY, lifetime=300,
                   ha_spi=400, ha_key=ha_key)
    agent = Agent(router_address="10.21.0.1", care_of_address="10.0.0.11",
                  registration_lifetime=1800, mac="02:00:00:00:21:01")
    ours = MobileNodeState(cfg).build_rrq(agent, 7, None, 300)
    fixed = bytes(scapy_mip.MobileIP(type=1) / scapy_mip.MobileIPRRQ(
        flags=0x02, lifetime=300, homeaddr="10.10.0.100", haaddr="10.0.0.1",
        coaddr="10.0.0.11", id=7))
    nai = bytes.fromhex("8312") + b"alice@home.example"
    mn_ha_head = bytes.fromhex("2014" "00000190")          # Type 32, Length 20, SPI 400
    mn_aaa_head = bytes.fromhex("2401" "0014" "0000012c")  # Type 36/1, Length 20, SPI 300
    assert ours[:len(fixed)] == fixed
    off = len(fixed) + len(nai)
    assert ours[len(fixed):off] == nai
    assert ours[off:off + 6] == mn_ha_head
    assert ours[off + 22:off + 30] == mn_aaa_head and len(ours) == off + 46
    assert mip.verify_auth(ours, mip.AuthKind.MN_HA, ha_key)
    assert mip.verify_auth(ours, mip.AuthKind.MN_AAA, KEY)


def test_first_rrq_has_no_vendor_extension() -> None:
    ours = _mn_rrq(None)
    msg = mip.decode(ours)
    assert isinstance(msg, mip.RegistrationRequest)
    assert [type(e).__name__ for e in msg.extensions] == ["NaiExtension", "GeneralizedAuth"]
    parsed = scapy_mip.MobileIP(ours)
    assert parsed.type == 1 and parsed[scapy_mip.MobileIPRRQ].coaddr == "10.0.0.12"


@pytest.mark.parametrize("flag,bit", [
    (mip.FLAG_S, 7), (mip.FLAG_B, 6), (mip.FLAG_D, 5), (mip.FLAG_M, 4), (mip.FLAG_G, 3),
    (mip.FLAG_r, 2), (mip.FLAG_T, 1), (mip.FLAG_x, 0)])
def test_rrq_flag_bits_one_at_a_time(flag: int, bit: int) -> None:
    """RFC 5944 §3.3 order S B D M G r T x, most significant first; scapy agrees byte
    for byte with each single flag set."""
    assert flag == 1 << bit
    ours = mip.encode(mip.RegistrationRequest(flag, 1, "192.0.2.1", "192.0.2.2",
                                              "192.0.2.3", 5))
    theirs = bytes(scapy_mip.MobileIP(type=1) / scapy_mip.MobileIPRRQ(
        flags=1 << bit, lifetime=1, homeaddr="192.0.2.1", haaddr="192.0.2.2",
        coaddr="192.0.2.3", id=5))
    assert ours == theirs


def test_fa_denial_rrp_parsed_by_scapy() -> None:
    """An FA's denial (RFC 5944 §3.4, code 67, no extensions) and an HA's reply with
    MN-HA auth (Type 32, Length 20, SPI, HMAC-MD5): scapy reads the fixed part and leaves
    exactly the extension bytes."""
    deny = mip.encode(mip.RegistrationReply(67, 0, "10.10.0.100", "10.0.0.1", 42))
    p = scapy_mip.MobileIP(deny)
    assert p.type == 3 and p[scapy_mip.MobileIPRRP].code == 67
    assert not p[scapy_mip.MobileIPRRP].payload
    ok = mip.append_auth(mip.encode(mip.RegistrationReply(0, 300, "10.10.0.100", "10.0.0.1",
                                                          43)), mip.AuthKind.MN_HA, 256, KEY)
    rrp = scapy_mip.MobileIP(ok)[scapy_mip.MobileIPRRP]
    assert (rrp.code, rrp.lifetime, rrp.id) == (0, 300, 43)
    assert bytes(rrp.payload)[:6] == bytes.fromhex("2014" "00000100")


# ------------------------------------------------------------------ Diameter

_SCAPY_TYPE = {"Grouped": "Grouped", "UTF8String": "StrLenField", "Address": "Address",
               "OctetString": "OctetString", "Unsigned32": "Unsigned32"}


@pytest.fixture()
def scapy_knows_our_vendor() -> Iterator[None]:
    """Teach scapy our vendor AVPs (from the codec's table) so that it descends into
    our grouped AVPs too; removed afterwards."""
    table = {}
    for code, (name, cls) in d.VENDOR_AVPS.items():
        kind = cls.__name__.replace("Avp", "").replace("Utf8String", "UTF8String")
        scapy_cls = getattr(sd, f"AVPV_{_SCAPY_TYPE[kind]}")
        table[code] = (name, scapy_cls, 0x80)
    assert d.VENDOR_ID not in sd.AvpDefDict
    sd.AvpDefDict[d.VENDOR_ID] = table
    try:
        yield
    finally:
        del sd.AvpDefDict[d.VENDOR_ID]


def _walk(avps: list, depth: int = 0) -> Iterator[tuple[int, int, int, object]]:
    """(code, vendor, depth, scapy AVP) for every AVP, descending into grouped ones;
    fails on anything scapy could not place: an unknown AVP, or bytes after an AVP other
    than its zero padding to 4 bytes (scapy keeps the padding as the AVP's payload)."""
    for a in avps:
        assert not isinstance(a, sd.AVP_Unknown), f"scapy: unknown AVP {a.avpCode}"
        assert bytes(a.payload) == b"\0" * (-a.avpLen % 4), (a.avpCode, a.payload)
        vendor = getattr(a, "avpVnd", 0) or 0
        yield a.avpCode, vendor, depth, a
        if isinstance(a.val, list):
            yield from _walk(a.val, depth + 1)


def _parse(data: bytes) -> tuple[object, list[tuple[int, int, int, object]]]:
    pkt = sd.DiamG(data)
    assert len(pkt) == len(data) and bytes(pkt) == data    # whole message, rebuilt equal
    assert not pkt.payload, f"leftover after the AVPs: {pkt.payload!r}"
    return pkt, list(_walk(pkt.avpList))


@pytest.mark.parametrize("msg,code,flags", [(AMR, 260, 0xC0), (AMA, 260, 0x40),
                                            (HAR, 262, 0xC0), (HAA, 262, 0x40)],
                         ids=["AMR", "AMA", "HAR", "HAA"])
def test_scapy_parses_our_mip_messages(scapy_knows_our_vendor: None, msg: object, code: int,
                                       flags: int) -> None:
    data = d.encode(msg)  # type: ignore[arg-type]
    pkt, avps = _parse(data)
    assert (pkt.version, pkt.drCode, pkt.drAppId, int(pkt.drFlags)) == (1, code, 2, flags)
    assert (pkt.drHbHId, pkt.drEtEId) == (msg.hop_by_hop, msg.end_to_end)  # type: ignore
    # the same AVP tree, in the same order, as our own walker sees
    assert [(c, v) for c, v, _depth, _a in avps] == [
        (c, v) for c, _f, v in d.walk_avp_codes(data)]
    by_code = {(c, v): a for c, v, depth, a in avps if depth == 0}
    assert by_code[(263, 0)].val.decode() == msg.session_id  # type: ignore[attr-defined]
    assert by_code[(258, 0)].val == 2
    if isinstance(msg, (d.AmRequest, d.HaRequest)):
        assert by_code[(320, 0)].val == msg.reg_request           # MIP-Reg-Request
        assert by_code[(1, 0)].val.decode() == msg.user_name
    else:
        assert by_code[(268, 0)].val == msg.result_code            # type: ignore
        assert by_code[(321, 0)].val == msg.reg_reply              # type: ignore
    if isinstance(msg, d.AmRequest):
        auth = {a.avpCode: a.val for a in by_code[(322, 0)].val}   # MIP-MN-AAA-Auth
        assert auth == {341: msg.mn_aaa_spi, 338: msg.auth_input_length,
                        339: msg.authenticator_length, 340: msg.authenticator_offset}
        # RFC 4004 §7 names, as scapy's dictionary has them
        assert by_code[(322, 0)].name == "AVP MIP-MN-AAA-Auth"
    # Address AVPs: family 1 + IPv4, as scapy's Address type shows them
    for code, want in ((333, msg.home_address), (334, msg.home_agent_address)):  # type: ignore
        a = by_code[(code, 0)]
        assert a.get_field("val").i2repr(a, a.val) == want


def test_scapy_parses_vpn_info_group(scapy_knows_our_vendor: None) -> None:
    _pkt, avps = _parse(d.encode(AMA))
    names = [a.name for _c, v, _depth, a in avps if v == d.VENDOR_ID]
    assert names[:2] == ["AVP Mipvpn-VPN-Info", "AVP Mipvpn-NAI"]
    tunnel_ids = [a.val.decode() for c, v, _depth, a in avps
                  if (c, v) == (d.VA_TUNNEL_ID, d.VENDOR_ID)]
    assert tunnel_ids == [t.tunnel_id for t in AMA.vpn_info.tunnels]  # type: ignore[union-attr]
    flags = {int(a.avpFlags) for _c, v, _depth, a in avps if v == d.VENDOR_ID}
    assert flags == {0x80}      # V only: M=0, P=0 on every vendor AVP


def test_scapy_without_our_dictionary_still_frames_everything() -> None:
    """A peer that does not know our vendor still splits the message exactly: our vendor
    AVPs become scapy's AVP_Unknown with V=1, vendor 32473, M=0, and nothing is left over."""
    data = d.encode(AMA)
    pkt = sd.DiamG(data)
    assert bytes(pkt) == data and not pkt.payload
    unknown = [a for a in pkt.avpList if isinstance(a, sd.AVP_Unknown)]
    assert all(bytes(a.payload) == b"\0" * (-a.avpLen % 4) for a in pkt.avpList)
    assert unknown and all((a.avpCode, a.avpVnd, int(a.avpFlags)) == (1, 32473, 0x80)
                           for a in unknown)


@pytest.mark.parametrize("msg", BASE, ids=lambda m: type(m).__name__)
def test_scapy_parses_base_messages(msg: object) -> None:
    data = d.encode(msg)  # type: ignore[arg-type]
    pkt, avps = _parse(data)
    cmd = {d.Cer: 257, d.Cea: 257, d.Dwr: 280, d.Dwa: 280, d.Dpr: 282, d.Dpa: 282}
    assert (pkt.drCode, pkt.drAppId) == (cmd[type(msg)], 0)
    assert bool(int(pkt.drFlags) & 0x80) == isinstance(msg, d.REQUEST_TYPES)
    codes = {c for c, _v, _depth, _a in avps}
    assert {264, 296} <= codes
    if not isinstance(msg, d.REQUEST_TYPES):
        assert 268 in codes


def test_our_codec_decodes_scapy_built_amr() -> None:
    """The reverse direction: an AMR built by scapy (its own encoder, its own padding)
    decodes with our strict decoder to the same fields."""
    rrq = _mn_rrq(None)
    input_len, auth_len, auth_off = mip.mn_aaa_auth_offsets(rrq)
    amr = sd.DiamReq(
        "AA-Mobile-Node", drAppId=2, drHbHId=0x10, drEtEId=0x20,
        avpList=[
            sd.AVP("Session-Id", val="client.example;1;1"),
            sd.AVP("Auth-Application-Id", val=2),
            sd.AVP("User-Name", val="alice@home.example"),
            sd.AVP("Destination-Realm", val="home.example"),
            sd.AVP("Origin-Host", val="client.example"),
            sd.AVP("Origin-Realm", val="example"),
            sd.AVP("MIP-Reg-Request", val=rrq),
            sd.AVP("MIP-MN-AAA-Auth", val=[
                sd.AVP("MIP-MN-AAA-SPI", val=300),
                sd.AVP("MIP-Auth-Input-Data-Length", val=input_len),
                sd.AVP("MIP-Authenticator-Length", val=auth_len),
                sd.AVP("MIP-Authenticator-Offset", val=auth_off)]),
            sd.AVP("MIP-Mobile-Node-Address", val="10.10.0.100"),
            sd.AVP("MIP-Feature-Vector", val=4),
        ])
    data = bytes(amr)
    assert struct.unpack_from("!I", data, 4)[0] == (0xC0 << 24) | 260
    got = d.decode(data)
    assert isinstance(got, d.AmRequest)
    assert (got.session_id, got.user_name, got.destination_realm, got.reg_request,
            got.mn_aaa_spi, got.authenticator_offset, got.home_address,
            got.feature_vector) == ("client.example;1;1", "alice@home.example",
                                    "home.example", rrq, 300, auth_off, "10.10.0.100", 4)
    assert (got.hop_by_hop, got.end_to_end) == (0x10, 0x20)
