"""Property-based tests (hypothesis) of the Diameter codec under valid and hostile input.

- every message the strategies can build round-trips (decode(encode(m)) == m);
- decoding any bytes raises only ``DiameterDecodeError`` -- and never through the
  codec's defensive catch-all (which would hide a bug as 5012 "undecodable");
- whenever the header was readable, the error answer a node would send encodes and
  decodes back with the same result code and ids (what ``DiameterNode`` relies on).
"""

from __future__ import annotations

import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core.vpn import QosSpec, SecuritySpec, TunnelEnd, TunnelSpec, VpnInfo
from controller.proto import diameter as d
from controller.proto.diameter import DiameterDecodeError, decode, encode

from tests.unit.proto.test_nai import NAIS

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 0xFF)
u32 = st.integers(0, 0xFFFFFFFF)
ipv4 = st.integers(0, 0xFFFFFFFF).map(lambda i: str(ipaddress.IPv4Address(i)))
ipv6 = st.integers(0, (1 << 128) - 1).map(lambda i: str(ipaddress.IPv6Address(i)))
ip = ipv4 | ipv6
ident = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,40}[a-z0-9])?", fullmatch=True)  # FQDN/realm
text = st.text(max_size=40)
text1 = st.text(min_size=1, max_size=40)
blob = st.binary(max_size=80)

ends = st.builds(TunnelEnd, text, st.just("") | ip, st.lists(text1, max_size=3).map(tuple))
tunnels = st.builds(TunnelSpec, text, ends, ends, st.binary(max_size=64),
                    st.builds(SecuritySpec, text, text), st.builds(QosSpec, u32, u32), text)
vpn_infos = st.builds(VpnInfo, text, st.just("") | ip, text, text,
                      st.lists(tunnels, max_size=3).map(tuple), text)
msa = st.builds(d.MsaKey, u32, blob, u32)
ofaaa = st.none() | st.tuples(ident, ident)
ids = {"hop_by_hop": u32, "end_to_end": u32}

amr = st.builds(d.AmRequest, session_id=text1, origin_host=ident, origin_realm=ident,
                destination_realm=ident, user_name=NAIS, reg_request=blob, mn_aaa_spi=u32,
                auth_input_length=u32, authenticator_length=u32, authenticator_offset=u32,
                home_address=st.just("") | ip, home_agent_address=st.just("") | ip,
                feature_vector=u32, destination_host=st.just("") | ident,
                originating_foreign_aaa=ofaaa, previous_fa_address=st.just("") | ip,
                previous_fa=text, foreign_agent=text, service_update=st.booleans(), **ids)
ama = st.builds(d.AmAnswer, session_id=text1, result_code=u32, origin_host=ident,
                origin_realm=ident, user_name=text, reg_reply=blob,
                home_address=st.just("") | ip, home_agent_address=st.just("") | ip,
                vpn_info=st.none() | vpn_infos, fa_ha_key=st.none() | msa,
                error_message=text, **ids)
har = st.builds(d.HaRequest, session_id=text1, origin_host=ident, origin_realm=ident,
                destination_realm=ident, destination_host=st.just("") | ident,
                user_name=NAIS, reg_request=blob, authorization_lifetime=u32,
                auth_session_state=u32, feature_vector=u32, home_address=st.just("") | ip,
                home_agent_address=st.just("") | ip, vpn_info=st.none() | vpn_infos,
                ha_to_fa_key=st.none() | msa, originating_foreign_aaa=ofaaa, **ids)
haa = st.builds(d.HaAnswer, session_id=text1, result_code=u32, origin_host=ident,
                origin_realm=ident, user_name=text, reg_reply=blob,
                home_address=st.just("") | ip, home_agent_address=st.just("") | ip,
                vpn_info=st.none() | vpn_infos, error_message=text, **ids)
caps = {"vendor_id": u32, "product_name": text,
        "auth_application_ids": st.lists(u32, max_size=3).map(tuple)}
cer = st.builds(d.Cer, origin_host=ident, origin_realm=ident,
                host_ip_addresses=st.lists(ip, min_size=1, max_size=3).map(tuple),
                origin_state_id=u32, **caps, **ids)
