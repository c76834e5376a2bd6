"""Property-based tests (hypothesis) of the Mobile IPv4 codec under valid and hostile input.

- every message the strategies can build round-trips byte-exactly;
- decoding any bytes (random, or a valid message mutated) either yields a message that
  re-encodes to something that decodes the same, or raises ``MipDecodeError`` -- never
  anything else (no IndexError, struct.error, UnicodeDecodeError, ValueError...);
- the authenticator helpers never raise on hostile input and detect any change.
"""

from __future__ import annotations

import ipaddress

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from controller.core.vpn import QosSpec, SecuritySpec, TunnelEnd, TunnelSpec
from controller.proto import mip
from controller.proto.mip import (AgentAdvertisement, AuthKind, MipDecodeError, Pad,
                                  append_auth, decode, decode_icmp, encode, verify_auth)

from tests.unit.proto.test_nai import NAIS

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, (1 << 64) - 1)
ipv4 = st.integers(0, 0xFFFFFFFF).map(lambda i: str(ipaddress.IPv4Address(i)))


def _blob(max_size: int) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=max_size)


KNOWN_SKIPPABLE = {mip.EXT_MN_NAI, mip.EXT_MN_FA_CHALLENGE, mip.EXT_NVSE}

extensions = st.one_of(
    st.just(Pad()),
    st.builds(mip.NaiExtension, NAIS),
    st.builds(mip.MnHaAuth, u32, _blob(251)),
    st.builds(mip.MnFaAuth, u32, _blob(251)),
    st.builds(mip.FaHaAuth, u32, _blob(251)),
    st.builds(mip.RoAuth, u32, _blob(251)),
    st.builds(mip.GeneralizedAuth, u8, u32, _blob(400)),
    st.builds(mip.ChallengeExtension, _blob(255)),
    st.builds(mip.CriticalVendorExtension, u32, u16, _blob(400)),
    st.builds(mip.NormalVendorExtension, u32, u16, _blob(247)),
    st.builds(mip.UnknownExtension,
              st.integers(128, 255).filter(lambda t: t not in KNOWN_SKIPPABLE), _blob(255)),
)
ext_lists = st.lists(extensions, max_size=8)

messages = st.one_of(
    st.builds(mip.RegistrationRequest, u8, u16, ipv4, ipv4, ipv4, u64, ext_lists),
    st.builds(mip.RegistrationReply, u8, u16, ipv4, ipv4, u64, ext_lists),
    st.builds(mip.BindingWarning, ipv4, st.lists(ipv4, max_size=8)),
    st.builds(mip.BindingRequest, ipv4, u64),
    st.builds(mip.BindingUpdate, u8, u16, ipv4, ipv4, u64, ext_lists),
    st.builds(mip.BindingAck, u8, ipv4, u64),
)


@SETTINGS
@given(messages)
def test_round_trip(msg: mip.MipMessage) -> None:
    raw = encode(msg)
    back = decode(raw)
    assert back == msg
    assert encode(back) == raw


def _check_hostile(data: bytes) -> None:
    try:
        msg = decode(data)
    except MipDecodeError as e:
        assert e.fa_code in mip.REPLY_CODE_NAMES or e.fa_code >= 128
        return
    # whatever decodes is canonical after one re-encoding
    again = encode(msg)
    assert decode(again) == msg


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_mip_decode_error(data: bytes) -> None:
    _check_hostile(data)


