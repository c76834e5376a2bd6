"""Mobile IPv4 numbers: message and extension types, flags, reply codes (RFC 5944 §3.4:
the one definition the roles use), Binding Acknowledge status, agent-discovery
constants, and the experimental binding message types (``configure_binding_types``)."""

from __future__ import annotations

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
# ... the conformance checks' codes (controller/core/conformance.py)
CODE_FA_ENCAPSULATION_UNAVAILABLE = 72     # RFC 5944 §3.4
CODE_FA_UNKNOWN_CVSE_FROM_MN = 100         # RFC 3115 §2, IANA
CODE_HA_ENCAPSULATION_UNAVAILABLE = 139    # RFC 3024 §4.2, IANA
CODE_HA_UNKNOWN_CVSE_FROM_MN = 140         # RFC 3115 §2, IANA

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
