"""Authentication extensions (RFC 5944 §3.5.1; RFC 3012 §6): HMAC-MD5 authenticators,
appending and verifying them on raw messages."""

from __future__ import annotations

import enum
import hmac
import struct

from controller.proto.mip.errors import MipDecodeError
from controller.proto.mip.extensions import (_ExtSpan, FaHaAuth, GeneralizedAuth, MnFaAuth,
                                             MnHaAuth, RoAuth)
from controller.proto.mip.messages import _decode_with_spans
from controller.proto.mip.numbers import (CODE_FA_MN_FAILED_AUTH, CODE_HA_MN_FAILED_AUTH,
                                          EXT_FA_HA_AUTH, EXT_GENERALIZED_AUTH,
                                          EXT_MN_FA_AUTH, EXT_MN_HA_AUTH, EXT_RO_AUTH,
                                          GEN_AUTH_SUBTYPE_MN_AAA)

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
    return hmac.digest(key, covered, "md5")


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
