"""VPN information: what the home AAA distributes and what gateways build tunnels from.

The data (``TunnelSpec``, ``VpnInfo``, ...) lives in the model leaf
(``controller.model.vpn``), which the codecs import too; it is re-exported here.  This
module holds what the roles do with it: re-pointing tunnels on a move, restricting
what a gateway learns, and the keys.  The security information (``psk``) is generated
per tunnel by the home AAA server with a cryptographically secure generator and never
appears in ``repr``, logs or REST output.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Callable

from controller.model.dataclass_copy import replace
from controller.model.vpn import (DISTRIBUTION_ON_DEMAND, DISTRIBUTION_REGISTRATION,
                                  DISTRIBUTIONS, GatewayType, QosSpec, SecuritySpec,
                                  TunnelEnd, TunnelSide, TunnelSpec, VpnInfo, tunnel_name)

__all__ = ["DISTRIBUTION_ON_DEMAND", "DISTRIBUTION_REGISTRATION", "DISTRIBUTIONS",
           "GatewayType", "QosSpec", "SecuritySpec", "TunnelEnd", "TunnelSide",
           "TunnelSpec", "VpnInfo", "tunnel_name", "new_psk", "rewrite_foreign_agent",
           "restricted_to", "for_home_agent", "route_optimised", "tunnel_psk",
           "fa_ha_key", "handoff_psk", "handoff_tunnel", "owner_of"]


def new_psk(nbytes: int = 32) -> bytes:
    """Per-tunnel pre-shared key from the OS CSPRNG."""
    return secrets.token_bytes(nbytes)


def kept_if_equal(new: VpnInfo, held: VpnInfo | None) -> VpnInfo:
    """``held`` when it equals ``new``, else ``new``.  A role's record keeps the object
    it holds when a renewal brings equal information (issue 15): a decoded copy would
    live until the next renewal, about eight objects the cyclic GC traverses twice."""
    return held if held is not None and held == new else new


def rewrite_foreign_agent(info: VpnInfo, new_fa: str, new_fa_address: str,
                          rekey: Callable[[str], bytes] | None = None) -> VpnInfo:
    """Re-point every tunnel that ends at the current FA to ``new_fa`` (claims 7, 17, 18).

    Selectors of the FA end stay the same (the MN keeps its home address).  ``rekey``
    (tunnel id -> PSK) gives every re-pointed tunnel its own new key: on a local move
    the AAAF and the HA rewrite their caches independently and agree on the key because
    both derive it (``tunnel_psk``); without it the keys are kept (the home AAA's view of
    an old FA).  A full registration through the home AAA generates fresh keys.
    """
    old_fa = info.foreign_agent
    if old_fa == new_fa:
        return info
    tunnels = []
    for spec in info.tunnels:
        if old_fa in spec.ends():
            old_end = spec.a if spec.a.gateway == old_fa else spec.b
            spec = spec.with_end(old_fa, TunnelEnd(new_fa, new_fa_address, old_end.selectors))
            if rekey is not None and spec.psk:
                spec = replace(spec, psk=rekey(spec.tunnel_id))
        tunnels.append(spec)
    return replace(info, foreign_agent=new_fa, previous_foreign_agent=old_fa,
                   tunnels=tuple(tunnels), handoff=None)


def restricted_to(info: VpnInfo, gateway: str) -> VpnInfo:
    """Only the tunnels ``gateway`` is an end of: a gateway never learns other keys."""
    handoff = info.handoff if info.handoff and gateway in info.handoff.ends() else None
    return replace(info, tunnels=info.tunnels_of(gateway), handoff=handoff)


def for_home_agent(info: VpnInfo) -> VpnInfo:
    """What the HAR carries (claims 16, 19): the HA's own tunnels plus the FA<->CN-GW
    tunnels of dynamic gateways, which the HA posts to each CN-GW in a Binding Update."""
    keep = tuple(t for t in info.tunnels
                 if info.home_agent in t.ends() or info.foreign_agent in t.ends())
    return replace(info, tunnels=keep, handoff=None)


def route_optimised(info: VpnInfo) -> dict[str, TunnelSpec]:
    """CN-GW name -> its FA<->CN-GW tunnel: the tunnels that do not end at the HA."""
    out: dict[str, TunnelSpec] = {}
    for spec in info.tunnels:
        if info.home_agent in spec.ends() or info.foreign_agent not in spec.ends():
            continue
        other = spec.a if spec.b.gateway == info.foreign_agent else spec.b
        out[other.gateway] = spec
    return out


# ------------------------------------------------------------------ derived keys (issue 11)
# The home AAA makes one random secret per full registration (``new_psk``) and gives it
# to the foreign AAA (AMA) and the HA (HAR), never to an FA.  From it both derive, on
# their own, what a move answered locally needs, so that no key is reused and only the
# two ends of a tunnel (and the AAA that distributes it) ever hold a tunnel's key.


def tunnel_psk(secret: bytes, tunnel_id: str, identification: int) -> bytes:
    """PSK of a tunnel re-pointed by a local move: HMAC-SHA-256(secret,
    "mipvpn-tunnel|<tunnel id>|<RRQ identification>").  The foreign AAA and the HA both
    see the move's Registration Request; the old FA never learns the new key."""
    label = f"mipvpn-tunnel|{tunnel_id}|{identification}".encode()
    return hmac.digest(secret, label, "sha256")


