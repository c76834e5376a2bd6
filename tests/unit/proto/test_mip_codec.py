"""Byte-exact tests of controller.proto.mip, cross-checked with scapy and hmac."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest

from controller.proto import mip
from controller.proto.mip import (
    AgentAdvertisement,
    AgentSolicitation,
    AuthKind,
    BindingAck,
    BindingRequest,
    BindingUpdate,
    BindingWarning,
    ChallengeExtension,
    CriticalVendorExtension,
    FaHaAuth,
    GeneralizedAuth,
    MipDecodeError,
    MnFaAuth,
    MnHaAuth,
    NaiExtension,
    NormalVendorExtension,
    Pad,
    RegistrationReply,
    RegistrationRequest,
    UnknownExtension,
    append_auth,
    decode,
    decode_icmp,
    encode,
    identification_time,
    mn_aaa_auth_offsets,
    ntp_identification,
    verify_auth,
)

KEY = bytes(range(16))

# A full RRQ as sent by the MN, field by field (RFC 5944 §3.3 + extensions).
RRQ_BYTES = bytes.fromhex(
    "01"          # Type = 1 Registration Request
    "02"          # Flags S B D M G r T x = 0000 0010 (T)
    "012c"        # Lifetime = 300 s
    "0a0a0064"    # Home Address 10.10.0.100
    "0a000001"    # Home Agent 10.0.0.1
    "0a140001"    # Care-of Address 10.20.0.1
    "e8c9a1b200000001"  # Identification (64)
    "83" "05" "612e622e63"  # NAI ext: Type 131, Length 5, "a.b.c"
    "26" "00" "000a" "00007ed9" "0001" "0a140002"  # CVSE: Type 38, Rsv, Length 10,
    # Vendor 32473, CVSE-Type 1, value 10.20.0.2
    "86" "0a" "0000" "00007ed9" "0002" "abcd"  # NVSE: Type 134, Length 10, Rsv(16),
    # Vendor 32473, NVSE-Type 2, value abcd
    "84" "02" "beef"  # Challenge: Type 132, Length 2
    "00"          # Pad
    "c8" "01" "ff"  # unknown skippable Type 200, Length 1
)


def test_rrq_round_trip_bytes() -> None:
    msg = decode(RRQ_BYTES)
    assert msg == RegistrationRequest(
        flags=mip.FLAG_T, lifetime=300, home_address="10.10.0.100", home_agent="10.0.0.1",
        care_of_address="10.20.0.1", identification=0xE8C9A1B200000001,
        extensions=[
            NaiExtension("a.b.c"),
            CriticalVendorExtension(32473, 1, bytes([10, 20, 0, 2])),
            NormalVendorExtension(32473, 2, b"\xab\xcd"),
            ChallengeExtension(b"\xbe\xef"),
            Pad(),
            UnknownExtension(200, b"\xff"),
        ])
    assert encode(msg) == RRQ_BYTES
    assert isinstance(msg, RegistrationRequest)
    assert msg.nai == "a.b.c"
    assert msg.has_flag(mip.FLAG_T) and not msg.has_flag(mip.FLAG_S)
    assert msg.find(ChallengeExtension) == ChallengeExtension(b"\xbe\xef")
    assert msg.find(MnHaAuth) is None
    assert msg.vendor_extension(32473, 1) == CriticalVendorExtension(32473, 1, b"\x0a\x14\x00\x02")


RRP_BYTES = bytes.fromhex(
    "03"          # Type = 3 Registration Reply
    "00"          # Code = 0 accepted
    "0096"        # Lifetime = 150
    "0a0a0064"    # Home Address
    "0a000001"    # Home Agent
    "e8c9a1b200000001"  # Identification
    "20" "08" "00000100" "01020304"  # MN-HA auth: Type 32, Length 8, SPI 256, auth 01020304
    "21" "05" "00000101" "aa"        # MN-FA auth: Type 33, Length 5, SPI 257, auth aa
    "22" "04" "00000102"             # FA-HA auth: Type 34, Length 4, SPI 258, empty
    "24" "01" "0006" "0000012c" "5566"  # Generalized auth: Type 36, Subtype 1, Length 6,
    # SPI 300, auth 5566
)


def test_rrp_round_trip_bytes() -> None:
    msg = decode(RRP_BYTES)
    assert msg == RegistrationReply(
        code=0, lifetime=150, home_address="10.10.0.100", home_agent="10.0.0.1",
        identification=0xE8C9A1B200000001,
        extensions=[MnHaAuth(256, b"\x01\x02\x03\x04"), MnFaAuth(257, b"\xaa"),
                    FaHaAuth(258, b""), GeneralizedAuth(1, 300, b"\x55\x66")])
    assert encode(msg) == RRP_BYTES
    assert isinstance(msg, RegistrationReply) and msg.accepted
    assert msg.mn_aaa_auth == GeneralizedAuth(1, 300, b"\x55\x66")


BU_BYTES = bytes.fromhex(
    "f2"          # Type = BINDING_UPDATE (experimental 242)
    "c0"          # A I M G rsv = 1100 0000
    "0078"        # Lifetime 120
    "0a0a0064"    # Home Address
    "0a140001"    # CoA
    "0000000200000001"  # Identification (next nonce 2, this nonce 1)
    "20" "14" "00000200" + "11" * 16  # MN-HA-format auth ext, Length 20, SPI 512
)


@pytest.mark.parametrize("raw,expected", [
    (BU_BYTES, BindingUpdate(mip.BU_FLAG_A | mip.BU_FLAG_I, 120, "10.10.0.100", "10.20.0.1",
                             0x0000000200000001, [MnHaAuth(512, b"\x11" * 16)])),
    # Binding Warning: Type 240, Reserved(24), HomeAddr, 2 targets
    (bytes.fromhex("f0000000" "0a0a0064" "0a1e0001" "0a1e0002"),
     BindingWarning("10.10.0.100", ["10.30.0.1", "10.30.0.2"])),
    # Binding Warning with n = 0 targets
    (bytes.fromhex("f0000000" "0a0a0064"), BindingWarning("10.10.0.100", [])),
    # Binding Request: Type 241, Reserved(24), HomeAddr, Identification
    (bytes.fromhex("f1000000" "0a0a0064" "0102030405060708"),
     BindingRequest("10.10.0.100", 0x0102030405060708)),
    # Binding Ack: Type 243, Reserved(16), Status 133, HomeAddr, Identification
    (bytes.fromhex("f3000085" "0a0a0064" "0102030405060708"),
     BindingAck(133, "10.10.0.100", 0x0102030405060708)),
])
def test_binding_messages_round_trip(raw: bytes, expected: object) -> None:
    assert decode(raw) == expected
    assert encode(expected) == raw  # type: ignore[arg-type]


def test_binding_type_numbers_are_experimental_range() -> None:
    types = (mip.BINDING_WARNING, mip.BINDING_REQUEST, mip.BINDING_UPDATE, mip.BINDING_ACK)
    assert types == (240, 241, 242, 243)
    assert all(28 <= t <= 254 for t in types)
    with pytest.raises(ValueError):
        mip.configure_binding_types(16, 17, 18, 19)


def test_configure_binding_types_changes_wire_type() -> None:
    try:
        mip.configure_binding_types(200, 201, 202, 203)
        raw = encode(BindingRequest("10.0.0.1", 7))
        assert raw[0] == 201 and decode(raw) == BindingRequest("10.0.0.1", 7)
    finally:
        mip.configure_binding_types(240, 241, 242, 243)


def test_bu_is_delete() -> None:
    assert BindingUpdate(0, 0, "1.1.1.1", "2.2.2.2", 0).is_delete
    assert BindingUpdate(0, 5, "1.1.1.1", "1.1.1.1", 0).is_delete
    assert not BindingUpdate(0, 5, "1.1.1.1", "2.2.2.2", 0).is_delete


# --------------------------------------------------------------------------- decode errors

RRQ_FIXED = RRQ_BYTES[:24]
RRP_FIXED = RRP_BYTES[:20]


@pytest.mark.parametrize("raw,reason", [
    (b"", "empty"),
    (RRQ_FIXED[:23], "truncated fixed part"),
    (RRQ_FIXED + b"\x83", "truncated ext header"),
    (RRQ_FIXED + b"\x83\x05abc", "ext length overruns"),
    (RRQ_FIXED + b"\x83\x00", "empty NAI"),
    (RRQ_FIXED + b"\x83\x02\xff\xfe", "NAI not UTF-8"),
    (RRQ_FIXED + b"\x20\x03\x00\x00\x01", "auth length < 4"),
    (RRQ_FIXED + b"\x24\x01\x00", "truncated long header"),
    (RRQ_FIXED + b"\x24\x01\x00\x02\x00\x00", "gen auth length < 4"),
    (RRQ_FIXED + b"\x24\x01\x00\x14" + b"\x00" * 8, "gen auth overruns"),
    (RRQ_FIXED + b"\x26\x00\x00\x04\x00\x00\x7e\xd9", "CVSE length < 6"),
    (RRQ_FIXED + b"\x86\x06\x00\x00\x00\x00\x7e\xd9", "NVSE length < 8"),
    (RRQ_FIXED + b"\x63\x00", "unknown non-skippable type 99"),
    (RRQ_FIXED + b"\x7f\x01\x00", "unknown non-skippable type 127"),
    (RRQ_FIXED + b"\x83\x01a\xff", "trailing garbage (truncated ext)"),
    (b"\x02" + RRQ_FIXED[1:], "unsupported message type 2"),
    (b"\x10" + RRQ_FIXED[1:], "type 16 (RFC 4881) not squatted"),
    (bytes.fromhex("f0000000" "0a0a0064" "0a1e"), "binding warning trailing bytes"),
    (bytes.fromhex("f1000000" "0a0a0064" "01020304050607"), "binding request truncated"),
    (bytes.fromhex("f1000000" "0a0a0064" "0102030405060708" "00"), "binding request trailing"),
    (bytes.fromhex("f3000000" "0a0a0064" "0102030405060708" "00"), "binding ack trailing"),
    (bytes.fromhex("f2c00078" "0a0a0064" "0a140001"), "binding update truncated"),
])
def test_decode_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(MipDecodeError):
        decode(raw)


def test_decode_error_codes() -> None:
    with pytest.raises(MipDecodeError) as exc:
        decode(RRQ_FIXED + b"\x63\x00")
    assert (exc.value.code, exc.value.fa_code, exc.value.ha_code) == (70, 70, 134)
    with pytest.raises(MipDecodeError) as exc:
        decode(RRP_FIXED[:19])
    assert exc.value.fa_code == mip.CODE_FA_POORLY_FORMED_REPLY == 71
    with pytest.raises(MipDecodeError) as exc:
        decode(BU_BYTES[:-1])
    assert exc.value.code == mip.BACK_POORLY_FORMED
    assert isinstance(exc.value, ValueError)


def test_encode_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        encode(RegistrationRequest(0, 0, "1.1.1.1", "1.1.1.1", "1.1.1.1", 0,
                                   [NaiExtension("x" * 256)]))
    with pytest.raises(ValueError):
        encode(RegistrationRequest(0, 0, "1.1.1.1", "1.1.1.1", "1.1.1.1", 0,
                                   [UnknownExtension(99, b"")]))
    with pytest.raises(TypeError):
        encode(object())  # type: ignore[arg-type]


def test_reply_code_names_cover_required_codes() -> None:
    for code in (0, 1, 64, 65, 66, 67, 69, 70, 71, 78, 88, 97, 104, 105, 106,
                 128, 129, 130, 131, 132, 133, 134, 136):
        assert code in mip.REPLY_CODE_NAMES


# --------------------------------------------------------------------------- authentication


def _rrq() -> bytes:
    return encode(RegistrationRequest(mip.FLAG_T, 300, "10.10.0.100", "10.0.0.1", "10.20.0.1",
                                      0xE8C9A1B200000001, [NaiExtension("alice@home.example")]))


def test_mn_aaa_auth_matches_independent_hmac() -> None:
    base = _rrq()
    raw = append_auth(base, AuthKind.MN_AAA, 300, KEY)
    # Type 36, Subtype 1, Length 20 (16 bits), SPI 300
    header = bytes([36, 1, 0, 20]) + (300).to_bytes(4, "big")
    expected = hmac.new(KEY, base + header, hashlib.md5).digest()
    assert raw == base + header + expected
    assert verify_auth(raw, AuthKind.MN_AAA, KEY)
    assert not verify_auth(raw, AuthKind.MN_AAA, b"\x00" * 16)
    assert not verify_auth(raw, AuthKind.MN_HA, KEY)  # absent
    msg = decode(raw)
    assert msg.mn_aaa_auth == GeneralizedAuth(1, 300, expected)  # type: ignore[union-attr]
    # RFC 4004 AVP values: input covers up to and including the SPI
    n = len(base) + 8
    assert mn_aaa_auth_offsets(raw) == (n, 16, n)
    assert raw[n:n + 16] == expected


@pytest.mark.parametrize("kind,ext_type", [
    (AuthKind.MN_HA, 32), (AuthKind.MN_FA, 33), (AuthKind.FA_HA, 34)])
def test_simple_auth_matches_independent_hmac(kind: AuthKind, ext_type: int) -> None:
    base = _rrq()
    raw = append_auth(base, kind, 0x1234, KEY)
    header = bytes([ext_type, 20]) + (0x1234).to_bytes(4, "big")
    assert raw == base + header + hmac.new(KEY, base + header, hashlib.md5).digest()
    assert verify_auth(raw, kind, KEY)


def test_chained_auth_order_mn_ha_then_mn_aaa_then_fa_ha() -> None:
    raw = append_auth(_rrq(), AuthKind.MN_HA, 256, KEY)
    raw = append_auth(raw, AuthKind.MN_AAA, 300, b"aaa-key")
    raw = append_auth(raw, AuthKind.FA_HA, 400, b"fa-ha-key")
    assert verify_auth(raw, AuthKind.MN_HA, KEY)
    assert verify_auth(raw, AuthKind.MN_AAA, b"aaa-key")
    assert verify_auth(raw, AuthKind.FA_HA, b"fa-ha-key")
    assert [type(e) for e in decode(raw).extensions] == [  # type: ignore[union-attr]
        NaiExtension, MnHaAuth, GeneralizedAuth, FaHaAuth]


def test_tampering_breaks_auth() -> None:
    raw = bytearray(append_auth(_rrq(), AuthKind.MN_AAA, 300, KEY))
    raw[4] ^= 1  # home address
    assert not verify_auth(bytes(raw), AuthKind.MN_AAA, KEY)
    assert not verify_auth(b"\x01\x00", AuthKind.MN_AAA, KEY)  # malformed
    with pytest.raises(MipDecodeError):
        mn_aaa_auth_offsets(_rrq())


# --------------------------------------------------------------------------- identification


def test_ntp_identification() -> None:
    ident = ntp_identification(0.5, rand=0xAB)
    assert ident >> 32 == 2_208_988_800  # 1970-01-01 in NTP seconds
    assert ident & 0xFFFFFF00 == 0x80000000  # .5 s fraction
    assert ident & 0xFF == 0xAB
    t = 1_700_000_000.25
    assert abs(identification_time(ntp_identification(t, 7)) - t) < 1e-6
    assert ntp_identification(t + 0.001) > ntp_identification(t)


# --------------------------------------------------------------------------- agent discovery

ADV = AgentAdvertisement(
    router_address="10.20.0.1", preference=0, lifetime=1800, sequence=5,
    registration_lifetime=300, flags=mip.ADV_FLAG_R | mip.ADV_FLAG_F | mip.ADV_FLAG_T,
    care_of_addresses=["10.20.0.1"])


def test_advertisement_bytes() -> None:
    raw = ADV.encode()
    assert raw[:2] == b"\x09\x10"  # Type 9, Code 16
    assert raw[4:] == bytes.fromhex(
        "01" "02" "0708"      # NumAddrs 1, EntrySize 2, Lifetime 1800
        "0a140001" "00000000"  # Router Address, Preference 0
        "10" "0a" "0005" "012c" "9100"  # Ext 16, Length 10, Seq 5, RegLifetime 300, R|F|T
        "0a140001")           # CoA
    assert mip.icmp_checksum(raw) == 0
    assert decode_icmp(raw) == ADV


def test_advertisement_checksum_matches_scapy() -> None:
    from scapy.layers.inet import ICMP
    raw = ADV.encode()
    pkt = ICMP(raw)
    assert pkt.type == 9 and pkt.code == 16
    ours = pkt.chksum
    del pkt.chksum
    assert ICMP(bytes(pkt)).chksum == ours


def test_advertisement_optional_extensions_round_trip() -> None:
    adv = AgentAdvertisement("10.20.0.1", 5, 600, 0xFFFF, 0xFFFF, mip.ADV_FLAG_F,
                             ["10.20.0.1", "10.20.0.2"], code=0, challenge=b"c" * 4,
                             prefix_lengths=[24])
    assert decode_icmp(adv.encode()) == adv
    assert adv.is_foreign_agent and not adv.is_home_agent


def test_solicitation() -> None:
    raw = AgentSolicitation().encode()
    assert raw == bytes.fromhex("0a00f5ff00000000")
    assert decode_icmp(raw) == AgentSolicitation()


@pytest.mark.parametrize("mutate", [
    lambda b: b[:7],                                    # truncated
    lambda b: b[:2] + b"\x00\x00" + b[4:],              # bad checksum
])
def test_icmp_decode_errors(mutate) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MipDecodeError):
        decode_icmp(mutate(ADV.encode()))


def _with_checksum(body: bytes) -> bytes:
    raw = body[:2] + b"\x00\x00" + body[4:]
    return raw[:2] + struct.pack("!H", mip.icmp_checksum(raw)) + raw[4:]


@pytest.mark.parametrize("raw", [
    _with_checksum(bytes.fromhex("0800000000000000")),  # echo request
    _with_checksum(bytes.fromhex("0905000001020708" "0a140001" "00000000")),  # bad code
    _with_checksum(bytes.fromhex("0910000001020708" "0a140001" "00000000")),  # no mobility ext
    _with_checksum(bytes.fromhex("0910000002020708" "0a140001" "00000000")),  # addrs overrun
    _with_checksum(bytes.fromhex("0910000001020708" "0a140001" "00000000" "1007000500000000")),
    _with_checksum(bytes.fromhex("0910000001020708" "0a140001" "00000000" "100a0005")),
    _with_checksum(bytes.fromhex("0910000001020708" "0a140001" "00000000" "10")),
])
def test_icmp_decode_structural_errors(raw: bytes) -> None:
    with pytest.raises(MipDecodeError):
        decode_icmp(raw)


# --------------------------------------------------------------------------- scapy cross-check


def test_rrq_matches_scapy() -> None:
    from scapy.layers.mobileip import MobileIP, MobileIPRRQ
    msg = RegistrationRequest(mip.FLAG_T | mip.FLAG_S, 300, "10.10.0.100", "10.0.0.1",
                              "10.20.0.1", 0xE8C9A1B2DEADBEEF)
    ours = encode(msg)
    theirs = bytes(MobileIP(type=1) / MobileIPRRQ(
        flags=0x82, lifetime=300, homeaddr="10.10.0.100", haaddr="10.0.0.1",
        coaddr="10.20.0.1", id=0xE8C9A1B2DEADBEEF))
    assert ours == theirs
    parsed = MobileIP(append_auth(ours, AuthKind.MN_AAA, 300, KEY))
    rrq = parsed[MobileIPRRQ]
    assert (parsed.type, rrq.flags, rrq.lifetime, rrq.homeaddr, rrq.haaddr, rrq.coaddr,
            rrq.id) == (1, 0x82, 300, "10.10.0.100", "10.0.0.1", "10.20.0.1",
                        0xE8C9A1B2DEADBEEF)


def test_rrp_matches_scapy() -> None:
    from scapy.layers.mobileip import MobileIP, MobileIPRRP
    msg = RegistrationReply(mip.CODE_HA_IDENTIFICATION_MISMATCH, 0, "10.10.0.100", "10.0.0.1",
                            0x0123456789ABCDEF)
    ours = encode(msg)
    theirs = bytes(MobileIP(type=3) / MobileIPRRP(
        code=133, lifetime=0, homeaddr="10.10.0.100", haaddr="10.0.0.1", id=0x0123456789ABCDEF))
    assert ours == theirs
    parsed = MobileIP(ours)[MobileIPRRP]
    assert (parsed.code, parsed.lifetime, parsed.homeaddr, parsed.haaddr, parsed.id) == (
        133, 0, "10.10.0.100", "10.0.0.1", 0x0123456789ABCDEF)


def test_scapy_udp_binding_parses_our_rrq() -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.mobileip import MobileIPRRQ
    pkt = IP(bytes(IP(src="10.10.0.100", dst="255.255.255.255") / UDP(sport=434, dport=434)
                   / encode(RegistrationRequest(2, 300, "10.10.0.100", "10.0.0.1",
                                                "10.20.0.1", 1))))
    assert pkt[MobileIPRRQ].coaddr == "10.20.0.1"


def test_a_registration_request_decoded_again_comes_from_the_cache(monkeypatch) -> None:
    """Issue 15: the roles of one process decode one RRQ about ten times; the second
    decode of the same bytes walks no extensions, and every caller gets a message and
    an extension list of its own."""
    from controller.proto.mip import messages
    raw = _rrq()
    messages._DECODED.clear()
    walks: list[int] = []
    real = messages._walk_extensions

    def counting(*a: object) -> object:
        walks.append(1)
        return real(*a)  # type: ignore[arg-type]

    monkeypatch.setattr(messages, "_walk_extensions", counting)
    first = mip.decode(raw)
    second = mip.decode(raw)
    assert len(walks) == 1
    assert first == second and first is not second
    assert first.extensions is not second.extensions
    first.extensions.clear()
    first.lifetime = 1                          # type: ignore[union-attr]
    third = mip.decode(raw)
    assert third == second and third.extensions


def test_the_decode_cache_lets_go_of_a_registration_soon() -> None:
    """Issue 15: the cache serves one registration's RRQ and RRP, decoded by the roles
    of one process within milliseconds; a renewal brings new bytes (a new
    Identification).  Entries kept for hundreds of registrations lived long enough for
    the cyclic GC to traverse them twice, so it lets a message go after at most 256
    others went through."""
    import sys
    from controller.proto.mip import messages
    messages._DECODED.clear()
    raw = _rrq()
    mip.decode(raw)
    cached = messages._DECODED[raw][0]
    held = sys.getrefcount(cached)
    for i in range(300):
        mip.decode(encode(RegistrationRequest(mip.FLAG_T, 300, "10.10.0.100", "10.0.0.1",
                                              "10.20.0.1", i + 1,
                                              [NaiExtension("alice@home.example")])))
    assert raw not in messages._DECODED and sys.getrefcount(cached) == held - 1
