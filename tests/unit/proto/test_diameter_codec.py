"""Diameter codec: round trips, byte-level checks, error mapping, forbidden codes."""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest
from diameter.message import Message

from controller.core.vpn import QosSpec, SecuritySpec, TunnelEnd, TunnelSpec, VpnInfo
from controller.proto import diameter as d
from controller.proto.diameter import decoding as dia_decoding
from controller.proto.diameter import encoding as dia_encoding
from controller.proto.diameter import (AmAnswer, AmRequest, Cea, Cer, DiameterDecodeError,
                                       Dpa, Dpr, Dwa, Dwr, HaAnswer, HaRequest, MsaKey,
                                       decode, encode)

HA = TunnelEnd("ha", "192.0.2.1", ("10.1.0.0/16", "10.9.0.5/32"))
FA = TunnelEnd("fa1", "198.51.100.7", ())
CNGW = TunnelEnd("cngw", "203.0.113.9", ("10.20.0.0/24",))

VPN = VpnInfo(
    nai="mn1@home.example", home_address="10.1.0.5", home_agent="ha", foreign_agent="fa1",
    tunnels=(
        TunnelSpec("mn1/ha-fa1", HA, FA, bytes(range(32)), SecuritySpec(),
                   QosSpec(1000, 46), initiator="fa1"),
        TunnelSpec("mn1/ha-cngw", HA, CNGW, b"\xff" * 32,
                   SecuritySpec("aes256-sha384-ecp384", "aes256gcm16")),
    ),
    previous_foreign_agent="fa0")

AMR = AmRequest(
    session_id="fa1.foreign.example;1;2", origin_host="fa1.foreign.example",
    origin_realm="foreign.example", destination_realm="home.example",
    user_name="mn1@home.example", reg_request=bytes(range(60)), mn_aaa_spi=300,
    auth_input_length=40, authenticator_length=16, authenticator_offset=44,
    home_address="10.1.0.5", home_agent_address="192.0.2.1", feature_vector=4 | 64,
    destination_host="aaah.home.example",
    originating_foreign_aaa=("foreign.example", "aaaf.foreign.example"),
    previous_fa_address="198.51.100.6", previous_fa="fa0", foreign_agent="fa1",
    service_update=True, hop_by_hop=0x1234, end_to_end=0x5678)

AMA = AmAnswer(
    session_id=AMR.session_id, result_code=2001, origin_host="aaah.home.example",
    origin_realm="home.example", user_name="mn1@home.example", reg_reply=b"\x03" * 20,
    home_address="10.1.0.5", home_agent_address="192.0.2.1", vpn_info=VPN,
    fa_ha_key=MsaKey(spi=400, session_key=b"K" * 20), hop_by_hop=1, end_to_end=2)

HAR = HaRequest(
    session_id="aaah.home.example;9;9", origin_host="aaah.home.example",
    origin_realm="home.example", destination_realm="home.example",
    destination_host="ha.home.example", user_name="mn1@home.example",
    reg_request=bytes(range(60)), authorization_lifetime=1800, auth_session_state=1,
    feature_vector=4, home_address="10.1.0.5", home_agent_address="192.0.2.1",
    vpn_info=VPN, ha_to_fa_key=MsaKey(spi=401, session_key=b"k" * 20),
    originating_foreign_aaa=("foreign.example", "aaaf.foreign.example"),
    hop_by_hop=3, end_to_end=4)

HAA = HaAnswer(
    session_id=HAR.session_id, result_code=2001, origin_host="ha.home.example",
    origin_realm="home.example", user_name="mn1@home.example", reg_reply=b"\x03" * 20,
    home_address="10.1.0.5", home_agent_address="192.0.2.1", vpn_info=VPN,
    hop_by_hop=3, end_to_end=4)

BASE = [Cer("a.example", "example", ("127.0.0.1",), hop_by_hop=7, end_to_end=8),
        Cea(2001, "b.example", "example", ("127.0.0.1",), hop_by_hop=7, end_to_end=8),
        Dwr("a.example", "example", 9, 10), Dwa(2001, "b.example", "example", 9, 10),
        Dpr("a.example", "example", 0, 11, 12), Dpa(2001, "b.example", "example", 11, 12)]

