"""What the mobility agents answer a Registration Request that breaks a rule, for
clients we did not write (issue 18; the table with its tests: docs/conformance.md).

Pure: bytes and decoded messages in, a Registration Reply code (or a verdict) out.
The foreign agent (``fa_refusal``) and the home agent (``ha_refusal``) call these
before anything else is decided; the other checks (NAI, authentication, care-of
address, lifetime, identification, home agent address) stay where they were.

Sources: RFC 5944 §3.3 (flag bits), §3.7.2 (FA: validity checks, pending list,
denials), §3.7.3 (FA: replies), §3.8.2-3.8.3 (HA), §5.7 (identification); IANA "Mobile
IPv4 Numbers" (unknown extension type 0-127: the message is silently discarded,
128-255: that extension is skipped); RFC 3024 (72 / 139 requested encapsulation
unavailable); RFC 3115 §2 (a CVSE the receiver does not understand: 100 at the FA,
140 at the HA, for a CVSE the mobile node sent).
"""

from __future__ import annotations

import struct

from controller.proto import mip

#: the 'r' and 'x' bits: sent as zero; a request with either set is poorly formed
#: (RFC 5944 §3.7.2.1: 70 at the FA; §3.8.2.1: 134 at the HA)
RESERVED_FLAGS = mip.FLAG_r | mip.FLAG_x
#: minimal and GRE encapsulation: mipvpn carries the MN's traffic in IPsec tunnels
#: between gateways (DESIGN.md), never in a Mobile IP tunnel of another kind
UNSUPPORTED_ENCAPSULATION = mip.FLAG_M | mip.FLAG_G
#: the CVSEs mipvpn's FA and home side understand (vendor, CVSE-Type)
UNDERSTOOD_CVSE = frozenset({(mip.MIPVPN_VENDOR_ID, mip.CVSE_PREVIOUS_FA),
                             (mip.MIPVPN_VENDOR_ID, mip.CVSE_SERVICE_UPDATE)})

#: extension types of a Registration Request our codec understands (0-127 part):
#: any other in 0-127 makes the message one to discard silently
_KNOWN_CRITICAL = frozenset({mip.EXT_PAD, mip.EXT_MN_HA_AUTH, mip.EXT_MN_FA_AUTH,
                             mip.EXT_FA_HA_AUTH, mip.EXT_RO_AUTH,
                             mip.EXT_GENERALIZED_AUTH, mip.EXT_CVSE})
_LONG_HEADER = frozenset({mip.EXT_GENERALIZED_AUTH, mip.EXT_CVSE})
_REQUEST_FIXED = 24


def _mn_auth(ext: object) -> bool:
    """The mobile node's authentication to its home (MN-HA, or MN-AAA): CVSEs before
    it are for the home side, after it for the FA (RFC 3115 §2, RFC 5944 §3.6.1.3)."""
    return isinstance(ext, mip.MnHaAuth) or (
        isinstance(ext, mip.GeneralizedAuth)
        and ext.subtype == mip.GEN_AUTH_SUBTYPE_MN_AAA)


def _unknown_cvse(exts: list[object]) -> bool:
    return any(isinstance(e, mip.CriticalVendorExtension)
               and (e.vendor_id, e.vendor_type) not in UNDERSTOOD_CVSE for e in exts)


def _split_at_mn_auth(rrq: mip.RegistrationRequest) -> tuple[list[object], list[object]]:
    exts = list(rrq.extensions)
    for i, ext in enumerate(exts):
        if _mn_auth(ext):
            return exts[:i], exts[i + 1:]
    return exts, []


def fa_refusal(rrq: mip.RegistrationRequest) -> int | None:
    """The FA's denial code for a request it must refuse whatever the AAA says, or
    None: reserved bits set (70), minimal / GRE encapsulation requested (72), a CVSE
    addressed to the FA (after the MN's home authentication) it does not understand
    (100)."""
    if rrq.flags & RESERVED_FLAGS:
        return mip.CODE_FA_POORLY_FORMED_REQUEST
    if rrq.flags & UNSUPPORTED_ENCAPSULATION:
        return mip.CODE_FA_ENCAPSULATION_UNAVAILABLE
    if _unknown_cvse(_split_at_mn_auth(rrq)[1]):
        return mip.CODE_FA_UNKNOWN_CVSE_FROM_MN
    return None


def ha_refusal(rrq: mip.RegistrationRequest) -> int | None:
    """The HA's denial code for an authentic request it cannot serve, or None:
    reserved bits set (134), minimal / GRE encapsulation requested (139), a CVSE the
    mobile node addressed to its home (before its home authentication) that the home
    side does not understand (140)."""
    if rrq.flags & RESERVED_FLAGS:
        return mip.CODE_HA_POORLY_FORMED_REQUEST
    if rrq.flags & UNSUPPORTED_ENCAPSULATION:
        return mip.CODE_HA_ENCAPSULATION_UNAVAILABLE
    if _unknown_cvse(_split_at_mn_auth(rrq)[0]):
        return mip.CODE_HA_UNKNOWN_CVSE_FROM_MN
    return None


def unknown_critical_extension(raw: bytes) -> bool:
    """True if the Registration Request ``raw`` carries an extension of type 0-127
    that is not understood, before any defect of framing: such a message is silently
    discarded (IANA Mobile IPv4 Numbers, from RFC 5944 §1.9), not answered."""
    raw = bytes(raw)
    off = _REQUEST_FIXED
    while off < len(raw):
        ext_type = raw[off]
        if ext_type == mip.EXT_PAD:
            off += 1
            continue
        if ext_type < 128 and ext_type not in _KNOWN_CRITICAL:
            return True
        if ext_type in _LONG_HEADER:
            if off + 4 > len(raw):
                return False
            off += 4 + struct.unpack_from("!H", raw, off + 2)[0]
        else:
            if off + 2 > len(raw):
                return False
            off += 2 + raw[off + 1]
    return False


def poorly_formed_request(raw: bytes) -> mip.RegistrationRequest | None:
    """The fixed part of a Registration Request whose extensions do not parse (the FA
    answers 70 with its Home Address, Home Agent and Identification), or None when
    ``raw`` is no Registration Request, its fixed part is cut short, or it must be
    silently discarded (an unknown extension of type 0-127)."""
    raw = bytes(raw)
    if (len(raw) < _REQUEST_FIXED or raw[0] != mip.REGISTRATION_REQUEST
            or unknown_critical_extension(raw)):
        return None
    try:
        fixed = mip.decode(raw[:_REQUEST_FIXED])
    except mip.MipDecodeError:
        return None
    return fixed if isinstance(fixed, mip.RegistrationRequest) else None


def reply_matches(rrq: mip.RegistrationRequest, rrp: mip.RegistrationReply) -> bool:
    """RFC 5944 §3.7.3.1: a reply belongs to a pending request when its Home Address
    and the low-order 32 bits of its Identification equal the request's (the high
    32 bits may be the HA's clock: 133)."""
    return (rrp.home_address == rrq.home_address
            and rrp.identification & 0xFFFFFFFF == rrq.identification & 0xFFFFFFFF)


def reply_address(home_address: str, src_ip: str) -> str:
    """Where the FA sends its reply: the request's IP source address (RFC 5944
    §3.7.2.3, §3.7.3.2); a request sent from 0.0.0.0 (no address yet) is answered at
    its home address, or by broadcast when that is 0.0.0.0 too (RFC 2794)."""
    for addr in (src_ip, home_address):
        if addr and addr != "0.0.0.0":
            return addr
    return "255.255.255.255"
