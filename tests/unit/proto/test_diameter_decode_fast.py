"""Issue 15 (h15): the decoder's hot path rewritten for fewer instructions per AVP and
per message must read exactly what the straightforward code read.

- ``parse_avps`` against a plain reference splitter (RFC 6733 §4.1) on random framed
  and unframed bytes: the same AVPs, or the same error (result code, AVP code,
  Failed-AVP bytes);
- every message kind the property strategies build decodes to the value the message
  held, its relay fields included (``test_diameter_properties`` round-trips them too;
  this one pins the fields the decoder now passes one by one).
"""

from __future__ import annotations

import struct
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from controller.proto import diameter as d
from controller.proto.diameter import DiameterDecodeError

from tests.unit.proto.test_diameter_properties import (SETTINGS, blob, ident, messages, msa,
                                                      u32)


def _avp(code: int, data: bytes) -> bytes:
    return struct.pack("!II", code, 0x40 << 24 | 8 + len(data)) + data + b"\0" * (-len(data) % 4)


proxy_infos = st.lists(st.tuples(ident, blob).map(
    lambda hs: _avp(280, hs[0].encode()) + _avp(33, hs[1])), max_size=2).map(tuple)
route_records = st.lists(ident, max_size=3).map(tuple)
secrets = st.just(b"") | st.binary(min_size=16, max_size=40)
nonces = st.none() | st.builds(d.MnFaNonce, st.integers(256, 0xFFFFFFFF),
                               st.binary(min_size=1, max_size=32), u32)


@st.composite
def relayed(draw: st.DrawFn) -> d.DiameterMessage:
    """``messages`` with the fields that strategy leaves at their defaults: Route-Record,
    Proxy-Info, the AMA's MN keys and nonce, the session secret."""
    msg = draw(messages)
    extra: dict[str, object] = {}
    if isinstance(msg, (d.AmRequest, d.HaRequest)):
        extra["route_record"] = draw(route_records)
    if isinstance(msg, (d.AmRequest, d.HaRequest, d.AmAnswer, d.HaAnswer)):
        extra["proxy_info"] = draw(proxy_infos)
    if isinstance(msg, (d.HaRequest, d.AmAnswer)):
        extra["session_secret"] = draw(secrets)
    if isinstance(msg, d.AmAnswer):
        extra["fa_mn_key"] = draw(st.none() | msa)
        extra["mn_fa_nonce"] = draw(nonces)
    return replace(msg, **extra)  # type: ignore[arg-type]


def reference_parse(data: bytes, start: int = 0) -> list[tuple[int, int, int, bytes, bytes]]:
    out = []
    pos, end = start, len(data)
    while pos < end:
        if end - pos < 8:
            raise DiameterDecodeError(d.INVALID_AVP_LENGTH, 0, "truncated AVP header")
        code, flags_len = struct.unpack("!II", data[pos:pos + 8])
        flags, length = flags_len >> 24, flags_len & 0xFFFFFF
        hlen = 12 if flags & 0x80 else 8
        if length < hlen or pos + length > end:
            raise DiameterDecodeError(d.INVALID_AVP_LENGTH, code, "length",
                                      failed_avp=data[pos:min(end, pos + 12)])
        vendor = struct.unpack("!I", data[pos + 8:pos + 12])[0] if hlen == 12 else 0
        raw = data[pos:pos + length]
        if flags & 0x1F:
            raise DiameterDecodeError(d.INVALID_AVP_BITS, code, "flags", failed_avp=raw)
        out.append((code, flags, vendor, raw[hlen:], raw))
        pos += (length + 3) & ~3
    return out


def outcome(fn):  # type: ignore[no-untyped-def]
    try:
        return [tuple(a) for a in fn()]
    except DiameterDecodeError as e:
        return (e.result_code, e.failed_avp_code, e.failed_avp)


@st.composite
def avp_streams(draw: st.DrawFn) -> bytes:
    """Mostly well-formed AVPs (vendor bit or not, any padding), sometimes a bad one."""
    out = b""
    for _ in range(draw(st.integers(0, 6))):
        flags = draw(st.sampled_from([0, 0x40, 0x80, 0xC0, 0x20, 0x60, 0xE0])
                     | st.integers(0, 0xFF))
        payload = draw(st.binary(max_size=20))
        hlen = 12 if flags & 0x80 else 8
        length = draw(st.just(hlen + len(payload)) | st.integers(0, 40))
        head = struct.pack("!II", draw(st.integers(0, 0xFFFFFFFF)),
                           flags << 24 | length)
        if flags & 0x80:
            head += struct.pack("!I", draw(st.integers(0, 0xFFFFFFFF)))
        out += head + payload + b"\0" * draw(st.sampled_from([-len(payload) % 4, 0, 1]))
    return out + draw(st.binary(max_size=3) | st.just(b""))


@SETTINGS
@given(avp_streams(), st.integers(0, 3))
def test_parse_avps_reads_what_the_reference_reads(data: bytes, start: int) -> None:
    start = min(start, len(data))
    assert outcome(lambda: d.parse_avps(data, start)) == outcome(
        lambda: reference_parse(data, start))