ALL = [AMR, AMA, HAR, HAA, *BASE]


@pytest.mark.parametrize("msg", ALL, ids=lambda m: type(m).__name__)
def test_round_trip(msg: object) -> None:
    assert decode(encode(msg)) == msg  # type: ignore[arg-type]


def test_round_trip_minimal_and_empty_fields() -> None:
    amr = AmRequest("s;1", "fa", "r1", "r2", "u@r2.example", b"\x01" * 28, 256, 20, 16, 28)
    assert decode(encode(amr)) == amr
    vi = VpnInfo("u@r2", "", "ha", "", ())
    ama = AmAnswer("s;1", 4001, "aaah", "r2", vpn_info=vi, error_message="bad auth")
    assert decode(encode(ama)) == ama
    t = TunnelSpec("x/ha-fa", TunnelEnd("ha", "", ()), TunnelEnd("fa", "2001:db8::1", ()),
                   b"")
    haa = HaAnswer("s;2", 2001, "ha", "r2", vpn_info=VpnInfo("u", "10.0.0.1", "ha", "fa",
                                                             (t,)))
    assert decode(encode(haa)) == haa


def test_vpn_info_objects_are_identical_types() -> None:
    got = decode(encode(AMA))
    assert isinstance(got, AmAnswer) and got.vpn_info == VPN
    assert isinstance(got.vpn_info.tunnels, tuple)
    assert isinstance(got.vpn_info.tunnels[0].a.selectors, tuple)
    assert got.vpn_info.tunnels[0].psk == bytes(range(32))
    assert hash(got.vpn_info) == hash(VPN)


def test_header_fields() -> None:
    data = encode(AMR)
    ver_len, flags_cmd, app, hbh, e2e = struct.unpack_from("!IIIII", data)
    assert ver_len >> 24 == 1 and ver_len & 0xFFFFFF == len(data)
    assert flags_cmd >> 24 == 0xC0            # R + P
    assert flags_cmd & 0xFFFFFF == 260
    assert (app, hbh, e2e) == (2, 0x1234, 0x5678)
    assert struct.unpack_from("!I", encode(HAA), 4)[0] >> 24 == 0x40   # P only
    assert struct.unpack_from("!I", encode(HAA), 4)[0] & 0xFFFFFF == 262


def test_rfc4004_avps_and_address_encoding() -> None:
    data = encode(AMR)
    avps = {a.code: a for a in d.parse_avps(data, 20)}
    assert data[20:24] == struct.pack("!I", 263)          # Session-Id first
    assert struct.unpack("!I", avps[258].data)[0] == 2    # Auth-Application-Id
    # MIP-Mobile-Node-Address 333: Address, family 1 + IPv4, AVP length 14, M bit
    assert avps[333].raw == struct.pack("!II", 333, (0x40 << 24) | 14) + \
        b"\x00\x01" + bytes([10, 1, 0, 5])
    assert avps[334].raw[8:] == b"\x00\x01" + bytes([192, 0, 2, 1])


def test_vendor_avp_header_bytes() -> None:
    data = encode(AMR)
    fa = [a for a in d.parse_avps(data, 20) if a.vendor == d.VENDOR_ID
          and a.code == d.VA_FOREIGN_AGENT][0]
    # code | flags V only (0x80) + length 12+3 | vendor 32473 | "fa1"
    assert fa.raw == struct.pack("!III", d.VA_FOREIGN_AGENT, (0x80 << 24) | 15, 32473) + b"fa1"
    su = [a for a in d.parse_avps(data, 20) if a.code == d.VA_SERVICE_UPDATE][0]
    assert su.raw == struct.pack("!IIII", 21, (0x80 << 24) | 16, 32473, 1)
    # every vendor AVP in every message: V=1, M=0, P=0
    for msg in (AMR, AMA, HAR, HAA):
        for code, flags, vendor in d.walk_avp_codes(encode(msg)):
            if vendor:
                assert (vendor, flags) == (32473, 0x80), code


