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
28-254, defined once in ``numbers`` (:data:`BINDING_WARNING` ... :data:`BINDING_ACK`);
they are module-level and can be overridden with :func:`configure_binding_types`:

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

The package, along the codec's sections: ``numbers`` (types, flags, reply codes: the one
definition the roles use), ``errors``, ``extensions``, ``messages`` (``encode`` /
``decode``), ``auth``, ``tunnel`` (the VPN tunnel CVSE), ``identification``,
``discovery``.  This ``__init__`` re-exports every public name, so
``from controller.proto import mip; mip.X`` keeps working.
"""

from __future__ import annotations

from controller.proto.mip import numbers
from controller.proto.mip.numbers import (ADV_CODE_MOBILITY_ONLY, ADV_CODE_ROUTES,
                                          ADV_EXT_CHALLENGE, ADV_EXT_MOBILITY_AGENT,
                                          ADV_EXT_PREFIX_LENGTHS, ADV_FLAG_B, ADV_FLAG_F,
                                          ADV_FLAG_G, ADV_FLAG_H, ADV_FLAG_I, ADV_FLAG_M,
                                          ADV_FLAG_r, ADV_FLAG_R, ADV_FLAG_T, ADV_FLAG_U,
                                          ADV_FLAG_X, ALL_MOBILITY_AGENTS_MCAST,
                                          ALL_SYSTEMS_MCAST, BACK_ADMIN_PROHIBITED,
                                          BACK_AUTH_FAILED, BACK_IDENTIFICATION_MISMATCH,
                                          BACK_NO_RESOURCES, BACK_OK, BACK_POORLY_FORMED,
                                          BACK_UNSPECIFIED, BU_FLAG_A, BU_FLAG_G,
                                          BU_FLAG_I, BU_FLAG_M, CODE_ACCEPTED,
                                          CODE_ACCEPTED_NO_SIMULTANEOUS,
                                          CODE_FA_ADMIN_PROHIBITED,
                                          CODE_FA_ENCAPSULATION_UNAVAILABLE,
                                          CODE_FA_HA_FAILED_AUTH, CODE_FA_HA_UNREACHABLE,
                                          CODE_FA_INSUFFICIENT_RESOURCES,
                                          CODE_FA_LIFETIME_TOO_LONG,
                                          CODE_FA_MISSING_CHALLENGE, CODE_FA_MISSING_NAI,
                                          CODE_FA_MN_FAILED_AUTH,
                                          CODE_FA_POORLY_FORMED_REPLY,
                                          CODE_FA_POORLY_FORMED_REQUEST,
                                          CODE_FA_REG_TIMEOUT, CODE_FA_STALE_CHALLENGE,
                                          CODE_FA_UNKNOWN_CHALLENGE,
                                          CODE_FA_UNKNOWN_CVSE_FROM_MN,
                                          CODE_FA_UNSPECIFIED, CODE_HA_ADMIN_PROHIBITED,
                                          CODE_HA_ENCAPSULATION_UNAVAILABLE,
                                          CODE_HA_FA_FAILED_AUTH,
                                          CODE_HA_IDENTIFICATION_MISMATCH,
                                          CODE_HA_INSUFFICIENT_RESOURCES,
                                          CODE_HA_MN_FAILED_AUTH,
                                          CODE_HA_POORLY_FORMED_REQUEST,
                                          CODE_HA_UNKNOWN_CVSE_FROM_MN,
                                          CODE_HA_UNKNOWN_HA_ADDRESS, CODE_HA_UNSPECIFIED,
                                          configure_binding_types, CVSE_PREVIOUS_FA,
                                          CVSE_SERVICE_UPDATE, CVSE_VPN_TUNNEL, EXT_CVSE,
                                          EXT_FA_HA_AUTH, EXT_GENERALIZED_AUTH,
                                          EXT_MN_FA_AUTH, EXT_MN_FA_CHALLENGE,
                                          EXT_MN_HA_AUTH, EXT_MN_NAI, EXT_NVSE, EXT_PAD,
                                          EXT_RO_AUTH, FLAG_B, FLAG_D, FLAG_G, FLAG_M,
                                          FLAG_r, FLAG_S, FLAG_T, FLAG_x,
                                          GEN_AUTH_SUBTYPE_MN_AAA,
                                          ICMP_ROUTER_ADVERTISEMENT,
                                          ICMP_ROUTER_SOLICITATION, MIP_PORT,
                                          MIPVPN_VENDOR_ID, REGISTRATION_REPLY,
                                          REGISTRATION_REQUEST, REPLY_CODE_NAMES)
from controller.proto.mip.errors import MipDecodeError
from controller.proto.mip.extensions import (ChallengeExtension, CriticalVendorExtension,
                                             encode_extension, Extension, FaHaAuth,
                                             GeneralizedAuth, MnFaAuth, MnHaAuth,
                                             NaiExtension, NormalVendorExtension, Pad,
                                             RoAuth, UnknownExtension)
from controller.proto.mip.messages import (BindingAck, BindingRequest, BindingUpdate,
                                           BindingWarning, decode, E, encode, MipMessage,
                                           RegistrationReply, RegistrationRequest)
from controller.proto.mip.auth import (append_auth, AUTH_LEN, AuthKind,
                                       compute_authenticator, mn_aaa_auth_offsets,
                                       verify_auth)
from controller.proto.mip.tunnel import (decode_tunnel_extension, encode_tunnel_extension,
                                         hide_psk, TS_A_ADDRESS, TS_A_GATEWAY,
                                         TS_A_SELECTOR, TS_B_ADDRESS, TS_B_GATEWAY,
                                         TS_B_SELECTOR, TS_ESP, TS_HIDDEN_PSK, TS_IKE,
                                         TS_INITIATOR, TS_QOS_DSCP, TS_QOS_RATE,
                                         TS_TUNNEL_ID, tunnel_salt)
from controller.proto.mip.identification import (identification_time, ntp_identification,
                                                 NTP_UNIX_OFFSET)
from controller.proto.mip.discovery import (AgentAdvertisement, AgentSolicitation,
                                            decode_icmp, icmp_checksum)

# Every name imported above is part of the package's interface (sorted).
__all__ = [
    "ADV_CODE_MOBILITY_ONLY", "ADV_CODE_ROUTES", "ADV_EXT_CHALLENGE", "ADV_EXT_MOBILITY_AGENT",
    "ADV_EXT_PREFIX_LENGTHS", "ADV_FLAG_B", "ADV_FLAG_F", "ADV_FLAG_G", "ADV_FLAG_H",
    "ADV_FLAG_I", "ADV_FLAG_M", "ADV_FLAG_R", "ADV_FLAG_T", "ADV_FLAG_U", "ADV_FLAG_X",
    "ADV_FLAG_r", "ALL_MOBILITY_AGENTS_MCAST", "ALL_SYSTEMS_MCAST", "AUTH_LEN",
    "AgentAdvertisement", "AgentSolicitation", "AuthKind", "BACK_ADMIN_PROHIBITED",
    "BACK_AUTH_FAILED", "BACK_IDENTIFICATION_MISMATCH", "BACK_NO_RESOURCES", "BACK_OK",
    "BACK_POORLY_FORMED", "BACK_UNSPECIFIED", "BU_FLAG_A", "BU_FLAG_G", "BU_FLAG_I",
    "BU_FLAG_M", "BindingAck", "BindingRequest", "BindingUpdate", "BindingWarning",
    "CODE_ACCEPTED", "CODE_ACCEPTED_NO_SIMULTANEOUS", "CODE_FA_ADMIN_PROHIBITED",
    "CODE_FA_ENCAPSULATION_UNAVAILABLE", "CODE_FA_HA_FAILED_AUTH", "CODE_FA_HA_UNREACHABLE",
    "CODE_FA_INSUFFICIENT_RESOURCES", "CODE_FA_LIFETIME_TOO_LONG", "CODE_FA_MISSING_CHALLENGE",
    "CODE_FA_MISSING_NAI", "CODE_FA_MN_FAILED_AUTH", "CODE_FA_POORLY_FORMED_REPLY",
    "CODE_FA_POORLY_FORMED_REQUEST", "CODE_FA_REG_TIMEOUT", "CODE_FA_STALE_CHALLENGE",
    "CODE_FA_UNKNOWN_CHALLENGE", "CODE_FA_UNKNOWN_CVSE_FROM_MN", "CODE_FA_UNSPECIFIED",
    "CODE_HA_ADMIN_PROHIBITED", "CODE_HA_ENCAPSULATION_UNAVAILABLE", "CODE_HA_FA_FAILED_AUTH",
    "CODE_HA_IDENTIFICATION_MISMATCH", "CODE_HA_INSUFFICIENT_RESOURCES",
    "CODE_HA_MN_FAILED_AUTH", "CODE_HA_POORLY_FORMED_REQUEST", "CODE_HA_UNKNOWN_CVSE_FROM_MN",
    "CODE_HA_UNKNOWN_HA_ADDRESS", "CODE_HA_UNSPECIFIED", "CVSE_PREVIOUS_FA",
    "CVSE_SERVICE_UPDATE", "CVSE_VPN_TUNNEL", "ChallengeExtension", "CriticalVendorExtension",
    "E", "EXT_CVSE", "EXT_FA_HA_AUTH", "EXT_GENERALIZED_AUTH", "EXT_MN_FA_AUTH",
    "EXT_MN_FA_CHALLENGE", "EXT_MN_HA_AUTH", "EXT_MN_NAI", "EXT_NVSE", "EXT_PAD", "EXT_RO_AUTH",
    "Extension", "FLAG_B", "FLAG_D", "FLAG_G", "FLAG_M", "FLAG_S", "FLAG_T", "FLAG_r", "FLAG_x",
    "FaHaAuth", "GEN_AUTH_SUBTYPE_MN_AAA", "GeneralizedAuth", "ICMP_ROUTER_ADVERTISEMENT",
    "ICMP_ROUTER_SOLICITATION", "MIPVPN_VENDOR_ID", "MIP_PORT", "MipDecodeError", "MipMessage",
    "MnFaAuth", "MnHaAuth", "NTP_UNIX_OFFSET", "NaiExtension", "NormalVendorExtension", "Pad",
    "REGISTRATION_REPLY", "REGISTRATION_REQUEST", "REPLY_CODE_NAMES", "RegistrationReply",
    "RegistrationRequest", "RoAuth", "TS_A_ADDRESS", "TS_A_GATEWAY", "TS_A_SELECTOR",
    "TS_B_ADDRESS", "TS_B_GATEWAY", "TS_B_SELECTOR", "TS_ESP", "TS_HIDDEN_PSK", "TS_IKE",
    "TS_INITIATOR", "TS_QOS_DSCP", "TS_QOS_RATE", "TS_TUNNEL_ID", "UnknownExtension",
    "append_auth", "compute_authenticator", "configure_binding_types", "decode", "decode_icmp",
    "decode_tunnel_extension", "encode", "encode_extension", "encode_tunnel_extension",
    "hide_psk", "icmp_checksum", "identification_time", "mn_aaa_auth_offsets",
    "ntp_identification", "tunnel_salt", "verify_auth",
]


_BINDING_TYPES = frozenset({"BINDING_WARNING", "BINDING_REQUEST", "BINDING_UPDATE",
                            "BINDING_ACK"})


def __getattr__(name: str) -> int:
    """The experimental binding message types, read from ``numbers`` each time:
    ``configure_binding_types`` rebinds them there (PEP 562)."""
    if name in _BINDING_TYPES:
        value: int = getattr(numbers, name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