@SETTINGS
@given(st.sampled_from([1, 3, 240, 241, 242, 243]), st.binary(max_size=120))
def test_arbitrary_bodies_of_known_types(msg_type: int, body: bytes) -> None:
    _check_hostile(bytes([msg_type]) + body)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(encode(draw(messages)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and raw:
            raw[pos] = draw(u8)
        elif op == "cut":
            del raw[pos:]
        elif op == "insert":
            raw[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and raw:
            del raw[pos:pos + draw(st.integers(1, 4))]
    return bytes(raw)


@SETTINGS
@given(mutated())
def test_mutated_messages_raise_only_mip_decode_error(data: bytes) -> None:
    _check_hostile(data)


# ----------------------------------------------------------------- authentication


KINDS = st.sampled_from(list(AuthKind))
SPI = st.integers(256, 0xFFFFFFFF)
KEY = st.binary(min_size=16, max_size=16)


@SETTINGS
@given(messages.filter(lambda m: isinstance(m, (mip.RegistrationRequest,
                                                 mip.RegistrationReply))),
       KINDS, SPI, KEY, KEY)
def test_auth_verifies_and_detects_tampering(msg: mip.MipMessage, kind: AuthKind, spi: int,
                                            key: bytes, other: bytes) -> None:
    # strip existing auth extensions of this kind so ours is the first one
    assert isinstance(msg, (mip.RegistrationRequest, mip.RegistrationReply))
    msg.extensions = [e for e in msg.extensions
                      if not isinstance(e, (mip.MnHaAuth, mip.MnFaAuth, mip.FaHaAuth, mip.RoAuth,
                                            mip.GeneralizedAuth))]
    raw = append_auth(encode(msg), kind, spi, key)
    assert verify_auth(raw, kind, key)
    assume(other != key)
    assert not verify_auth(raw, kind, other)
    covered_end = len(raw) - mip.AUTH_LEN
    for pos in {0, 1, covered_end // 2, covered_end - 1, len(raw) - 1}:
        tampered = bytearray(raw)
        tampered[pos] ^= 0x01
        assert not verify_auth(bytes(tampered), kind, key)


@SETTINGS
@given(st.binary(max_size=200), KINDS, KEY)
def test_auth_helpers_never_raise_on_garbage(data: bytes, kind: AuthKind, key: bytes) -> None:
    assert verify_auth(data, kind, key) in (True, False)
    try:
        mip.mn_aaa_auth_offsets(data)
    except MipDecodeError:
        pass


# ----------------------------------------------------------------- agent discovery


adverts = st.builds(
    AgentAdvertisement, ipv4, st.integers(-(1 << 31), (1 << 31) - 1), u16, u16, u16, u16,
    st.lists(ipv4, max_size=62), st.sampled_from([mip.ADV_CODE_ROUTES,
                                                 mip.ADV_CODE_MOBILITY_ONLY]),
    st.none() | _blob(255), st.none() | st.lists(st.integers(0, 32), max_size=255))


@SETTINGS
@given(adverts)
def test_advertisement_round_trip(adv: AgentAdvertisement) -> None:
    assert decode_icmp(adv.encode()) == adv


@SETTINGS
@given(st.binary(max_size=200) | adverts.map(lambda a: a.encode()[:-1]))
def test_icmp_garbage_raises_only_mip_decode_error(data: bytes) -> None:
    try:
        decode_icmp(data)
    except MipDecodeError:
        pass


# ----------------------------------------------------------------- VPN tunnel extension

names = st.text(min_size=1, max_size=30).filter(lambda s: len(s.encode()) <= 255)
cidrs = st.builds(lambda a, p: str(ipaddress.IPv4Network((a, p), strict=False)),
                  u32, st.integers(0, 32))
ends = st.builds(TunnelEnd, names, st.just("") | ipv4, st.lists(cidrs, max_size=4).map(tuple))
proposal = st.text(min_size=1, max_size=40).filter(lambda s: len(s.encode()) <= 255)
tunnels = st.builds(TunnelSpec, names, ends, ends, _blob(64),
                    st.builds(SecuritySpec, proposal, proposal),
                    st.builds(QosSpec, u32, u8), st.just("") | names)


@SETTINGS
@given(tunnels, KEY, u64)
def test_tunnel_extension_round_trip(spec: TunnelSpec, key: bytes, ident: int) -> None:
    ext = mip.encode_tunnel_extension(spec, key, ident)
    assert mip.decode_tunnel_extension(ext, key, ident) == spec


@SETTINGS
@given(st.binary(max_size=300), KEY, u64)
def test_tunnel_extension_garbage(data: bytes, key: bytes, ident: int) -> None:
    ext = mip.CriticalVendorExtension(mip.MIPVPN_VENDOR_ID, mip.CVSE_VPN_TUNNEL, data)
    try:
        mip.decode_tunnel_extension(ext, key, ident)
    except MipDecodeError:
        pass