cea = st.builds(d.Cea, result_code=u32, origin_host=ident, origin_realm=ident,
                host_ip_addresses=st.lists(ip, max_size=3).map(tuple), error_message=text,
                **caps, **ids)
base = st.one_of(st.builds(d.Dwr, ident, ident, **ids),
                 st.builds(d.Dwa, u32, ident, ident, **ids),
                 st.builds(d.Dpr, ident, ident, u32, **ids),
                 st.builds(d.Dpa, u32, ident, ident, **ids))
messages = st.one_of(amr, ama, har, haa, cer, cea, base)


@SETTINGS
@given(messages)
def test_round_trip(msg: d.DiameterMessage) -> None:
    raw = encode(msg)
    assert len(raw) % 4 == 0 and d.parse_header(raw).length == len(raw)
    assert decode(raw) == msg
    assert not {c for c, _f, _v in d.walk_avp_codes(raw)} & d.FORBIDDEN_AVP_CODES


NODE = ("aaah.home.example", "home.example")


def _check_hostile(data: bytes) -> None:
    try:
        msg = decode(data)
    except DiameterDecodeError as e:
        assert not e.message.startswith("undecodable"), f"codec bug hidden: {e.message}"
        assert 3000 <= e.result_code < 6000
        if e.header is not None and e.header.is_request:
            ans = d.encode_error_answer(e.header, e.result_code, *NODE,
                                        session_id=e.session_id, error_message=e.message,
                                        failed_avp=e.failed_avp)
            hdr = d.parse_header(ans)
            assert (hdr.hop_by_hop, hdr.end_to_end, hdr.command_code) == (
                e.header.hop_by_hop, e.header.end_to_end, e.header.command_code)
            rc = [a for a in d.parse_avps(ans, 20) if a.code == d.AVP_RESULT_CODE]
            assert int.from_bytes(rc[0].data, "big") == e.result_code
        return
    assert encode(msg) is not None       # what decodes can be re-encoded


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    _check_hostile(data)


@st.composite
def framed(draw: st.DrawFn) -> bytes:
    """A valid header (right length, a known command) around arbitrary AVP bytes."""
    body = draw(st.binary(max_size=200))
    body += b"\0" * (-len(body) % 4)
    cmd = draw(st.sampled_from([257, 260, 262, 280, 282, 999]))
    flags = draw(st.sampled_from([0x80, 0xC0, 0x00, 0x20, 0xA0]))
    app = draw(st.sampled_from([0, 2, 4, 0xFFFFFFFF]))
    head = bytes([1]) + (20 + len(body)).to_bytes(3, "big") + bytes([flags])
    head += cmd.to_bytes(3, "big") + app.to_bytes(4, "big") + draw(st.binary(min_size=8,
                                                                            max_size=8))
    return head + body


@SETTINGS
@given(framed())
def test_framed_garbage(data: bytes) -> None:
    _check_hostile(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(encode(draw(messages)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "avp_len", "dup"]))
        pos = draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            raw[pos] = draw(u8)
        elif op == "cut":
            del raw[max(pos, 20):]
        elif op == "insert":
            raw[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "avp_len" and len(raw) > 28:     # an AVP length field (bytes 5..7)
            p = 20 + 4 * draw(st.integers(0, (len(raw) - 28) // 4)) + 5
            raw[p:p + 3] = draw(st.integers(0, 0xFFFFFF)).to_bytes(3, "big")
        elif op == "dup" and len(raw) > 20:         # repeat a chunk of AVPs
            a = 20 + 4 * draw(st.integers(0, (len(raw) - 20) // 4))
            raw += raw[a:a + 4 * draw(st.integers(1, 8))]
    if draw(st.booleans()) and len(raw) >= 20:      # keep the header's length honest
        raw[1:4] = len(raw).to_bytes(3, "big")
    return bytes(raw)


@SETTINGS
@given(mutated())
def test_mutated_messages(data: bytes) -> None:
    _check_hostile(data)


@SETTINGS
@given(st.binary(max_size=200))
def test_avp_walkers_raise_only_decode_errors(data: bytes) -> None:
    for fn in (lambda: d.parse_avps(data), lambda: d.walk_avp_codes(b"\0" * 20 + data),
               lambda: d.parse_header(data)):
        try:
            fn()
        except DiameterDecodeError:
            pass
