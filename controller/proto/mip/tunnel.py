"""The mipvpn VPN tunnel CVSE (Binding Update, claims 19-23): one ``TunnelSpec`` as
sub-TLVs, its PSK hidden with a keystream derived from the message's key."""

from __future__ import annotations

import hmac
import ipaddress
import struct

from controller.model.vpn import (DEFAULT_ESP, DEFAULT_IKE, QosSpec, SecuritySpec, TunnelEnd,
                                  TunnelSpec)
from controller.proto.mip.errors import _bytes_to_ip, _ip_to_bytes, MipDecodeError
from controller.proto.mip.extensions import CriticalVendorExtension, NormalVendorExtension
from controller.proto.mip.numbers import (BACK_POORLY_FORMED, CVSE_VPN_TUNNEL,
                                          MIPVPN_VENDOR_ID)

# --------------------------------------------------------------------------- VPN tunnel ext

# Sub-TLVs of CVSE_VPN_TUNNEL: SubType(8) Length(8) Value.  Every one is understood by
# the receiver or the whole extension (critical) is rejected.
TS_TUNNEL_ID = 1       # UTF-8
TS_A_GATEWAY = 2       # UTF-8 gateway name of end a
TS_A_ADDRESS = 3       # IPv4 (4)
TS_A_SELECTOR = 4      # IPv4 network (4) + prefix length (1), repeated, in order
TS_B_GATEWAY = 5
TS_B_ADDRESS = 6
TS_B_SELECTOR = 7
TS_IKE = 8             # UTF-8 IKE proposal
TS_ESP = 9             # UTF-8 ESP proposal
TS_HIDDEN_PSK = 10     # PSK XOR keystream (see hide_psk), omitted when the PSK is empty
TS_QOS_RATE = 11       # Unsigned32 kbit/s
TS_QOS_DSCP = 12       # 1 byte
TS_INITIATOR = 13      # UTF-8 gateway name (omitted when empty)


