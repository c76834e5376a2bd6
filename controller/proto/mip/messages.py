"""Registration Request / Reply and the route-optimisation binding messages: dataclasses,
``encode`` and strict ``decode``."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

# the binding message types are read at call time: configure_binding_types rebinds them
import controller.proto.mip.numbers as _numbers
from controller.proto.mip.errors import _bytes_to_ip, _ip_to_bytes, MipDecodeError
from controller.proto.mip.extensions import (_ExtSpan, _walk_extensions,
                                             CriticalVendorExtension, encode_extension,
                                             GeneralizedAuth, NaiExtension,
                                             NormalVendorExtension)
from controller.proto.mip.numbers import (BACK_POORLY_FORMED, CODE_ACCEPTED,
                                          CODE_ACCEPTED_NO_SIMULTANEOUS,
                                          CODE_FA_POORLY_FORMED_REPLY,
                                          CODE_FA_POORLY_FORMED_REQUEST,
                                          CODE_HA_POORLY_FORMED_REQUEST,
                                          GEN_AUTH_SUBTYPE_MN_AAA, REGISTRATION_REPLY,
                                          REGISTRATION_REQUEST)

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

    def __init__(self, flags: int, lifetime: int, home_address: str, home_agent: str,
                 care_of_address: str, identification: int,
                 extensions: list[Any] | None = None) -> None:
        self.flags = flags
        self.lifetime = lifetime
        self.home_address = home_address
        self.home_agent = home_agent
        self.care_of_address = care_of_address
        self.identification = identification
        self.extensions = extensions if extensions is not None else []

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

    def __init__(self, code: int, lifetime: int, home_address: str, home_agent: str,
                 identification: int, extensions: list[Any] | None = None) -> None:
        self.code = code
        self.lifetime = lifetime
        self.home_address = home_address
        self.home_agent = home_agent
        self.identification = identification
        self.extensions = extensions if extensions is not None else []

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
        return (struct.pack("!B3x4s", _numbers.BINDING_WARNING, _ip_to_bytes(msg.home_address))
                + b"".join(_ip_to_bytes(t) for t in msg.targets))
    if isinstance(msg, BindingRequest):
        return struct.pack("!B3x4sQ", _numbers.BINDING_REQUEST, _ip_to_bytes(msg.home_address),
                           msg.identification)
    if isinstance(msg, BindingUpdate):
        return struct.pack("!BBH4s4sQ", _numbers.BINDING_UPDATE, msg.flags, msg.lifetime,
                           _ip_to_bytes(msg.home_address), _ip_to_bytes(msg.care_of_address),
                           msg.identification) + _encode_exts(msg.extensions)
    if isinstance(msg, BindingAck):
        return struct.pack("!BxxB4sQ", _numbers.BINDING_ACK, msg.status,
                           _ip_to_bytes(msg.home_address), msg.identification)
    raise TypeError(f"not a Mobile IP message: {msg!r}")


def _codes_for(msg_type: int) -> tuple[int, int]:
    if msg_type == REGISTRATION_REPLY:
        return CODE_FA_POORLY_FORMED_REPLY, CODE_HA_POORLY_FORMED_REQUEST
    if msg_type in (_numbers.BINDING_UPDATE, _numbers.BINDING_REQUEST, _numbers.BINDING_ACK,
                    _numbers.BINDING_WARNING):
        return BACK_POORLY_FORMED, BACK_POORLY_FORMED
    return CODE_FA_POORLY_FORMED_REQUEST, CODE_HA_POORLY_FORMED_REQUEST


def _fixed(data: bytes, size: int, what: str, codes: tuple[int, int]) -> None:
    if len(data) < size:
        raise MipDecodeError(f"truncated {what}: {len(data)} < {size} bytes", *codes)


# Registration Request / Reply bytes -> what they decode to (issue 15): one
# registration's RRQ and RRP are decoded by the FA, the AAAF, the AAAH and the HA of one
# process, about ten times.  Bounded by clearing when full; each caller gets its own
# message object and extension list (the messages are mutable dataclasses; the
# extensions and spans are frozen).  Only these two types: the binding messages' type
# numbers can be reconfigured (``configure_binding_types``).  256 entries: two per
# registration at 128 outstanding; a renewal brings new bytes, and entries kept for
# hundreds of registrations lived long enough to be traversed twice by the cyclic GC.
_DECODED: dict[bytes, tuple[MipMessage, list[_ExtSpan]]] = {}
_DECODED_MAX = 256


def _decode_with_spans(data: bytes) -> tuple[MipMessage, list[_ExtSpan]]:
    hit = _DECODED.get(data)
    if hit is None:
        hit = _decode_uncached(data)
        if data[0] not in (REGISTRATION_REQUEST, REGISTRATION_REPLY):
            return hit
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        _DECODED[data] = hit
    msg, spans = hit
    return _fresh_copy(msg), list(spans)


def _fresh_copy(msg: MipMessage) -> MipMessage:
    """A cached Registration Request / Reply as a new object with its own extension
    list (by its constructor: the compiled build has no ``__dict__`` to copy)."""
    if isinstance(msg, RegistrationRequest):
        return RegistrationRequest(msg.flags, msg.lifetime, msg.home_address, msg.home_agent,
                                   msg.care_of_address, msg.identification,
                                   list(msg.extensions))
    if isinstance(msg, RegistrationReply):
        return RegistrationReply(msg.code, msg.lifetime, msg.home_address, msg.home_agent,
                                 msg.identification, list(msg.extensions))
    raise TypeError(f"not a cached Mobile IP message: {msg!r}")


def _decode_uncached(data: bytes) -> tuple[MipMessage, list[_ExtSpan]]:
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
    if msg_type == _numbers.BINDING_WARNING:
        _fixed(data, 8, "Binding Warning", codes)
        if len(data) % 4:
            raise MipDecodeError("Binding Warning: trailing bytes after target list", *codes)
        targets = [_bytes_to_ip(data[i:i + 4]) for i in range(8, len(data), 4)]
        return BindingWarning(_bytes_to_ip(data[4:8]), targets), []
    if msg_type == _numbers.BINDING_REQUEST:
        _fixed(data, 16, "Binding Request", codes)
        if len(data) != 16:
            raise MipDecodeError("Binding Request: trailing bytes", *codes)
        _, ha, ident = struct.unpack("!B3x4sQ", data)
        return BindingRequest(_bytes_to_ip(ha), ident), []
    if msg_type == _numbers.BINDING_UPDATE:
        _fixed(data, 20, "Binding Update", codes)
        _, flags, life, ha, coa, ident = struct.unpack_from("!BBH4s4sQ", data)
        spans = _walk_extensions(data, 20, *codes)
        return BindingUpdate(flags, life, _bytes_to_ip(ha), _bytes_to_ip(coa), ident,
                             [s.ext for s in spans]), spans
    if msg_type == _numbers.BINDING_ACK:
        _fixed(data, 16, "Binding Acknowledge", codes)
        if len(data) != 16:
            raise MipDecodeError("Binding Acknowledge: trailing bytes", *codes)
        _, status, ha, ident = struct.unpack("!BxxB4sQ", data)
        return BindingAck(status, _bytes_to_ip(ha), ident), []
    raise MipDecodeError(f"unsupported Mobile IP message type {msg_type}")


def decode(data: bytes) -> MipMessage:
    """Parse a UDP-434 payload strictly; raise :class:`MipDecodeError` on any defect."""
    return _decode_with_spans(bytes(data))[0]