def test_parse_avps_reads_each_flag_and_vendor() -> None:
    """A check that can fail: a vendor AVP's id, a plain AVP's flags, the padding."""
    vendor = struct.pack("!III", 7, 0xC0 << 24 | 13, 0xFFFFFFFE) + b"x\0\0\0"
    plain = struct.pack("!II", 0xFFFFFFFF, 0x40 << 24 | 10) + b"ab\0\0"
    avps = d.parse_avps(vendor + plain)
    assert [tuple(a) for a in avps] == [(7, 0xC0, 0xFFFFFFFE, b"x", vendor[:13]),
                                         (0xFFFFFFFF, 0x40, 0, b"ab", plain[:10])]


@SETTINGS
@given(relayed())
def test_every_field_decodes_to_what_was_encoded(msg: d.DiameterMessage) -> None:
    back = d.decode(d.encode(msg))
    assert type(back) is type(msg)
    assert back == msg
    for name in msg.__dataclass_fields__:
        assert getattr(back, name) == getattr(msg, name), name


def test_grouped_members_are_written_as_python_diameter_writes_them(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The templates write MIP-MN-AAA-Auth, the three MSAs and MIP-Originating-Foreign-AAA
    from the values by name (no python-diameter grouped object): byte for byte the
    python-diameter path, an algorithm >= 2^31 and a 32-bit SPI included."""
    from controller.proto.diameter import templates

    from tests.unit.proto.test_diameter_fast_encode import _reference_bytes
    key = d.MsaKey(0xFFFFFFFF, b"k" * 20, algorithm=0x80000001)
    for msg in (
            d.AmAnswer("s;1", 2001, "h.example", "r.example", fa_ha_key=d.MsaKey(256, b"a" * 16),
                       fa_mn_key=key, mn_fa_nonce=d.MnFaNonce(300, b"n" * 16),
                       session_secret=b"s" * 16, hop_by_hop=1, end_to_end=2),
            d.HaRequest("s;2", "h.example", "r.example", "d.example", "", "u@r.example",
                        b"rrq", 60, 1, 0, ha_to_fa_key=key,
                        originating_foreign_aaa=("f.example", "aaaf.f.example")),
            d.AmRequest("s;3", "h.example", "r.example", "d.example", "u@r.example", b"rrq",
                        0xFFFFFFFF, 1, 2, 3, originating_foreign_aaa=("f", "g"))):
        fast = templates.encode_fast(msg)
        assert fast is not None and fast == _reference_bytes(msg, monkeypatch)
        assert d.decode(fast) == msg


def test_vpn_info_written_again_by_object_or_by_value_gives_the_same_bytes() -> None:
    """The VPN information's AVP is found by the object's id (held, so the id is not
    reused) before its value's hash: the same object, an equal one and a different one
    each give the bytes of their own value."""
    from controller.core.vpn import QosSpec, SecuritySpec, TunnelEnd, TunnelSpec, VpnInfo
    from controller.proto.diameter import templates

    def info(fa: str) -> VpnInfo:
        spec = TunnelSpec("t1", TunnelEnd("fa1", "192.0.2.1", ("10.0.0.0/24",)),
                          TunnelEnd("ha", "192.0.2.2", ("10.1.0.0/24",)), b"k" * 16,
                          SecuritySpec(), QosSpec(1000, 10), initiator="fa1")
        return VpnInfo("u@x.example", "10.1.0.5", "ha", fa, (spec,))

    a, same, other = info("fa1"), info("fa1"), info("fa2")
    first = templates._vpn_info(a)
    assert templates._BY_ID[id(a)] == (a, first)
    assert templates._vpn_info(a) is first
    assert templates._vpn_info(same) == first
    assert templates._vpn_info(other) != first
    assert templates._vpn_info(other) == templates._vpn_info_avp(other)


@SETTINGS
@given(st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4))
def test_u32_and_ipv4_address_read_as_struct_and_inet_ntoa_read_them(u: bytes, v4: bytes) -> None:
    """Unsigned32 and IPv4 Address AVPs read byte by byte: the values ``struct`` and
    ``socket.inet_ntoa`` give (a leading zero never written, 255 and 0 included)."""
    import socket

    from controller.proto.diameter import decoding
    avps = decoding._Avps(d.parse_avps(_avp(1, u) + _avp(2, b"\0\1" + v4)), None,
                          frozenset({1, 2}), frozenset())
    assert avps.u32(1) == struct.unpack("!I", u)[0]
    assert avps.address(2) == socket.inet_ntoa(v4)
    for edge in (b"\0\0\0\0", b"\xff\xff\xff\xff", b"\x0a\x00\x01\x09"):
        one = decoding._Avps(d.parse_avps(_avp(2, b"\0\1" + edge)), None, frozenset({2}),
                             frozenset())
        assert one.address(2) == socket.inet_ntoa(edge)
