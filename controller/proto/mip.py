"""Mobile IPv4 codec: registration, route-optimisation binding messages, agent discovery.

Pure: no sockets, no threads, no clock. Big-endian throughout. References are the RFC
sections named in ``docs/PROTOCOLS.md``.

Registration Request (RFC 5944 §3.3), UDP 434::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Type=1    |S|B|D|M|G|r|T|x|          Lifetime             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                          Home Address                         |
    |                           Home Agent                          |
    |                        Care-of Address                        |
    |                    Identification (64 bits)                   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    | Extensions ...

Registration Reply (RFC 5944 §3.4)::

    | Type=3 (8) | Code (8) | Lifetime (16) |
    | Home Address (32) | Home Agent (32) | Identification (64) | Extensions ...

Extensions (RFC 5944 §1.9-1.11). Type 0 is a one-byte Pad. Unknown types 0-127 make
the whole message invalid (:class:`MipDecodeError`); unknown 128-255 are skippable
(short format Type(8) Length(8) Data) and kept as :class:`UnknownExtension`.

- 32/33/34 MN-HA / MN-FA / FA-HA auth (5944 §3.5.2-4):
  ``Type(8) Length(8)=4+n SPI(32) Authenticator(n)``
- 36 Generalized auth (RFC 3012 §5), subtype 1 = MN-AAA (§6):
  ``Type(8) Subtype(8) Length(16)=4+n SPI(32) Authenticator(n)``
- 38 CVSE, Critical Vendor/Organization Specific Extension (RFC 3115 §2):
  ``Type(8) Reserved(8) Length(16) Vendor/Org-ID(32) CVSE-Type(16) CVSE-Value``
  where Length excludes Type, Reserved and Length (= 6 + len(value)).
- 131 MN-NAI (RFC 2794): ``Type(8) Length(8) NAI``: UTF-8 in RFC 7542 syntax
  (:mod:`controller.proto.nai`), else the request is poorly formed (70 / 134).
- 132 MN-FA Challenge (RFC 3012 §3): ``Type(8) Length(8) Challenge``.
- 134 NVSE, Normal Vendor/Organization Specific Extension (RFC 3115 §3):
  ``Type(8) Length(8) Reserved(16) Vendor/Org-ID(32) NVSE-Type(16) NVSE-Value``
  where Length excludes only Type and Length (= 8 + len(value)).

Authenticators (5944 §3.5.1; 3012 §6): HMAC-MD5 (16 bytes) keyed with the shared key
over every byte of the message before the extension, plus the extension's own Type,
(Subtype,) Length and SPI fields.

Route-optimisation binding messages (draft-ietf-mobileip-optim-11 §4 layouts). IANA gave
16-19 to RFC 4881/4857, so mipvpn uses EXPERIMENTAL type numbers from the unassigned range
28-254, defined once here (:data:`BINDING_WARNING` ... :data:`BINDING_ACK`); they are
module-level and can be overridden with :func:`configure_binding_types`:

- Binding Warning: ``Type(8) Reserved(24) HomeAddr(32) TargetAddr(32)*n``
- Binding Request: ``Type(8) Reserved(24) HomeAddr(32) Identification(64)``
- Binding Update:  ``Type(8) A|I|M|G|Rsv(4) Lifetime(16) HomeAddr(32) CoA(32)
  Identification(64) Extensions``
- Binding Ack:     ``Type(8) Reserved(16) Status(8) HomeAddr(32) Identification(64)``

Route-optimisation authentication (experimental, RO08 §4.5 layout, the same as MN-HA):
type :data:`EXT_RO_AUTH` = 35 (not IANA-assigned), ``Type Length SPI(32) Authenticator``,
HMAC-MD5 over the message up to and including the SPI; always the last extension of a
Binding Update.

mipvpn vendor extensions (RFC 3115 CVSE, vendor :data:`MIPVPN_VENDOR_ID`):

- CVSE type 1 :data:`CVSE_PREVIOUS_FA` (RRQ): previous FA care-of address, 4 bytes;
- CVSE type 2 :data:`CVSE_SERVICE_UPDATE` (RRQ, claim 24): empty value; asks the home
  AAA to re-read the user's VPN profile and recompute the VPN set path;
- CVSE type 3 :data:`CVSE_VPN_TUNNEL` (Binding Update, claims 19-23): one ``TunnelSpec``
  as sub-TLVs ``SubType(8) Length(8) Value`` (:func:`encode_tunnel_extension`); the
  PSK is hidden with a keystream derived from the message's authentication key.

ICMP agent discovery (RFC 1256; 5944 §2.1): see :class:`AgentAdvertisement` and
:class:`AgentSolicitation`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

from controller.model.vpn import QosSpec, SecuritySpec, TunnelEnd, TunnelSpec
from controller.proto import nai as nai_syntax

# --------------------------------------------------------------------------- constants

MIP_PORT = 434

REGISTRATION_REQUEST = 1
REGISTRATION_REPLY = 3

# Experimental route-optimisation message types (NOT IANA-assigned; see module docstring).
BINDING_WARNING = 240
BINDING_REQUEST = 241
BINDING_UPDATE = 242
BINDING_ACK = 243

# RRQ flags (5944 §3.3)
FLAG_S = 0x80  # simultaneous bindings
FLAG_B = 0x40  # broadcast datagrams
FLAG_D = 0x20  # decapsulation by MN (co-located CoA)
FLAG_M = 0x10  # minimal encapsulation
FLAG_G = 0x08  # GRE encapsulation
FLAG_r = 0x04  # reserved, sent as zero
FLAG_T = 0x02  # reverse tunnelling requested (RFC 3024)
FLAG_x = 0x01  # reserved, sent as zero

# Binding Update flags (RO11 §4.3)
BU_FLAG_A = 0x80  # acknowledge wanted
BU_FLAG_I = 0x40  # identification present
BU_FLAG_M = 0x20  # minimal encapsulation
BU_FLAG_G = 0x10  # GRE encapsulation

# Extension types
EXT_PAD = 0
EXT_MN_HA_AUTH = 32
EXT_MN_FA_AUTH = 33
EXT_FA_HA_AUTH = 34
EXT_GENERALIZED_AUTH = 36
EXT_CVSE = 38
EXT_MN_NAI = 131
EXT_MN_FA_CHALLENGE = 132
EXT_NVSE = 134
GEN_AUTH_SUBTYPE_MN_AAA = 1
EXT_RO_AUTH = 35  # experimental (RO08 §4.5 number and layout; not IANA-assigned)

# mipvpn vendor extensions (RFC 3115), one vendor id for all (PROTOCOLS.md §9)
MIPVPN_VENDOR_ID = 32473   # RFC 5612 documentation PEN, until mipvpn has its own
CVSE_PREVIOUS_FA = 1       # RRQ: previous FA care-of address (4 bytes)
CVSE_SERVICE_UPDATE = 2    # RRQ: service update request (claim 24), empty value
CVSE_VPN_TUNNEL = 3        # Binding Update: one TunnelSpec (sub-TLVs, hidden PSK)

# Registration Reply codes (IANA; 5944 §3.4)
CODE_ACCEPTED = 0
CODE_ACCEPTED_NO_SIMULTANEOUS = 1
CODE_FA_UNSPECIFIED = 64
CODE_FA_ADMIN_PROHIBITED = 65
CODE_FA_INSUFFICIENT_RESOURCES = 66
CODE_FA_MN_FAILED_AUTH = 67
CODE_FA_HA_FAILED_AUTH = 68
CODE_FA_LIFETIME_TOO_LONG = 69
CODE_FA_POORLY_FORMED_REQUEST = 70
CODE_FA_POORLY_FORMED_REPLY = 71
CODE_FA_REG_TIMEOUT = 78
CODE_FA_HA_UNREACHABLE = 88
CODE_FA_MISSING_NAI = 97
CODE_FA_UNKNOWN_CHALLENGE = 104
CODE_FA_MISSING_CHALLENGE = 105
CODE_FA_STALE_CHALLENGE = 106
CODE_HA_UNSPECIFIED = 128
CODE_HA_ADMIN_PROHIBITED = 129
CODE_HA_INSUFFICIENT_RESOURCES = 130
CODE_HA_MN_FAILED_AUTH = 131
CODE_HA_FA_FAILED_AUTH = 132
CODE_HA_IDENTIFICATION_MISMATCH = 133
CODE_HA_POORLY_FORMED_REQUEST = 134
CODE_HA_UNKNOWN_HA_ADDRESS = 136

REPLY_CODE_NAMES: dict[int, str] = {
    0: "accepted",
    1: "accepted, no simultaneous bindings",
    64: "FA: unspecified",
    65: "FA: administratively prohibited",
    66: "FA: insufficient resources",
    67: "FA: mobile node failed authentication",
    68: "FA: home agent failed authentication",
    69: "FA: requested lifetime too long",
    70: "FA: poorly formed request",
    71: "FA: poorly formed reply",
    78: "FA: registration timeout",
    88: "FA: home agent unreachable",
    97: "FA: missing NAI",
    104: "FA: unknown challenge",
    105: "FA: missing challenge",
    106: "FA: stale challenge",
    128: "HA: unspecified",
    129: "HA: administratively prohibited",
    130: "HA: insufficient resources",
    131: "HA: mobile node failed authentication",
    132: "HA: foreign agent failed authentication",
    133: "HA: registration identification mismatch",
    134: "HA: poorly formed request",
    136: "HA: unknown home agent address",
}

# Binding Acknowledge status (RO11 §4.4)
BACK_OK = 0
BACK_UNSPECIFIED = 128
BACK_ADMIN_PROHIBITED = 129
BACK_NO_RESOURCES = 130
BACK_AUTH_FAILED = 131
BACK_IDENTIFICATION_MISMATCH = 133
BACK_POORLY_FORMED = 134

# Agent advertisement (RFC 1256, 5944 §2.1)
ICMP_ROUTER_ADVERTISEMENT = 9
ICMP_ROUTER_SOLICITATION = 10
ADV_CODE_ROUTES = 0
ADV_CODE_MOBILITY_ONLY = 16
ADV_EXT_MOBILITY_AGENT = 16
ADV_EXT_PREFIX_LENGTHS = 19
ADV_EXT_CHALLENGE = 24
ALL_SYSTEMS_MCAST = "224.0.0.1"
ALL_MOBILITY_AGENTS_MCAST = "224.0.0.11"

ADV_FLAG_R = 0x8000  # registration required
ADV_FLAG_B = 0x4000  # busy
ADV_FLAG_H = 0x2000  # home agent
ADV_FLAG_F = 0x1000  # foreign agent
ADV_FLAG_M = 0x0800  # minimal encapsulation
ADV_FLAG_G = 0x0400  # GRE encapsulation
ADV_FLAG_r = 0x0200  # reserved
ADV_FLAG_T = 0x0100  # reverse tunnelling (RFC 3024)
ADV_FLAG_U = 0x0080  # UDP tunnelling (RFC 3519)
ADV_FLAG_X = 0x0040  # revocation (RFC 3543)
ADV_FLAG_I = 0x0020  # regional registration (RFC 4857)


def configure_binding_types(warning: int, request: int, update: int, ack: int) -> None:
    """Override the experimental binding message type numbers (all four distinct, 28-254)."""
    global BINDING_WARNING, BINDING_REQUEST, BINDING_UPDATE, BINDING_ACK
    values = (warning, request, update, ack)
    if len(set(values)) != 4 or not all(28 <= v <= 254 for v in values):
        raise ValueError(f"binding types must be 4 distinct values in 28-254: {values}")
    BINDING_WARNING, BINDING_REQUEST, BINDING_UPDATE, BINDING_ACK = values


# --------------------------------------------------------------------------- errors


class MipDecodeError(ValueError):
    """A received message is malformed and must be dropped or denied.

    ``fa_code`` / ``ha_code`` are the reply codes an FA / HA should answer with
    (70 / 134 for a request; 71 for a poorly formed reply at an FA). ``code`` is the
    FA's code, since the FA is the first receiver of a request.
    """

    def __init__(self, msg: str, fa_code: int = CODE_FA_POORLY_FORMED_REQUEST,
                 ha_code: int = CODE_HA_POORLY_FORMED_REQUEST) -> None:
        super().__init__(msg)
        self.fa_code = fa_code
        self.ha_code = ha_code

    @property
    def code(self) -> int:
        return self.fa_code


# --------------------------------------------------------------------------- helpers


def _ip_to_bytes(addr: str) -> bytes:
    return ipaddress.IPv4Address(addr).packed


def _bytes_to_ip(data: bytes) -> str:
    return str(ipaddress.IPv4Address(data))


# --------------------------------------------------------------------------- extensions


@dataclass(frozen=True)
class Pad:
    """Type 0: one byte of padding (no Length field)."""


@dataclass(frozen=True)
class NaiExtension:
    """Type 131 (RFC 2794): ``Type Length NAI``."""

    nai: str


@dataclass(frozen=True)
class MnHaAuth:
    """Type 32: ``Type Length SPI(32) Authenticator``."""

    spi: int
    authenticator: bytes


@dataclass(frozen=True)
class MnFaAuth:
    """Type 33: same layout as :class:`MnHaAuth`."""

    spi: int
    authenticator: bytes


@dataclass(frozen=True)
class FaHaAuth:
    """Type 34: same layout as :class:`MnHaAuth`; never on deregistration."""

    spi: int
    authenticator: bytes


@dataclass(frozen=True)
class RoAuth:
    """Type 35 (experimental, RO08 §4.5): same layout as :class:`MnHaAuth`."""

    spi: int
    authenticator: bytes


@dataclass(frozen=True)
class GeneralizedAuth:
    """Type 36 (RFC 3012 §5): ``Type Subtype Length(16) SPI(32) Authenticator``."""

    subtype: int
    spi: int
    authenticator: bytes


@dataclass(frozen=True)
class ChallengeExtension:
    """Type 132 (RFC 3012 §3): ``Type Length Challenge``."""

    challenge: bytes


@dataclass(frozen=True)
class CriticalVendorExtension:
    """Type 38 CVSE (RFC 3115): ``Type Rsv(8) Length(16) VendorId(32) VendorType(16) Data``."""

    vendor_id: int
    vendor_type: int
    data: bytes


@dataclass(frozen=True)
class NormalVendorExtension:
    """Type 134 NVSE (RFC 3115): ``Type Length(8) Rsv(16) VendorId(32) VendorType(16) Data``."""

    vendor_id: int
    vendor_type: int
    data: bytes


@dataclass(frozen=True)
class UnknownExtension:
    """A skippable (128-255) extension we do not understand, kept as raw data."""

    type: int
    data: bytes


Extension = Union[Pad, NaiExtension, MnHaAuth, MnFaAuth, FaHaAuth, RoAuth, GeneralizedAuth,
                  ChallengeExtension, CriticalVendorExtension, NormalVendorExtension,
                  UnknownExtension]

_SIMPLE_AUTH: dict[int, type[MnHaAuth] | type[MnFaAuth] | type[FaHaAuth] | type[RoAuth]] = {
    EXT_MN_HA_AUTH: MnHaAuth, EXT_MN_FA_AUTH: MnFaAuth, EXT_FA_HA_AUTH: FaHaAuth,
    EXT_RO_AUTH: RoAuth,
}
_SIMPLE_AUTH_TYPE = {cls: t for t, cls in _SIMPLE_AUTH.items()}


def _short(ext_type: int, data: bytes) -> bytes:
    if len(data) > 255:
        raise ValueError(f"extension {ext_type} data too long ({len(data)} > 255)")
    return struct.pack("!BB", ext_type, len(data)) + data


def encode_extension(ext: Extension) -> bytes:
    """Serialise one extension."""
    if isinstance(ext, Pad):
        return b"\x00"
    if isinstance(ext, NaiExtension):
        return _short(EXT_MN_NAI, ext.nai.encode("utf-8"))
    if isinstance(ext, (MnHaAuth, MnFaAuth, FaHaAuth, RoAuth)):
        return _short(_SIMPLE_AUTH_TYPE[type(ext)], struct.pack("!I", ext.spi) + ext.authenticator)
    if isinstance(ext, GeneralizedAuth):
        body = struct.pack("!I", ext.spi) + ext.authenticator
        return struct.pack("!BBH", EXT_GENERALIZED_AUTH, ext.subtype, len(body)) + body
    if isinstance(ext, ChallengeExtension):
        return _short(EXT_MN_FA_CHALLENGE, ext.challenge)
    if isinstance(ext, CriticalVendorExtension):
        body = struct.pack("!IH", ext.vendor_id, ext.vendor_type) + ext.data
        if len(body) > 0xFFFF:
            raise ValueError("CVSE too long")
        return struct.pack("!BBH", EXT_CVSE, 0, len(body)) + body
    if isinstance(ext, NormalVendorExtension):
        return _short(EXT_NVSE, struct.pack("!HIH", 0, ext.vendor_id, ext.vendor_type) + ext.data)
    if isinstance(ext, UnknownExtension):
        if ext.type < 128:
            raise ValueError(f"cannot encode unknown non-skippable extension type {ext.type}")
        return _short(ext.type, ext.data)
    raise TypeError(f"not a Mobile IP extension: {ext!r}")


@dataclass(frozen=True)
class _ExtSpan:
    offset: int  # offset of the Type byte in the message
    header_len: int  # bytes before the SPI / data (2 short, 4 long)
    end: int
    ext: Extension


def _walk_extensions(data: bytes, start: int, fa_code: int, ha_code: int) -> list[_ExtSpan]:
    spans: list[_ExtSpan] = []
    off = start
    n = len(data)

    def err(msg: str) -> MipDecodeError:
        return MipDecodeError(f"{msg} at offset {off}", fa_code, ha_code)

    while off < n:
        ext_type = data[off]
        if ext_type == EXT_PAD:
            spans.append(_ExtSpan(off, 1, off + 1, Pad()))
            off += 1
            continue
        if ext_type in (EXT_GENERALIZED_AUTH, EXT_CVSE):
            if off + 4 > n:
                raise err(f"truncated extension {ext_type} header")
            second, length = struct.unpack_from("!BH", data, off + 1)
            hdr = 4
        else:
            if off + 2 > n:
                raise err(f"truncated extension {ext_type} header")
            second, length = 0, data[off + 1]
            hdr = 2
        body_start = off + hdr
        end = body_start + length
        if end > n:
            raise err(f"extension {ext_type} length {length} overruns message")
        body = data[body_start:end]
        ext: Extension
        if ext_type in _SIMPLE_AUTH or ext_type == EXT_GENERALIZED_AUTH:
            if length < 4:
                raise err(f"auth extension {ext_type} length {length} < 4")
            (spi,) = struct.unpack_from("!I", body)
            if ext_type == EXT_GENERALIZED_AUTH:
                ext = GeneralizedAuth(second, spi, body[4:])
            else:
                ext = _SIMPLE_AUTH[ext_type](spi, body[4:])
        elif ext_type == EXT_MN_NAI:
            if length == 0:
                raise err("empty NAI")
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise err("NAI is not UTF-8") from exc
            why = nai_syntax.problem(text)   # RFC 7542: a bad NAI is a malformed request
            if why is not None:
                raise err(f"MN-NAI: {why}")
            ext = NaiExtension(text)
        elif ext_type == EXT_MN_FA_CHALLENGE:
            ext = ChallengeExtension(body)
        elif ext_type == EXT_CVSE:
            if length < 6:
                raise err(f"CVSE length {length} < 6")
            vid, vtype = struct.unpack_from("!IH", body)
            ext = CriticalVendorExtension(vid, vtype, body[6:])
        elif ext_type == EXT_NVSE:
            if length < 8:
                raise err(f"NVSE length {length} < 8")
            _rsv, vid, vtype = struct.unpack_from("!HIH", body)
            ext = NormalVendorExtension(vid, vtype, body[8:])
        elif ext_type < 128:
            raise err(f"unknown non-skippable extension type {ext_type}")
        else:
            ext = UnknownExtension(ext_type, body)
        spans.append(_ExtSpan(off, hdr, end, ext))
        off = end
    return spans


# --------------------------------------------------------------------------- messages

E = TypeVar("E")


class _HasExtensions:
    extensions: list[Any]

    def find(self, cls: type[E]) -> E | None:
        """First extension of class ``cls``, or None."""
        for ext in self.extensions:
            if isinstance(ext, cls):
                return ext
        return None

    def find_all(self, cls: type[E]) -> list[E]:
        return [ext for ext in self.extensions if isinstance(ext, cls)]

    @property
    def nai(self) -> str | None:
        ext = self.find(NaiExtension)
        return ext.nai if ext else None

    @property
    def mn_aaa_auth(self) -> GeneralizedAuth | None:
        for ext in self.find_all(GeneralizedAuth):
            if ext.subtype == GEN_AUTH_SUBTYPE_MN_AAA:
                return ext
        return None

    def vendor_extension(self, vendor_id: int, vendor_type: int
                         ) -> CriticalVendorExtension | NormalVendorExtension | None:
        for ext in self.extensions:
            if (isinstance(ext, (CriticalVendorExtension, NormalVendorExtension))
                    and ext.vendor_id == vendor_id and ext.vendor_type == vendor_type):
                return ext
        return None


@dataclass
class RegistrationRequest(_HasExtensions):
    """RFC 5944 §3.3 (layout in the module docstring)."""

    flags: int
    lifetime: int
    home_address: str
    home_agent: str
    care_of_address: str
    identification: int
    extensions: list[Any] = field(default_factory=list)

    def has_flag(self, flag: int) -> bool:
        return bool(self.flags & flag)


@dataclass
class RegistrationReply(_HasExtensions):
    """RFC 5944 §3.4 (layout in the module docstring)."""

    code: int
    lifetime: int
    home_address: str
    home_agent: str
    identification: int
    extensions: list[Any] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.code in (CODE_ACCEPTED, CODE_ACCEPTED_NO_SIMULTANEOUS)


@dataclass
class BindingWarning:
    """RO11 §4.1 (experimental type): ``Type Rsv(24) HomeAddr TargetAddr*n``."""

    home_address: str
    targets: list[str] = field(default_factory=list)


@dataclass
class BindingRequest:
    """RO11 §4.2 (experimental type): ``Type Rsv(24) HomeAddr Identification(64)``."""

    home_address: str
    identification: int


@dataclass
class BindingUpdate(_HasExtensions):
    """RO11 §4.3 (experimental type): ``Type Flags(8) Lifetime(16) HomeAddr CoA Ident(64) ext``."""

    flags: int
    lifetime: int
    home_address: str
    care_of_address: str
    identification: int
    extensions: list[Any] = field(default_factory=list)

    @property
    def is_delete(self) -> bool:
        return self.lifetime == 0 or self.care_of_address == self.home_address


@dataclass
class BindingAck:
    """RO11 §4.4 (experimental type): ``Type Rsv(16) Status(8) HomeAddr Ident(64)``."""

    status: int
    home_address: str
    identification: int


MipMessage = Union[RegistrationRequest, RegistrationReply, BindingWarning, BindingRequest,
                   BindingUpdate, BindingAck]


def _encode_exts(exts: list[Any]) -> bytes:
    return b"".join(encode_extension(e) for e in exts)


def encode(msg: MipMessage) -> bytes:
    """Serialise a message (the UDP payload)."""
    if isinstance(msg, RegistrationRequest):
        return struct.pack("!BBH4s4s4sQ", REGISTRATION_REQUEST, msg.flags, msg.lifetime,
                           _ip_to_bytes(msg.home_address), _ip_to_bytes(msg.home_agent),
                           _ip_to_bytes(msg.care_of_address), msg.identification
                           ) + _encode_exts(msg.extensions)
    if isinstance(msg, RegistrationReply):
        return struct.pack("!BBH4s4sQ", REGISTRATION_REPLY, msg.code, msg.lifetime,
                           _ip_to_bytes(msg.home_address), _ip_to_bytes(msg.home_agent),
                           msg.identification) + _encode_exts(msg.extensions)
    if isinstance(msg, BindingWarning):
        return (struct.pack("!B3x4s", BINDING_WARNING, _ip_to_bytes(msg.home_address))
                + b"".join(_ip_to_bytes(t) for t in msg.targets))
    if isinstance(msg, BindingRequest):
        return struct.pack("!B3x4sQ", BINDING_REQUEST, _ip_to_bytes(msg.home_address),
                           msg.identification)
    if isinstance(msg, BindingUpdate):
        return struct.pack("!BBH4s4sQ", BINDING_UPDATE, msg.flags, msg.lifetime,
                           _ip_to_bytes(msg.home_address), _ip_to_bytes(msg.care_of_address),
                           msg.identification) + _encode_exts(msg.extensions)
    if isinstance(msg, BindingAck):
        return struct.pack("!BxxB4sQ", BINDING_ACK, msg.status, _ip_to_bytes(msg.home_address),
                           msg.identification)
    raise TypeError(f"not a Mobile IP message: {msg!r}")


def _codes_for(msg_type: int) -> tuple[int, int]:
    if msg_type == REGISTRATION_REPLY:
        return CODE_FA_POORLY_FORMED_REPLY, CODE_HA_POORLY_FORMED_REQUEST
    if msg_type in (BINDING_UPDATE, BINDING_REQUEST, BINDING_ACK, BINDING_WARNING):
        return BACK_POORLY_FORMED, BACK_POORLY_FORMED
    return CODE_FA_POORLY_FORMED_REQUEST, CODE_HA_POORLY_FORMED_REQUEST


def _fixed(data: bytes, size: int, what: str, codes: tuple[int, int]) -> None:
    if len(data) < size:
        raise MipDecodeError(f"truncated {what}: {len(data)} < {size} bytes", *codes)


def _decode_with_spans(data: bytes) -> tuple[MipMessage, list[_ExtSpan]]:
    if not data:
        raise MipDecodeError("empty message")
    msg_type = data[0]
    codes = _codes_for(msg_type)
    if msg_type == REGISTRATION_REQUEST:
        _fixed(data, 24, "Registration Request", codes)
        _, flags, life, ha, hagent, coa, ident = struct.unpack_from("!BBH4s4s4sQ", data)
        spans = _walk_extensions(data, 24, *codes)
        return RegistrationRequest(flags, life, _bytes_to_ip(ha), _bytes_to_ip(hagent),
                                   _bytes_to_ip(coa), ident, [s.ext for s in spans]), spans
    if msg_type == REGISTRATION_REPLY:
        _fixed(data, 20, "Registration Reply", codes)
        _, code, life, ha, hagent, ident = struct.unpack_from("!BBH4s4sQ", data)
        spans = _walk_extensions(data, 20, *codes)
        return RegistrationReply(code, life, _bytes_to_ip(ha), _bytes_to_ip(hagent), ident,
                                 [s.ext for s in spans]), spans
    if msg_type == BINDING_WARNING:
        _fixed(data, 8, "Binding Warning", codes)
        if len(data) % 4:
            raise MipDecodeError("Binding Warning: trailing bytes after target list", *codes)
        targets = [_bytes_to_ip(data[i:i + 4]) for i in range(8, len(data), 4)]
        return BindingWarning(_bytes_to_ip(data[4:8]), targets), []
    if msg_type == BINDING_REQUEST:
        _fixed(data, 16, "Binding Request", codes)
        if len(data) != 16:
            raise MipDecodeError("Binding Request: trailing bytes", *codes)
        _, ha, ident = struct.unpack("!B3x4sQ", data)
        return BindingRequest(_bytes_to_ip(ha), ident), []
    if msg_type == BINDING_UPDATE:
        _fixed(data, 20, "Binding Update", codes)
        _, flags, life, ha, coa, ident = struct.unpack_from("!BBH4s4sQ", data)
        spans = _walk_extensions(data, 20, *codes)
        return BindingUpdate(flags, life, _bytes_to_ip(ha), _bytes_to_ip(coa), ident,
                             [s.ext for s in spans]), spans
    if msg_type == BINDING_ACK:
        _fixed(data, 16, "Binding Acknowledge", codes)
        if len(data) != 16:
            raise MipDecodeError("Binding Acknowledge: trailing bytes", *codes)
        _, status, ha, ident = struct.unpack("!BxxB4sQ", data)
        return BindingAck(status, _bytes_to_ip(ha), ident), []
    raise MipDecodeError(f"unsupported Mobile IP message type {msg_type}")


def decode(data: bytes) -> MipMessage:
    """Parse a UDP-434 payload strictly; raise :class:`MipDecodeError` on any defect."""
    return _decode_with_spans(bytes(data))[0]


# --------------------------------------------------------------------------- authentication


class AuthKind(enum.Enum):
    MN_HA = EXT_MN_HA_AUTH
    MN_FA = EXT_MN_FA_AUTH
    FA_HA = EXT_FA_HA_AUTH
    RO = EXT_RO_AUTH  # route-optimisation auth (Binding Update), experimental
    MN_AAA = EXT_GENERALIZED_AUTH  # subtype 1


AUTH_LEN = 16  # HMAC-MD5
_KIND_CLASS: dict[AuthKind, type] = {AuthKind.MN_HA: MnHaAuth, AuthKind.MN_FA: MnFaAuth,
                                     AuthKind.FA_HA: FaHaAuth, AuthKind.RO: RoAuth}


def _auth_header(kind: AuthKind, spi: int, auth_len: int = AUTH_LEN) -> bytes:
    if kind is AuthKind.MN_AAA:
        return struct.pack("!BBHI", EXT_GENERALIZED_AUTH, GEN_AUTH_SUBTYPE_MN_AAA,
                           4 + auth_len, spi)
    return struct.pack("!BBI", kind.value, 4 + auth_len, spi)


def compute_authenticator(covered: bytes, key: bytes) -> bytes:
    """Default algorithm: HMAC-MD5(key, covered) (5944 §3.5.1, 3012 §6)."""
    return hmac.new(key, covered, hashlib.md5).digest()


def append_auth(raw: bytes, kind: AuthKind, spi: int, key: bytes) -> bytes:
    """Append an HMAC-MD5 authentication extension of ``kind`` to the encoded message."""
    covered = bytes(raw) + _auth_header(kind, spi)
    return covered + compute_authenticator(covered, key)


def _find_auth_span(raw: bytes, kind: AuthKind) -> _ExtSpan | None:
    _msg, spans = _decode_with_spans(raw)
    for span in spans:
        ext = span.ext
        if kind is AuthKind.MN_AAA:
            if isinstance(ext, GeneralizedAuth) and ext.subtype == GEN_AUTH_SUBTYPE_MN_AAA:
                return span
        elif type(ext) is _KIND_CLASS[kind]:
            return span
    return None


def verify_auth(raw: bytes, kind: AuthKind, key: bytes) -> bool:
    """Locate the first ``kind`` authentication extension in ``raw`` and check it.

    False if the message is malformed, the extension is absent, or the value is wrong.
    """
    raw = bytes(raw)
    try:
        span = _find_auth_span(raw, kind)
    except MipDecodeError:
        return False
    if span is None:
        return False
    auth_start = span.offset + span.header_len + 4
    expected = compute_authenticator(raw[:auth_start], key)
    return hmac.compare_digest(expected, raw[auth_start:span.end])


def mn_aaa_auth_offsets(raw: bytes) -> tuple[int, int, int]:
    """(auth_input_length, authenticator_length, authenticator_offset) for RFC 4004's
    MIP-Auth-Input-Data-Length / MIP-Authenticator-Length / MIP-Authenticator-Offset AVPs:
    byte counts into the raw RRQ. The input covers everything up to and including the
    MN-AAA extension's SPI, so input length == authenticator offset.
    """
    span = _find_auth_span(bytes(raw), AuthKind.MN_AAA)
    if span is None:
        raise MipDecodeError("no MN-AAA authentication extension", CODE_FA_MN_FAILED_AUTH,
                             CODE_HA_MN_FAILED_AUTH)
    auth_offset = span.offset + span.header_len + 4
    return auth_offset, span.end - auth_offset, auth_offset


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
        out += hmac.new(key, b"mipvpn-psk" + bytes([counter]) + salt, hashlib.sha256).digest()
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
        security=SecuritySpec(ike=text(TS_IKE) or SecuritySpec.ike,
                              esp=text(TS_ESP) or SecuritySpec.esp),
        qos=QosSpec(rate_kbps=struct.unpack("!I", rate)[0], dscp=dscp[0]),
        initiator=text(TS_INITIATOR))


# --------------------------------------------------------------------------- identification

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01


def ntp_identification(unix_time: float, rand: int = 0) -> int:
    """RFC 5944 §5.7 timestamp: high 32 = seconds since 1900, low 32 = fraction.

    The fraction's lowest 8 bits (below ~4 ns, never meaningful) are replaced by ``rand``
    so that two Identifications made in the same instant still differ.
    """
    ntp = unix_time + NTP_UNIX_OFFSET
    seconds = int(ntp) & 0xFFFFFFFF
    fraction = int((ntp - int(ntp)) * (1 << 32)) & 0xFFFFFF00
    return (seconds << 32) | fraction | (rand & 0xFF)


def identification_time(ident: int) -> float:
    """Unix time encoded in an NTP-format Identification."""
    seconds = ident >> 32
    fraction = ident & 0xFFFFFFFF
    return seconds - NTP_UNIX_OFFSET + fraction / (1 << 32)


# --------------------------------------------------------------------------- agent discovery


def icmp_checksum(data: bytes) -> int:
    """Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass
class AgentAdvertisement:
    """ICMP Router Advertisement (RFC 1256) + Mobility Agent Advertisement ext (5944 §2.1.1).

    ::

        Type=9(8) Code(8: 0 routes traffic, 16 mobility only) Checksum(16)
        NumAddrs(8) AddrEntrySize(8)=2 Lifetime(16)
        RouterAddress[i](32) PreferenceLevel[i](32)   (NumAddrs = 1 here)
        Type=16(8) Length(8)=6+4N Sequence(16) RegistrationLifetime(16) Flags(16)
        CareOfAddress(32)*N
        [Type=19 Prefix-Lengths, Type=24 Challenge, Type=0 pad ...]
    """

    router_address: str
    preference: int
    lifetime: int
    sequence: int
    registration_lifetime: int
    flags: int
    care_of_addresses: list[str] = field(default_factory=list)
    code: int = ADV_CODE_MOBILITY_ONLY
    challenge: bytes | None = None
    prefix_lengths: list[int] | None = None

    @property
    def is_foreign_agent(self) -> bool:
        return bool(self.flags & ADV_FLAG_F)

    @property
    def is_home_agent(self) -> bool:
        return bool(self.flags & ADV_FLAG_H)

    def encode(self) -> bytes:
        body = struct.pack("!BBH4si", 1, 2, self.lifetime, _ip_to_bytes(self.router_address),
                           self.preference)
        coas = b"".join(_ip_to_bytes(a) for a in self.care_of_addresses)
        body += struct.pack("!BBHHH", ADV_EXT_MOBILITY_AGENT, 6 + len(coas), self.sequence,
                            self.registration_lifetime, self.flags) + coas
        if self.prefix_lengths is not None:
            body += _short(ADV_EXT_PREFIX_LENGTHS, bytes(self.prefix_lengths))
        if self.challenge is not None:
            body += _short(ADV_EXT_CHALLENGE, self.challenge)
        head = struct.pack("!BBH", ICMP_ROUTER_ADVERTISEMENT, self.code, 0)
        csum = icmp_checksum(head + body)
        return struct.pack("!BBH", ICMP_ROUTER_ADVERTISEMENT, self.code, csum) + body


