"""Binding messages with VPN information: the TunnelSpec <-> MIPv4 vendor extension
encoding (CVSE vendor 32473 type 3), the route-optimisation authentication extension
(type 35) and the BU / BAck / BReq checks of ``controller.core.binding``."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest

from controller.core import binding
from controller.core.binding import BindingKey
from controller.core.vpn import QosSpec, SecuritySpec, TunnelEnd, TunnelSpec
from controller.proto import mip

T0 = 1_700_000_000.0
KEY = BindingKey(0x200, bytes(range(16)))
PSK = bytes(range(100, 132))
SPEC = TunnelSpec(
    tunnel_id="alice_home.example/cngw2-fa1",
    a=TunnelEnd("cngw2", "10.0.0.32", ("10.32.0.0/24", "10.33.0.0/16")),
    b=TunnelEnd("fa1", "10.0.0.11", ("10.10.0.100/32",)),
    psk=PSK, security=SecuritySpec("aes256-sha256-ecp256", "aes256gcm16"),
    qos=QosSpec(rate_kbps=2000, dscp=46), initiator="fa1")


def ident(t: float = T0) -> int:
    return mip.ntp_identification(t)


def sub_tlvs(data: bytes) -> list[tuple[int, bytes]]:
    out, off = [], 0
    while off < len(data):
        out.append((data[off], data[off + 2:off + 2 + data[off + 1]]))
        off += 2 + data[off + 1]
    return out


# ------------------------------------------------------------------ tunnel extension


def test_tunnel_extension_round_trip_byte_exact() -> None:
    ext = mip.encode_tunnel_extension(SPEC, KEY.key, 7)
    assert (ext.vendor_id, ext.vendor_type) == (32473, mip.CVSE_VPN_TUNNEL) == (32473, 3)
    wire = mip.encode_extension(ext)
    # CVSE header: Type 38, Reserved, Length (= 6 + value), Vendor-ID, Vendor-Type
    assert wire[:10] == struct.pack("!BBHIH", 38, 0, 6 + len(ext.data), 32473, 3)
    d = ext.data
    assert d[:2] == bytes([1, len(SPEC.tunnel_id)])                  # Tunnel-Id
    assert d[2:2 + len(SPEC.tunnel_id)] == SPEC.tunnel_id.encode()
    off = 2 + len(SPEC.tunnel_id)
    assert d[off:off + 7] == b"\x02\x05cngw2"                         # end A gateway
    assert d[off + 7:off + 13] == b"\x03\x04" + bytes([10, 0, 0, 32])  # end A address
    assert d[off + 13:off + 20] == b"\x04\x05" + bytes([10, 32, 0, 0, 24])  # selector
    assert d[off + 20:off + 27] == b"\x04\x05" + bytes([10, 33, 0, 0, 16])
    assert mip.decode_tunnel_extension(ext, KEY.key, 7) == SPEC
    # the whole message decodes with the extension as a CVSE
    bu = mip.BindingUpdate(0xC0, 10, "10.10.0.100", "10.0.0.11", 7, [ext])
    assert mip.decode(mip.encode(bu)).extensions == [ext]


def test_psk_is_hidden_and_keyed() -> None:
    ext = mip.encode_tunnel_extension(SPEC, KEY.key, 7)
    assert PSK not in ext.data
    (hidden,) = [v for t, v in sub_tlvs(ext.data) if t == mip.TS_HIDDEN_PSK]
    stream = hmac.new(KEY.key, b"mipvpn-psk\x00" + mip.tunnel_salt(7, SPEC.tunnel_id),
                      hashlib.sha256).digest()
    assert bytes(a ^ b for a, b in zip(hidden, stream)) == PSK      # documented keystream
    assert mip.decode_tunnel_extension(ext, bytes(16), 7).psk != PSK  # wrong key
    assert mip.decode_tunnel_extension(ext, KEY.key, 8).psk != PSK    # other message
    other = mip.encode_tunnel_extension(SPEC, KEY.key, 8)
    assert other.data != ext.data                                     # no keystream reuse


def test_tunnel_without_psk_or_initiator() -> None:
    spec = TunnelSpec("x/a-b", TunnelEnd("a", "", ()), TunnelEnd("b", "10.0.0.2", ()),
                      psk=b"")
    ext = mip.encode_tunnel_extension(spec, KEY.key, 1)
    types = [t for t, _v in sub_tlvs(ext.data)]
    assert mip.TS_HIDDEN_PSK not in types and mip.TS_INITIATOR not in types
    assert mip.TS_A_ADDRESS not in types and types.count(mip.TS_B_ADDRESS) == 1
    assert mip.decode_tunnel_extension(ext, KEY.key, 1) == spec


@pytest.mark.parametrize("data", [
    b"\x01",                                    # truncated header
    b"\x01\x05ab",                              # overrun
    b"\x02\x01a\x05\x01b",                      # no tunnel id
    b"\x01\x01x\x02\x01a",                      # no end B gateway
    b"\x01\x01x\x02\x01a\x05\x01b\x63\x00",     # unknown sub-TLV
    b"\x01\x01x\x01\x01y\x02\x01a\x05\x01b",    # repeated
    b"\x01\x01x\x02\x01a\x05\x01b\x04\x04abcd",  # selector length
    b"\x01\x01x\x02\x01a\x05\x01b\x04\x05" + bytes([10, 0, 0, 1, 24]),  # host bits
    b"\x01\x01x\x02\x01a\x05\x01b\x03\x03abc",  # address length
    b"\x01\x01x\x02\x01a\x05\x01b\x0b\x02ab",   # QoS rate length
    b"\x01\x01\xff\x02\x01a\x05\x01b",          # not UTF-8
], ids=["trunc", "overrun", "no-id", "no-end-b", "unknown", "repeated", "sel-len",
        "sel-host-bits", "addr-len", "qos-len", "utf8"])
def test_malformed_tunnel_extension_is_poorly_formed(data: bytes) -> None:
    ext = mip.CriticalVendorExtension(32473, 3, data)
    with pytest.raises(mip.MipDecodeError) as exc:
        mip.decode_tunnel_extension(ext, KEY.key, 1)
    assert exc.value.ha_code == mip.BACK_POORLY_FORMED == 134


def test_encode_refuses_a_selector_with_host_bits() -> None:
    bad = TunnelSpec("x/a-b", TunnelEnd("a", "", ("10.0.0.1/24",)), TunnelEnd("b", "", ()),
                     psk=b"")
    with pytest.raises(ValueError):
        mip.encode_tunnel_extension(bad, KEY.key, 1)


# ------------------------------------------------------------------ RO authentication


def test_ro_auth_extension_type_35() -> None:
    raw = binding.build_binding_update(KEY, ident(), 300, "10.10.0.100", "10.0.0.11",
                                       "alice@home.example", (SPEC,))
    msg = mip.decode(raw)
    assert isinstance(msg, mip.BindingUpdate) and raw[0] == mip.BINDING_UPDATE == 242
    assert msg.flags == mip.BU_FLAG_A | mip.BU_FLAG_I
    assert [type(e) for e in msg.extensions] == [mip.NaiExtension,
                                                 mip.CriticalVendorExtension, mip.RoAuth]
    auth = msg.extensions[-1]
    assert raw[-22:-16] == bytes([35, 20]) + struct.pack("!I", 0x200)
    assert auth.authenticator == hmac.new(KEY.key, raw[:-16], hashlib.md5).digest()
    assert mip.encode_extension(auth) == raw[-22:]
    assert mip.verify_auth(raw, mip.AuthKind.RO, KEY.key)


# ------------------------------------------------------------------ checks


def test_check_binding_update_accepts_and_parses() -> None:
    raw = binding.build_binding_update(KEY, ident(), 300, "10.10.0.100", "10.0.0.11",
                                       "alice@home.example", (SPEC,))
    got = binding.check_binding_update(raw, KEY, T0 + 1)
    assert isinstance(got, binding.ReceivedUpdate)
    assert got.tunnels == (SPEC,) and got.nai == "alice@home.example"
    assert got.lifetime == 300 and not got.is_delete


def test_check_binding_update_failures() -> None:
    raw = binding.build_binding_update(KEY, ident(), 300, "10.10.0.100", "10.0.0.11",
                                       "alice@home.example", (SPEC,))
    assert binding.check_binding_update(raw, None, T0) == mip.BACK_AUTH_FAILED
    assert binding.check_binding_update(raw, BindingKey(0x200, bytes(16)), T0) == 131
    assert binding.check_binding_update(raw, BindingKey(0x201, KEY.key), T0) == 131
    tampered = bytearray(raw)
    tampered[9] ^= 1                                # care-of address
    assert binding.check_binding_update(bytes(tampered), KEY, T0) == 131
    unsigned = mip.encode(mip.decode(raw[:-22]))    # no authentication at all
    assert binding.check_binding_update(unsigned, KEY, T0) == 131
    trailing = mip.append_auth(raw, mip.AuthKind.MN_HA, 1, KEY.key)  # RO auth not last
    assert binding.check_binding_update(trailing, KEY, T0) == 131
    assert binding.check_binding_update(raw, KEY, T0 + 8) == mip.BACK_IDENTIFICATION_MISMATCH
    assert binding.check_binding_update(raw, KEY, T0, last_identification=ident()) == 133
    assert binding.check_binding_update(b"\xf2\x00", KEY, T0) == mip.BACK_POORLY_FORMED
    assert binding.check_binding_update(binding.binding_ack(0, "10.10.0.100", 1), KEY,
                                        T0) == 134


def test_unknown_critical_extension_is_poorly_formed() -> None:
    bu = mip.BindingUpdate(0xC0, 300, "10.10.0.100", "10.0.0.11", ident(),
                           [mip.CriticalVendorExtension(32473, 99, b"")])
    raw = mip.append_auth(mip.encode(bu), mip.AuthKind.RO, KEY.spi, KEY.key)
    assert binding.check_binding_update(raw, KEY, T0) == mip.BACK_POORLY_FORMED


def test_delete_binding_update() -> None:
    raw = binding.build_binding_update(KEY, ident(), 0, "10.10.0.100", "10.0.0.11",
                                       "alice@home.example", ())
    got = binding.check_binding_update(raw, KEY, T0)
    assert isinstance(got, binding.ReceivedUpdate) and got.is_delete and got.tunnels == ()


def test_ack_and_request() -> None:
    raw = binding.binding_ack(0, "10.10.0.100", 42)
    assert raw == struct.pack("!BxxB4sQ", 243, 0, bytes([10, 10, 0, 100]), 42)
    assert binding.ack_status(raw, 42) == 0
    assert binding.ack_status(raw, 43) is None
    assert binding.ack_status(None, 42) is None
    assert binding.ack_status(b"\x01", 42) is None
    assert binding.ack_status(binding.binding_ack(131, "10.10.0.100", 42), 42) == 131
    req = binding.binding_request("10.10.0.100", 9)
    assert req == struct.pack("!B3x4sQ", 241, bytes([10, 10, 0, 100]), 9)
    assert mip.decode(req) == mip.BindingRequest("10.10.0.100", 9)


def test_handoff_key_and_identification_clock() -> None:
    k = binding.handoff_key(PSK)
    assert k.spi == binding.HANDOFF_SPI and len(k.key) == 16
    assert k.key == hmac.new(PSK, b"mipvpn-bu-auth", hashlib.sha256).digest()[:16]
    assert "key" not in repr(k) or PSK.hex() not in repr(k)
    clock = binding.IdentificationClock()
    a, b = clock.next(T0), clock.next(T0)
    assert b == a + 1 and abs(mip.identification_time(a) - T0) < 1e-3