def _psk_keystream(key: bytes, salt: bytes, n: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < n:
        out += hmac.digest(key, b"mipvpn-psk" + bytes([counter]) + salt, "sha256")
        counter += 1
    return out[:n]


def hide_psk(psk: bytes, key: bytes, salt: bytes) -> bytes:
    """PSK XOR HMAC-SHA-256(key, "mipvpn-psk" | counter | salt) keystream (the idea of
    RFC 2868 §3.5 Tunnel-Password hiding, with HMAC-SHA-256).  ``salt`` = the message's
    Identification (8 bytes) followed by the tunnel id, so no two messages reuse a
    keystream.  Its own inverse."""
    return bytes(a ^ b for a, b in zip(psk, _psk_keystream(key, salt, len(psk))))


def tunnel_salt(identification: int, tunnel_id: str) -> bytes:
    return struct.pack("!Q", identification) + tunnel_id.encode("utf-8")


def _sub(sub_type: int, value: bytes) -> bytes:
    if len(value) > 255:
        raise ValueError(f"tunnel sub-TLV {sub_type} too long ({len(value)} > 255)")
    return struct.pack("!BB", sub_type, len(value)) + value


def _selector_bytes(cidr: str) -> bytes:
    net = ipaddress.IPv4Network(cidr, strict=True)
    return net.network_address.packed + bytes([net.prefixlen])


def encode_tunnel_extension(spec: TunnelSpec, key: bytes, identification: int,
                            ) -> CriticalVendorExtension:
    """``spec`` as a CVSE (vendor 32473, type 3); its PSK hidden under ``key``."""
    body = _sub(TS_TUNNEL_ID, spec.tunnel_id.encode("utf-8"))
    for gw_t, addr_t, sel_t, end in ((TS_A_GATEWAY, TS_A_ADDRESS, TS_A_SELECTOR, spec.a),
                                     (TS_B_GATEWAY, TS_B_ADDRESS, TS_B_SELECTOR, spec.b)):
        body += _sub(gw_t, end.gateway.encode("utf-8"))
        if end.address:
            body += _sub(addr_t, _ip_to_bytes(end.address))
        body += b"".join(_sub(sel_t, _selector_bytes(s)) for s in end.selectors)
    body += _sub(TS_IKE, spec.security.ike.encode("utf-8"))
    body += _sub(TS_ESP, spec.security.esp.encode("utf-8"))
    if spec.psk:
        body += _sub(TS_HIDDEN_PSK, hide_psk(bytes(spec.psk), key,
                                             tunnel_salt(identification, spec.tunnel_id)))
    body += _sub(TS_QOS_RATE, struct.pack("!I", spec.qos.rate_kbps))
    body += _sub(TS_QOS_DSCP, bytes([spec.qos.dscp]))
    if spec.initiator:
        body += _sub(TS_INITIATOR, spec.initiator.encode("utf-8"))
    return CriticalVendorExtension(MIPVPN_VENDOR_ID, CVSE_VPN_TUNNEL, body)


def decode_tunnel_extension(ext: CriticalVendorExtension | NormalVendorExtension, key: bytes,
                            identification: int) -> TunnelSpec:
    """Inverse of :func:`encode_tunnel_extension`; :class:`MipDecodeError` (Binding
    Acknowledge status 134, poorly formed) on any defect."""
    def err(msg: str) -> MipDecodeError:
        return MipDecodeError(f"VPN tunnel extension: {msg}", BACK_POORLY_FORMED,
                              BACK_POORLY_FORMED)

    if ext.vendor_id != MIPVPN_VENDOR_ID or ext.vendor_type != CVSE_VPN_TUNNEL:
        raise err(f"not a tunnel extension ({ext.vendor_id}/{ext.vendor_type})")
    data = ext.data
    fields: dict[int, bytes] = {}
    selectors: dict[int, list[str]] = {TS_A_SELECTOR: [], TS_B_SELECTOR: []}
    off = 0
    while off < len(data):
        if off + 2 > len(data):
            raise err("truncated sub-TLV header")
        sub_type, length = data[off], data[off + 1]
        value = data[off + 2:off + 2 + length]
        if len(value) != length:
            raise err(f"sub-TLV {sub_type} overruns the extension")
        off += 2 + length
        if sub_type in selectors:
            if length != 5 or value[4] > 32:
                raise err(f"bad selector length {length}")
            try:
                net = ipaddress.IPv4Network((bytes(value[:4]), value[4]), strict=True)
            except ValueError as exc:
                raise err(f"bad selector: {exc}") from None
            selectors[sub_type].append(str(net))
            continue
        if sub_type not in range(TS_TUNNEL_ID, TS_INITIATOR + 1):
            raise err(f"unknown sub-TLV {sub_type}")
        if sub_type in fields:
            raise err(f"sub-TLV {sub_type} repeated")
        fields[sub_type] = bytes(value)

    def text(sub_type: int, required: bool = False) -> str:
        if sub_type not in fields:
            if required:
                raise err(f"missing sub-TLV {sub_type}")
            return ""
        try:
            return fields[sub_type].decode("utf-8")
        except UnicodeDecodeError:
            raise err(f"sub-TLV {sub_type} is not UTF-8") from None

    def address(sub_type: int) -> str:
        if sub_type not in fields:
            return ""
        if len(fields[sub_type]) != 4:
            raise err(f"sub-TLV {sub_type}: not an IPv4 address")
        return _bytes_to_ip(fields[sub_type])

    tunnel_id = text(TS_TUNNEL_ID, required=True)
    rate = fields.get(TS_QOS_RATE, b"\0\0\0\0")
    dscp = fields.get(TS_QOS_DSCP, b"\0")
    if len(rate) != 4 or len(dscp) != 1:
        raise err("bad QoS sub-TLV length")
    psk = b""
    if TS_HIDDEN_PSK in fields:
        psk = hide_psk(fields[TS_HIDDEN_PSK], key, tunnel_salt(identification, tunnel_id))
    return TunnelSpec(
        tunnel_id=tunnel_id,
        a=TunnelEnd(text(TS_A_GATEWAY, True), address(TS_A_ADDRESS),
                    tuple(selectors[TS_A_SELECTOR])),
        b=TunnelEnd(text(TS_B_GATEWAY, True), address(TS_B_ADDRESS),
                    tuple(selectors[TS_B_SELECTOR])),
        psk=psk,
        security=SecuritySpec(ike=text(TS_IKE) or DEFAULT_IKE,
                              esp=text(TS_ESP) or DEFAULT_ESP),
        qos=QosSpec(rate_kbps=struct.unpack("!I", rate)[0], dscp=dscp[0]),
        initiator=text(TS_INITIATOR))