def fa_ha_key(secret: bytes, foreign_agent: str) -> bytes:
    """The FA-HA key of one FA for one session (RFC 5944 §3.5.4; handed to the FA as RFC
    4004 MIP-FA-to-HA-MSA): HMAC-SHA-256(secret, "mipvpn-fa-ha|<FA>").  Also the anchor
    of the smooth-handoff key of a move away from that FA (``handoff_psk``)."""
    label = f"mipvpn-fa-ha|{foreign_agent}".encode()
    return hmac.digest(secret, label, "sha256")


# ------------------------------------------------------------------ smooth handoff


def handoff_psk(anchor: bytes, old_fa: str, new_fa: str) -> bytes:
    """PSK of the old-FA -> new-FA forwarding tunnel: HMAC-SHA-256(anchor,
    "mipvpn-smooth-handoff|<old>|<new>"), ``anchor`` = the old FA's FA-HA key for the
    session (``fa_ha_key``).  One-way: the new FA (perhaps in another domain) learns
    nothing of the old FA's keys; the old FA derives it itself, the AAA that hands it
    out (foreign AAA on a local move, home AAA otherwise) from the session secret."""
    label = f"mipvpn-smooth-handoff|{old_fa}|{new_fa}".encode()
    return hmac.digest(anchor, label, "sha256")


def handoff_tunnel(info: VpnInfo, old_fa: str, old_fa_address: str,
                   anchor: bytes) -> TunnelSpec:
    """Claims 22-23: the new FA's cached VPN information copied with the origin
    rewritten to the old FA and the destination to the new FA: one tunnel whose old-FA
    selectors are every correspondent selector of the new FA's tunnels and whose new-FA
    selector is the MN's home address.  The new FA sets its end last, so it initiates."""
    new_fa = info.foreign_agent
    mine = info.tunnels_of(new_fa)
    remote: list[str] = []
    for spec in mine:
        other = spec.a if spec.b.gateway == new_fa else spec.b
        remote += [s for s in other.selectors if s not in remote]
    new_end = next((spec.a if spec.a.gateway == new_fa else spec.b for spec in mine),
                   TunnelEnd(new_fa, "", (f"{info.home_address}/32",)))
    first = mine[0] if mine else None
    return TunnelSpec(
        tunnel_id=tunnel_name(owner_of(info.nai), old_fa, new_fa),
        a=TunnelEnd(old_fa, old_fa_address, tuple(remote)),
        b=TunnelEnd(new_fa, new_end.address, (f"{info.home_address}/32",)),
        psk=handoff_psk(anchor, old_fa, new_fa),
        security=first.security if first else SecuritySpec(),
        qos=first.qos if first else QosSpec(), initiator=new_fa)


def owner_of(nai: str) -> str:
    """A user's tunnel owner prefix (the NAI with unsafe characters replaced)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in nai)
