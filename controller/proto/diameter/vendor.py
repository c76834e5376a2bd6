"""mipvpn's vendor AVPs (vendor id ``VENDOR_ID``; docs/diameter-avps.md), registered with
python-diameter so that it names them too."""

from __future__ import annotations

from typing import Final

from diameter.message.avp import (Avp, AvpAddress, AvpGrouped, AvpOctetString,
                                  AvpUnsigned32, AvpUtf8String)
from diameter.message.avp.avp import register as _register_avp

# ------------------------------------------------------------ mipvpn vendor AVPs
# All: V=1, M=0, P=0, vendor VENDOR_ID.  Documented in docs/diameter-avps.md and
# docs/wireshark/dictionary-mipvpn.xml -- keep the three in step.

VENDOR_ID: Final = 32473                # RFC 5612 documentation PEN, until we have our own

VA_VPN_INFO: Final = 1                  # Grouped: the whole VpnInfo
VA_NAI: Final = 2                       # UTF8String
VA_HOME_ADDRESS: Final = 3              # Address
VA_HOME_AGENT: Final = 4                # UTF8String: HA gateway name
VA_FOREIGN_AGENT: Final = 5             # UTF8String: FA gateway name (also top level in AMR)
VA_PREVIOUS_FA: Final = 6               # UTF8String: previous FA name (also top level in AMR)
VA_TUNNEL: Final = 7                    # Grouped: one TunnelSpec
VA_TUNNEL_ID: Final = 8                 # UTF8String
VA_TUNNEL_END_A: Final = 9              # Grouped: TunnelEnd a
VA_TUNNEL_END_B: Final = 10             # Grouped: TunnelEnd b
VA_GATEWAY_NAME: Final = 11             # UTF8String
VA_GATEWAY_ADDRESS: Final = 12          # Address
VA_TRAFFIC_SELECTOR: Final = 13         # UTF8String CIDR, one per selector, in order
VA_IKE_PROPOSAL: Final = 14             # UTF8String
VA_ESP_PROPOSAL: Final = 15             # UTF8String
VA_PSK: Final = 16                      # OctetString (carried like RFC 4004 MIP-Session-Key)
VA_QOS_RATE_KBPS: Final = 17            # Unsigned32
VA_QOS_DSCP: Final = 18                 # Unsigned32
VA_INITIATOR: Final = 19                # UTF8String: gateway name that starts IKE
VA_PREVIOUS_FA_ADDRESS: Final = 20      # Address (top level in AMR)
VA_SERVICE_UPDATE: Final = 21           # Unsigned32 0/1 (top level in AMR)
VA_SMOOTH_HANDOFF: Final = 22           # Unsigned32 0/1 (in VPN-Info; profile option, claims 22-23)
VA_DISTRIBUTION: Final = 23             # Unsigned32 0 registration / 1 on demand (in VPN-Info)
VA_HANDOFF_TUNNEL: Final = 24   # Grouped like Mipvpn-Tunnel: old FA <-> new FA (in VPN-Info)
VA_SESSION_SECRET: Final = 25           # OctetString: per-session secret, AAAH -> AAAF / HA only
VA_MN_TO_FA_MSA: Final = 26             # Grouped: RFC 4004 MIP-MN-to-FA-MSA with our SPI AVP
VA_MN_FA_SPI: Final = 27                # Unsigned32: the MN-FA SPI (4004's has no code)
VA_SEAMLESS_HANDOVER: Final = 28        # Unsigned32 0/1 (in VPN-Info; profile option, issue 14)

DISTRIBUTION_CODES: Final = {"registration": 0, "on_demand": 1}

VENDOR_AVPS: Final[dict[int, tuple[str, type[Avp]]]] = {
    VA_VPN_INFO: ("Mipvpn-VPN-Info", AvpGrouped),
    VA_NAI: ("Mipvpn-NAI", AvpUtf8String),
    VA_HOME_ADDRESS: ("Mipvpn-Home-Address", AvpAddress),
    VA_HOME_AGENT: ("Mipvpn-Home-Agent", AvpUtf8String),
    VA_FOREIGN_AGENT: ("Mipvpn-Foreign-Agent", AvpUtf8String),
    VA_PREVIOUS_FA: ("Mipvpn-Previous-FA", AvpUtf8String),
    VA_TUNNEL: ("Mipvpn-Tunnel", AvpGrouped),
    VA_TUNNEL_ID: ("Mipvpn-Tunnel-Id", AvpUtf8String),
    VA_TUNNEL_END_A: ("Mipvpn-Tunnel-End-A", AvpGrouped),
    VA_TUNNEL_END_B: ("Mipvpn-Tunnel-End-B", AvpGrouped),
    VA_GATEWAY_NAME: ("Mipvpn-Gateway-Name", AvpUtf8String),
    VA_GATEWAY_ADDRESS: ("Mipvpn-Gateway-Address", AvpAddress),
    VA_TRAFFIC_SELECTOR: ("Mipvpn-Traffic-Selector", AvpUtf8String),
    VA_IKE_PROPOSAL: ("Mipvpn-IKE-Proposal", AvpUtf8String),
    VA_ESP_PROPOSAL: ("Mipvpn-ESP-Proposal", AvpUtf8String),
    VA_PSK: ("Mipvpn-PSK", AvpOctetString),
    VA_QOS_RATE_KBPS: ("Mipvpn-QoS-Rate-Kbps", AvpUnsigned32),
    VA_QOS_DSCP: ("Mipvpn-QoS-DSCP", AvpUnsigned32),
    VA_INITIATOR: ("Mipvpn-Initiator", AvpUtf8String),
    VA_PREVIOUS_FA_ADDRESS: ("Mipvpn-Previous-FA-Address", AvpAddress),
    VA_SERVICE_UPDATE: ("Mipvpn-Service-Update", AvpUnsigned32),
    VA_SMOOTH_HANDOFF: ("Mipvpn-Smooth-Handoff", AvpUnsigned32),
    VA_DISTRIBUTION: ("Mipvpn-Distribution", AvpUnsigned32),
    VA_HANDOFF_TUNNEL: ("Mipvpn-Handoff-Tunnel", AvpGrouped),
    VA_SESSION_SECRET: ("Mipvpn-Session-Secret", AvpOctetString),
    VA_MN_TO_FA_MSA: ("Mipvpn-MN-to-FA-MSA", AvpGrouped),
    VA_MN_FA_SPI: ("Mipvpn-MN-FA-SPI", AvpUnsigned32),
    VA_SEAMLESS_HANDOVER: ("Mipvpn-Seamless-Handover", AvpUnsigned32),
}

for _code, (_name, _cls) in VENDOR_AVPS.items():   # so python-diameter names them too
    _register_avp(_code, _name, _cls, vendor=VENDOR_ID, mandatory=False)

PRODUCT_NAME: Final = "mipvpn"
