"""VPN information: what the home AAA distributes and what gateways build tunnels from.

Pure data.  A ``TunnelSpec`` describes one IPsec tunnel between two gateways, from a
neutral point of view (end ``a`` and end ``b``); each gateway takes ``side_for(name)``
to get its own view.  The security information (``psk``) is generated per tunnel by the
home AAA server with a cryptographically secure generator and never appears in
``repr``, logs or REST output.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Callable


DISTRIBUTION_REGISTRATION = "registration"  # CN-side info sent at registration (claim 4)
DISTRIBUTION_ON_DEMAND = "on_demand"        # ... on the CN's first packet (claim 5)
DISTRIBUTIONS = (DISTRIBUTION_REGISTRATION, DISTRIBUTION_ON_DEMAND)


class GatewayType(str, Enum):
    """How a correspondent host's gateway takes VPN configuration (claim 19)."""

    STATIC = "static"
    DYNAMIC = "dynamic"


@dataclass(frozen=True)
class QosSpec:
    rate_kbps: int = 0  # 0 = unlimited
    dscp: int = 0


@dataclass(frozen=True)
class SecuritySpec:
    ike: str = "aes128-sha256-modp2048"
    # ECP-256 in the ESP proposal: perfect forward secrecy for every CHILD_SA made by
    # CREATE_CHILD_SA (rekeys, further CHILD_SAs); the first one, inside IKE_AUTH, takes
    # its keys from the IKE_SA's DH (RFC 7296 §1.3.1).  Cost: docs/benchmarks.md.
    esp: str = "aes128gcm16-ecp256"


@dataclass(frozen=True)
class TunnelEnd:
    gateway: str          # gateway name, e.g. "ha"
    address: str          # its core (public) IPv4 address
    selectors: tuple[str, ...]  # traffic selectors (CIDRs) on this side


@dataclass(frozen=True)
class TunnelSide:
    """One gateway's own view of a tunnel."""

    tunnel_id: str
    local: TunnelEnd
    remote: TunnelEnd
    psk: bytes = field(repr=False)
    security: SecuritySpec
    qos: QosSpec
    initiator: bool
    # A secondary end is only needed inbound: its outbound policy must never carry
    # traffic another tunnel with the same selectors carries (the new FA's end of the
    # smooth-handoff forwarding tunnel, claims 22-23).  The adapter decides how.
    secondary: bool = False


@dataclass(frozen=True)
class TunnelSpec:
    tunnel_id: str
    a: TunnelEnd
    b: TunnelEnd
    psk: bytes = field(repr=False)
    security: SecuritySpec = SecuritySpec()
    qos: QosSpec = QosSpec()
    # which end starts IKE: the end configured last in the claim's order
    initiator: str = ""

    def side_for(self, gateway: str) -> TunnelSide:
        if gateway == self.a.gateway:
            local, remote = self.a, self.b
        elif gateway == self.b.gateway:
            local, remote = self.b, self.a
        else:
            raise KeyError(f"gateway {gateway!r} is not an end of tunnel {self.tunnel_id}")
        return TunnelSide(self.tunnel_id, local, remote, self.psk, self.security,
                          self.qos, initiator=(self.initiator == gateway))

    def ends(self) -> tuple[str, str]:
        return (self.a.gateway, self.b.gateway)

    def with_end(self, old_gateway: str, new_end: TunnelEnd) -> TunnelSpec:
        """The same tunnel re-pointed from ``old_gateway`` to ``new_end`` (claims 7, 17)."""
        if old_gateway == self.a.gateway:
            spec = replace(self, a=new_end)
        elif old_gateway == self.b.gateway:
            spec = replace(self, b=new_end)
        else:
            raise KeyError(old_gateway)
        initiator = new_end.gateway if self.initiator == old_gateway else self.initiator
        return replace(spec, tunnel_id=tunnel_name(self.tunnel_id.split("/")[0],
                                                  spec.a.gateway, spec.b.gateway),
                       initiator=initiator)


def tunnel_name(owner: str, gw_a: str, gw_b: str) -> str:
    """Stable tunnel id: ``<owner>/<gw>-<gw>`` (owner = MN name or 'static')."""
    return f"{owner}/{gw_a}-{gw_b}"


def new_psk(nbytes: int = 32) -> bytes:
    """Per-tunnel pre-shared key from the OS CSPRNG."""
    return secrets.token_bytes(nbytes)


@dataclass(frozen=True)
class VpnInfo:
    """The VPN information of one user, as the home AAA caches and distributes it.

    ``tunnels`` holds every tunnel of the user's VPN set path (claim 8): HA<->FA and
    HA<->CN-GW for a static gateway; FA<->CN-GW for a dynamic one (claim 19).
    ``smooth_handoff`` and ``distribution`` are the profile's options (claims 22-23,
    claims 2/5); ``handoff`` is the old-FA<->new-FA forwarding tunnel the AAA hands the
    new FA on a move with smooth handoff ("the information of the old FA", claim 23).
    """

    nai: str
    home_address: str
    home_agent: str
    foreign_agent: str
    tunnels: tuple[TunnelSpec, ...]
    previous_foreign_agent: str = ""
    smooth_handoff: bool = False
    distribution: str = DISTRIBUTION_REGISTRATION
    handoff: TunnelSpec | None = None

    @property
    def on_demand(self) -> bool:
        return self.distribution == DISTRIBUTION_ON_DEMAND

    def tunnels_of(self, gateway: str) -> tuple[TunnelSpec, ...]:
        return tuple(t for t in self.tunnels if gateway in t.ends())


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
    return hmac.new(secret, label, hashlib.sha256).digest()


def fa_ha_key(secret: bytes, foreign_agent: str) -> bytes:
    """The FA-HA key of one FA for one session (RFC 5944 §3.5.4; handed to the FA as RFC
    4004 MIP-FA-to-HA-MSA): HMAC-SHA-256(secret, "mipvpn-fa-ha|<FA>").  Also the anchor
    of the smooth-handoff key of a move away from that FA (``handoff_psk``)."""
    label = f"mipvpn-fa-ha|{foreign_agent}".encode()
    return hmac.new(secret, label, hashlib.sha256).digest()


# ------------------------------------------------------------------ smooth handoff


def handoff_psk(anchor: bytes, old_fa: str, new_fa: str) -> bytes:
    """PSK of the old-FA -> new-FA forwarding tunnel: HMAC-SHA-256(anchor,
    "mipvpn-smooth-handoff|<old>|<new>"), ``anchor`` = the old FA's FA-HA key for the
    session (``fa_ha_key``).  One-way: the new FA (perhaps in another domain) learns
    nothing of the old FA's keys; the old FA derives it itself, the AAA that hands it
    out (foreign AAA on a local move, home AAA otherwise) from the session secret."""
    label = f"mipvpn-smooth-handoff|{old_fa}|{new_fa}".encode()
    return hmac.new(anchor, label, hashlib.sha256).digest()


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