def test_forbidden_codes_never_emitted() -> None:
    """PROTOCOLS.md §6: no 324 / 327 / 330 / 491 anywhere in any message we encode,
    and no withdrawn draft previous-FA AVPs (335/336) at the top level."""
    for msg in ALL:
        codes = d.walk_avp_codes(encode(msg))   # type: ignore[arg-type]
        ietf = {c for c, _f, v in codes if v == 0}
        assert not ietf & {324, 327, 330, 491}, type(msg).__name__
        assert not ietf & {335, 336}, type(msg).__name__


def test_msa_key_repr_hides_key_and_psk() -> None:
    assert "KKKK" not in repr(MsaKey(1, b"KKKK"))
    assert repr(bytes(range(32))) not in repr(decode(encode(AMA)))


def test_python_diameter_reads_our_bytes() -> None:
    """Cross-check with python-diameter's own decoder."""
    msg = Message.from_bytes(encode(AMR))
    assert type(msg).__name__ == "AaMobileNodeRequest"
    assert msg.session_id == AMR.session_id
    assert msg.mip_mobile_node_address == (1, "10.1.0.5")
    assert msg.mip_mn_aaa_auth.mip_mn_aaa_spi == 300
    ama = Message.from_bytes(encode(AMA))
    assert ama.mip_fa_to_ha_msa.mip_fa_to_ha_spi == 400
    vpn = ama.find_avps((d.VA_VPN_INFO, d.VENDOR_ID), (d.VA_NAI, d.VENDOR_ID))
    assert vpn[0].value == "mn1@home.example" and vpn[0].name == "Mipvpn-NAI"


# ------------------------------------------------------------------ errors


def _avps(data: bytes) -> list[d.RawAvp]:
    return d.parse_avps(data, 20)


def _rebuild(data: bytes, avps: list[bytes]) -> bytes:
    body = b"".join(a + b"\0" * (-len(a) % 4) for a in avps)
    head = bytearray(data[:20])
    struct.pack_into("!I", head, 0, (1 << 24) | (20 + len(body)))
    return bytes(head) + body


def _without(data: bytes, code: int) -> bytes:
    return _rebuild(data, [a.raw for a in _avps(data) if a.code != code])


@pytest.mark.parametrize("msg,code", [
    (AMR, 263), (AMR, 1), (AMR, 283), (AMR, 264), (AMR, 296), (AMR, 320), (AMR, 322),
    (AMA, 268), (AMA, 264), (HAR, 291), (HAR, 277), (HAR, 337), (HAA, 263)])
def test_missing_required_avp(msg: object, code: int) -> None:
    with pytest.raises(DiameterDecodeError) as ei:
        decode(_without(encode(msg), code))  # type: ignore[arg-type]
    e = ei.value
    assert (e.result_code, e.failed_avp_code) == (5005, code)
    assert e.header is not None and e.header.command_code in (260, 262)
    assert struct.unpack_from("!I", e.failed_avp)[0] == code


def test_missing_member_inside_vendor_group() -> None:
    data = encode(AMA)
    vi = [a for a in _avps(data) if a.code == d.VA_VPN_INFO and a.vendor][0]
    inner = [a.raw for a in d.parse_avps(vi.data) if a.code != d.VA_NAI]
    body = b"".join(x + b"\0" * (-len(x) % 4) for x in inner)
    new_vi = struct.pack("!III", d.VA_VPN_INFO, (0x80 << 24) | (12 + len(body)),
                         d.VENDOR_ID) + body
    others = [a.raw for a in _avps(data) if a.code != d.VA_VPN_INFO]
    with pytest.raises(DiameterDecodeError) as ei:
        decode(_rebuild(data, others + [new_vi]))
    assert (ei.value.result_code, ei.value.failed_avp_code) == (5005, d.VA_NAI)


def test_unknown_mandatory_avp_rejected_unknown_optional_ignored() -> None:
    data = encode(AMR)
    unknown_m = struct.pack("!III", 99999, (0x40 << 24) | 12, 7)
    with pytest.raises(DiameterDecodeError) as ei:
        decode(_rebuild(data, [a.raw for a in _avps(data)] + [unknown_m]))
    assert (ei.value.result_code, ei.value.failed_avp_code) == (5001, 99999)
    assert ei.value.failed_avp == unknown_m
    assert ei.value.session_id == AMR.session_id
    other_vendor_m = struct.pack("!IIII", 5, (0xC0 << 24) | 16, 10415, 1)
    with pytest.raises(DiameterDecodeError) as ei:
        decode(_rebuild(data, [a.raw for a in _avps(data)] + [other_vendor_m]))
    assert ei.value.result_code == 5001
    unknown_opt = struct.pack("!III", 99999, 12, 7)
    other_vendor = struct.pack("!IIII", 5, (0x80 << 24) | 16, 10415, 1)
    assert decode(_rebuild(data, [a.raw for a in _avps(data)] + [unknown_opt,
                                                                 other_vendor])) == AMR


