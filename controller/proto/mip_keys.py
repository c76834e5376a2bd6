"""Mobile IPv4 key material from AAA (RFC 3957, RFC 4004 §9): the MN-FA key the home AAA
derives for a session, and the nonce that lets the mobile node derive the same key.

Pure codec and derivation, no I/O.  Used by the home AAA (derives the key, hands the
nonce out), the foreign agent (puts the nonce into the Registration Reply), the mobile
node (derives the key, signs its next requests with an MN-FA authentication extension,
type 33) and the foreign AAA (verifies that extension before answering a move locally).

The nonce travels in the Registration Reply in mipvpn's Normal Vendor/Organization
Specific Extension (NVSE, type 134, RFC 3115; vendor ``mip.MIPVPN_VENDOR_ID``, vendor type
``NVSE_MN_FA_NONCE_REPLY``), whose data is the AAA subtype data of RFC 3957's
"Generalized MN-FA Key Generation Nonce Reply" extension::

    Lifetime(32) SPI(32) Key-Generation-Nonce(>= 4 bytes)

RFC 3957 gives that extension its own (non-skippable) type number; docs/decisions.md
(2026-12-04) says why we carry it in a skippable vendor extension for now: a node that
does not know it ignores it and simply keeps registering through the home AAA.
"""

from __future__ import annotations

import hmac
import secrets
import struct
from dataclasses import dataclass, field

from controller.proto import mip

#: NVSE vendor type (vendor mip.MIPVPN_VENDOR_ID): MN-FA key generation nonce reply
NVSE_MN_FA_NONCE_REPLY = 4
#: SPIs of the derived associations (RFC 5944: 0-255 reserved).  One MN-FA association
#: per session (verified by the foreign AAA for every FA of its domain), one FA-HA
#: association per (session, FA).
MN_FA_SPI = 0x100 + 33
FA_HA_SPI = 0x100 + 34
NONCE_LEN = 16
MIN_NONCE_LEN = 4


@dataclass(frozen=True)
class NonceReply:
    """The AAA subtype data of RFC 3957's MN-FA Key Generation Nonce Reply."""

    spi: int
    lifetime: int
    nonce: bytes = field(repr=False)

    def __init__(self, spi: int, lifetime: int, nonce: bytes) -> None:
        object.__setattr__(self, "spi", spi)
        object.__setattr__(self, "lifetime", lifetime)
        object.__setattr__(self, "nonce", nonce)


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_LEN)


def mn_fa_key(mn_aaa_key: bytes, nonce: bytes, nai: str) -> bytes:
    """RFC 3957 key derivation: HMAC-SHA1(AAA-key, Key-Generation-Nonce || MN-NAI).
    Both the home AAA and the mobile node compute it; the key never crosses the access
    link."""
    return hmac.digest(mn_aaa_key, bytes(nonce) + nai.encode("utf-8"), "sha1")


def nonce_reply_extension(reply: NonceReply) -> mip.NormalVendorExtension:
    return mip.NormalVendorExtension(
        mip.MIPVPN_VENDOR_ID, NVSE_MN_FA_NONCE_REPLY,
        struct.pack("!II", reply.lifetime, reply.spi) + bytes(reply.nonce))


def nonce_reply(msg: mip.RegistrationReply) -> NonceReply | None:
    """The nonce reply in ``msg``, None if there is none; a malformed one raises
    ``mip.MipDecodeError`` (code 71, poorly formed reply)."""
    ext = msg.vendor_extension(mip.MIPVPN_VENDOR_ID, NVSE_MN_FA_NONCE_REPLY)
    if ext is None:
        return None
    data = ext.data
    if len(data) < 8 + MIN_NONCE_LEN:
        raise mip.MipDecodeError(f"MN-FA nonce reply: {len(data)} bytes < 12",
                                 mip.CODE_FA_POORLY_FORMED_REPLY,
                                 mip.CODE_HA_POORLY_FORMED_REQUEST)
    lifetime, spi = struct.unpack_from("!II", data)
    if spi < 256:
        raise mip.MipDecodeError(f"MN-FA nonce reply: reserved SPI {spi}",
                                 mip.CODE_FA_POORLY_FORMED_REPLY,
                                 mip.CODE_HA_POORLY_FORMED_REQUEST)
    return NonceReply(spi, lifetime, data[8:])


def with_nonce_reply(rrp_raw: bytes, reply: NonceReply) -> bytes:
    """``rrp_raw`` (a Registration Reply, MN-HA authenticator included) with the nonce
    reply appended after it, as an FA adds extensions for the MN (RFC 5944 §3.7.3)."""
    return bytes(rrp_raw) + mip.encode_extension(nonce_reply_extension(reply))


def verify_mn_fa(raw: bytes, spi: int, key: bytes) -> bool:
    """The RRQ's MN-FA authentication extension has ``spi`` and verifies with ``key``."""
    try:
        msg = mip.decode(raw)
    except mip.MipDecodeError:
        return False
    ext = msg.find(mip.MnFaAuth) if isinstance(msg, mip.RegistrationRequest) else None
    return (ext is not None and ext.spi == spi and bool(key)
            and mip.verify_auth(raw, mip.AuthKind.MN_FA, key))