@dataclass
class AgentSolicitation:
    """ICMP Router Solicitation (RFC 1256): ``Type=10 Code=0 Checksum(16) Reserved(32)``."""

    def encode(self) -> bytes:
        csum = icmp_checksum(struct.pack("!BBHI", ICMP_ROUTER_SOLICITATION, 0, 0, 0))
        return struct.pack("!BBHI", ICMP_ROUTER_SOLICITATION, 0, csum, 0)


def decode_icmp(data: bytes) -> AgentAdvertisement | AgentSolicitation:
    """Parse an ICMP message (no IP header). Raises :class:`MipDecodeError` if it is not a
    valid agent advertisement / solicitation (bad checksum, no mobility extension, ...)."""
    data = bytes(data)
    if len(data) < 8:
        raise MipDecodeError("truncated ICMP message")
    icmp_type, code = data[0], data[1]
    if icmp_checksum(data) != 0:
        raise MipDecodeError("bad ICMP checksum")
    if icmp_type == ICMP_ROUTER_SOLICITATION:
        if code != 0:
            raise MipDecodeError(f"bad solicitation code {code}")
        return AgentSolicitation()
    if icmp_type != ICMP_ROUTER_ADVERTISEMENT:
        raise MipDecodeError(f"not an agent advertisement/solicitation: ICMP type {icmp_type}")
    if code not in (ADV_CODE_ROUTES, ADV_CODE_MOBILITY_ONLY):
        raise MipDecodeError(f"bad advertisement code {code}")
    num, entry_size, lifetime = struct.unpack_from("!BBH", data, 4)
    if entry_size < 2:
        raise MipDecodeError(f"bad address entry size {entry_size}")
    off = 8 + num * entry_size * 4
    if off > len(data):
        raise MipDecodeError("truncated router address list")
    if num:
        router, pref = struct.unpack_from("!4si", data, 8)
        router_address, preference = _bytes_to_ip(router), pref
    else:
        router_address, preference = "0.0.0.0", 0
    adv: AgentAdvertisement | None = None
    challenge: bytes | None = None
    prefix_lengths: list[int] | None = None
    while off < len(data):
        ext_type = data[off]
        if ext_type == 0:
            off += 1
            continue
        if off + 2 > len(data):
            raise MipDecodeError("truncated advertisement extension header")
        length = data[off + 1]
        body = data[off + 2:off + 2 + length]
        if len(body) != length:
            raise MipDecodeError(f"advertisement extension {ext_type} overruns message")
        if ext_type == ADV_EXT_MOBILITY_AGENT:
            if length < 6 or (length - 6) % 4:
                raise MipDecodeError(f"bad mobility agent extension length {length}")
            seq, reg_life, flags = struct.unpack_from("!HHH", body)
            coas = [_bytes_to_ip(body[i:i + 4]) for i in range(6, length, 4)]
            adv = AgentAdvertisement(router_address, preference, lifetime, seq, reg_life,
                                     flags, coas, code)
        elif ext_type == ADV_EXT_PREFIX_LENGTHS:
            prefix_lengths = list(body)
        elif ext_type == ADV_EXT_CHALLENGE:
            challenge = body
        off += 2 + length
    if adv is None:
        raise MipDecodeError("router advertisement without mobility agent extension")
    adv.challenge = challenge
    adv.prefix_lengths = prefix_lengths
    return adv