def test_wrong_application_id() -> None:
    data = bytearray(encode(AMR))
    struct.pack_into("!I", data, 8, 4)     # the drafts' old application id
    with pytest.raises(DiameterDecodeError) as ei:
        decode(bytes(data))
    assert ei.value.result_code == 3007


@pytest.mark.parametrize("mutate,rc", [
    (lambda b: b[:10], 5015),                                     # short header
    (lambda b: b"\x02" + b[1:], 5011),                            # version 2
    (lambda b: b[:-4], 5015),                                     # length mismatch
    (lambda b: b[:3] + bytes([b[3] | 1]) + b[4:], 5015),          # length not /4
    (lambda b: b[:4] + b"\x81" + b[5:], 3008),                    # reserved header bit
    (lambda b: b[:20] + struct.pack("!II", 263, 4) + b[28:], 5014),   # AVP length < 8
    (lambda b: b[:20] + struct.pack("!II", 263, 0xFFFF) + b[28:], 5014),  # overrun
    (lambda b: b[:24] + b"\x41" + b[25:], 3009),                  # reserved AVP bit
    (lambda b: b[:5] + b"\x00\x01\x2c" + b[8:], 3001),            # command 300
])
def test_malformed_maps_to_result_code(mutate, rc: int) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DiameterDecodeError) as ei:
        decode(mutate(encode(AMR)))
    assert ei.value.result_code == rc


def test_bad_values() -> None:
    data = encode(AMR)
    bad_addr = struct.pack("!II", 333, (0x40 << 24) | 13) + b"\x00\x09abc"
    with pytest.raises(DiameterDecodeError) as ei:
        decode(_rebuild(data, [a.raw for a in _avps(data) if a.code != 333] + [bad_addr]))
    assert (ei.value.result_code, ei.value.failed_avp_code) == (5004, 333)
    bad_u32 = struct.pack("!II", 337, (0x40 << 24) | 10) + b"\0\0"
    with pytest.raises(DiameterDecodeError) as ei:
        decode(_rebuild(data, [a.raw for a in _avps(data) if a.code != 337] + [bad_u32]))
    assert ei.value.result_code == 5014
    bad_utf8 = struct.pack("!II", 1, (0x40 << 24) | 10) + b"\xff\xfe"
    with pytest.raises(DiameterDecodeError) as ei:
        decode(_rebuild(data, [a.raw for a in _avps(data) if a.code != 1] + [bad_utf8]))
    assert ei.value.result_code == 5004


def test_decode_never_leaks_other_exceptions() -> None:
    import random
    rng = random.Random(4004)
    good = encode(AMA)
    for _ in range(2000):
        b = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        try:
            decode(bytes(b))
        except DiameterDecodeError:
            pass


def test_error_answer_bytes() -> None:
    hdr = d.parse_header(encode(AMR))
    err = DiameterDecodeError(5005, 1, "missing", header=hdr, failed_avp=dia_decoding._example_avp(1),
                              session_id="s;1")
    data = d.encode_error_answer(hdr, err.result_code, "aaah", "home.example",
                                 session_id="s;1", error_message=err.message,
                                 failed_avp=err.failed_avp)
    ans = decode(data)
    assert isinstance(ans, AmAnswer) and ans.result_code == 5005
    assert (ans.hop_by_hop, ans.end_to_end) == (AMR.hop_by_hop, AMR.end_to_end)
    assert (279, 0x40, 0) in d.walk_avp_codes(data)
    e_data = d.encode_error_answer(hdr, 3007, "aaah", "home.example")
    assert e_data[4] == 0x60                     # P + E, no R
    e_ans = decode(e_data)
    assert isinstance(e_ans, AmAnswer) and e_ans.result_code == 3007


