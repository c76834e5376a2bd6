"""Registration extensions (RFC 5944 §1.9-1.11, RFC 3012, RFC 3115, RFC 2794): their
dataclasses, encoding, and the strict extension walker."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Union

from controller.proto import nai as nai_syntax
from controller.proto.mip.errors import MipDecodeError
from controller.proto.mip.numbers import (EXT_CVSE, EXT_FA_HA_AUTH, EXT_GENERALIZED_AUTH,
                                          EXT_MN_FA_AUTH, EXT_MN_FA_CHALLENGE,
                                          EXT_MN_HA_AUTH, EXT_MN_NAI, EXT_NVSE, EXT_PAD,
                                          EXT_RO_AUTH)

# --------------------------------------------------------------------------- extensions


@dataclass(frozen=True)
class Pad:
    """Type 0: one byte of padding (no Length field)."""


@dataclass(frozen=True)
class NaiExtension:
    """Type 131 (RFC 2794): ``Type Length NAI``."""

    nai: str

    def __init__(self, nai: str) -> None:
        object.__setattr__(self, "nai", nai)


@dataclass(frozen=True)
class MnHaAuth:
    """Type 32: ``Type Length SPI(32) Authenticator``."""

    spi: int
    authenticator: bytes

    def __init__(self, spi: int, authenticator: bytes) -> None:
        object.__setattr__(self, "spi", spi)
        object.__setattr__(self, "authenticator", authenticator)


@dataclass(frozen=True)
class MnFaAuth:
    """Type 33: same layout as :class:`MnHaAuth`."""

    spi: int
    authenticator: bytes

    def __init__(self, spi: int, authenticator: bytes) -> None:
        object.__setattr__(self, "spi", spi)
        object.__setattr__(self, "authenticator", authenticator)


@dataclass(frozen=True)
class FaHaAuth:
    """Type 34: same layout as :class:`MnHaAuth`; never on deregistration."""

    spi: int
    authenticator: bytes

    def __init__(self, spi: int, authenticator: bytes) -> None:
        object.__setattr__(self, "spi", spi)
        object.__setattr__(self, "authenticator", authenticator)


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

    def __init__(self, subtype: int, spi: int, authenticator: bytes) -> None:
        object.__setattr__(self, "subtype", subtype)
        object.__setattr__(self, "spi", spi)
        object.__setattr__(self, "authenticator", authenticator)


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

    def __init__(self, vendor_id: int, vendor_type: int, data: bytes) -> None:
        object.__setattr__(self, "vendor_id", vendor_id)
        object.__setattr__(self, "vendor_type", vendor_type)
        object.__setattr__(self, "data", data)


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

    def __init__(self, offset: int, header_len: int, end: int, ext: Extension) -> None:
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "header_len", header_len)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "ext", ext)


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