def test_encode_rejects_bad_fields() -> None:
    with pytest.raises(d.DiameterEncodeError):
        encode(replace(AMR, home_address="not-an-ip"))
    with pytest.raises(d.DiameterEncodeError):
        encode(replace(AMR, mn_aaa_spi=-1))


def test_wireshark_dictionary_matches_codec() -> None:
    import pathlib
    import xml.etree.ElementTree as ET
    root = pathlib.Path(__file__).resolve().parents[3]
    vendor = ET.parse(root / "docs/wireshark/dictionary-mipvpn.xml").getroot()
    assert vendor.tag == "vendor" and int(vendor.get("code", "")) == d.VENDOR_ID
    types = {"AvpGrouped": None, "AvpUtf8String": "UTF8String", "AvpAddress": "Address",
             "AvpOctetString": "OctetString", "AvpUnsigned32": "Unsigned32"}
    got = {}
    for avp in vendor.findall("avp"):
        assert (avp.get("mandatory"), avp.get("vendor-bit")) == ("mustnot", "must")
        t = avp.find("type")
        got[int(avp.get("code", ""))] = (avp.get("name"),
                                        None if t is None else t.get("type-name"))
    want = {c: (n, types[cls.__name__]) for c, (n, cls) in d.VENDOR_AVPS.items()}
    assert got == want
    doc = (root / "docs/diameter-avps.md").read_text()
    for code, (name, _cls) in d.VENDOR_AVPS.items():
        assert f"| {code} | {name} |" in doc


# ------------------------------------------------------------------ issue 11: key AVPs

KEYED_AMA = replace(AMA, fa_mn_key=MsaKey(spi=289, session_key=b"M" * 20),
                    mn_fa_nonce=d.MnFaNonce(spi=289, nonce=b"N" * 16),
                    session_secret=b"S" * 32)
KEYED_HAR = replace(HAR, session_secret=b"S" * 32)


@pytest.mark.parametrize("msg", [KEYED_AMA, KEYED_HAR], ids=["AMA", "HAR"])
def test_key_distribution_avps_round_trip(msg: object) -> None:
    wire = encode(msg)  # type: ignore[arg-type]
    assert decode(wire) == msg
    codes = d.walk_avp_codes(wire)
    assert (d.VA_SESSION_SECRET, 0x80, d.VENDOR_ID) in codes
    assert not {c for c, _f, _v in codes} & d.FORBIDDEN_AVP_CODES
    assert "S" * 8 not in repr(msg) and "M" * 8 not in repr(msg)       # never in repr
    if msg is KEYED_AMA:
        assert (326, 0x40, 0) in codes and (d.VA_MN_TO_FA_MSA, 0x80, d.VENDOR_ID) in codes
        assert (335, 0x40, 0) in codes                      # MIP-Nonce inside it


def _rewrite_spi(wire: bytes, spi: int) -> bytes:
    needle = struct.pack("!IIII", d.VA_MN_FA_SPI, (0x80 << 24) | 16, d.VENDOR_ID, 289)
    assert wire.count(needle) == 1
    return wire.replace(needle, needle[:-4] + struct.pack("!I", spi))


def test_mn_to_fa_msa_with_reserved_spi_is_5004() -> None:
    with pytest.raises(DiameterDecodeError) as exc:
        decode(_rewrite_spi(encode(KEYED_AMA), 7))
    assert exc.value.result_code == d.INVALID_AVP_VALUE


def test_short_session_secret_is_5004_and_twice_is_5009() -> None:
    with pytest.raises(DiameterDecodeError) as exc:
        decode(encode(replace(KEYED_HAR, session_secret=b"s")))
    assert exc.value.result_code == d.INVALID_AVP_VALUE
    wire = encode(KEYED_HAR)
    avp = dia_encoding._avp_wire(d.VA_SESSION_SECRET, 0x80, d.VENDOR_ID, b"T" * 32)
    doubled = wire + avp
    doubled = doubled[:1] + struct.pack("!I", len(doubled))[1:] + doubled[4:]
    with pytest.raises(DiameterDecodeError) as exc:
        decode(doubled)
    assert exc.value.result_code == d.AVP_OCCURS_TOO_MANY_TIMES
