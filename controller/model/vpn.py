"""The VPN model: the plain data the codecs (``controller.proto``) and the roles
(``controller.core``) share.

Pure data, no behaviour beyond views of itself.  A ``TunnelSpec`` describes one IPsec
tunnel between two gateways, from a neutral point of view (end ``a`` and end ``b``);
each gateway takes ``side_for(name)`` to get its own view.  The security information
(``psk``) never appears in ``repr``, logs or REST output.  This module imports nothing
from ``controller`` (tests/unit/test_layering.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from controller.model.dataclass_copy import replace

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

    def __init__(self, rate_kbps: int = 0, dscp: int = 0) -> None:
        object.__setattr__(self, "rate_kbps", rate_kbps)
        object.__setattr__(self, "dscp", dscp)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QosSpec) or other.__class__ is not self.__class__:
            return NotImplemented
        return (self.rate_kbps == other.rate_kbps and self.dscp == other.dscp)

    def __hash__(self) -> int:
        return hash((self.rate_kbps, self.dscp))


#: the proposals a profile that names none gets
DEFAULT_IKE = "aes128-sha256-modp2048"
# ECP-256 in the ESP proposal: perfect forward secrecy for every CHILD_SA made by
# CREATE_CHILD_SA (rekeys, further CHILD_SAs); the first one, inside IKE_AUTH, takes
# its keys from the IKE_SA's DH (RFC 7296 §1.3.1).  Cost: docs/benchmarks.md.
DEFAULT_ESP = "aes128gcm16-ecp256"


@dataclass(frozen=True)
class SecuritySpec:
    ike: str = DEFAULT_IKE
    esp: str = DEFAULT_ESP

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecuritySpec) or other.__class__ is not self.__class__:
            return NotImplemented
        return (self.ike == other.ike and self.esp == other.esp)

    def __hash__(self) -> int:
        return hash((self.ike, self.esp))


@dataclass(frozen=True)
class TunnelEnd:
    gateway: str          # gateway name, e.g. "ha"
    address: str          # its core (public) IPv4 address
    selectors: tuple[str, ...]  # traffic selectors (CIDRs) on this side

    def __init__(self, gateway: str, address: str, selectors: tuple[str, ...]) -> None:
        object.__setattr__(self, "gateway", gateway)
        object.__setattr__(self, "address", address)
        object.__setattr__(self, "selectors", selectors)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TunnelEnd) or other.__class__ is not self.__class__:
            return NotImplemented
        return (self.gateway == other.gateway and self.address == other.address and
                self.selectors == other.selectors)

    def __hash__(self) -> int:
        return hash((self.gateway, self.address, self.selectors))


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

    def __init__(self, tunnel_id: str, a: TunnelEnd, b: TunnelEnd, psk: bytes,
                 security: SecuritySpec = SecuritySpec(), qos: QosSpec = QosSpec(),
                 initiator: str = "") -> None:
        object.__setattr__(self, "tunnel_id", tunnel_id)
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "psk", psk)
        object.__setattr__(self, "security", security)
        object.__setattr__(self, "qos", qos)
        object.__setattr__(self, "initiator", initiator)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TunnelSpec) or other.__class__ is not self.__class__:
            return NotImplemented
        return (self.tunnel_id == other.tunnel_id and self.a == other.a and self.b == other.b and
                self.psk == other.psk and self.security == other.security and
                self.qos == other.qos and self.initiator == other.initiator)

    def __hash__(self) -> int:
        return hash((self.tunnel_id, self.a, self.b, self.psk, self.security, self.qos,
                     self.initiator))

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


@dataclass(frozen=True)
class VpnInfo:
    """The VPN information of one user, as the home AAA caches and distributes it.

    ``tunnels`` holds every tunnel of the user's VPN set path (claim 8): HA<->FA and
    HA<->CN-GW for a static gateway; FA<->CN-GW for a dynamic one (claim 19).
    ``smooth_handoff`` and ``distribution`` are the profile's options (claims 22-23,
    claims 2/5); ``handoff`` is the old-FA<->new-FA forwarding tunnel the AAA hands the
    new FA on a move with smooth handoff ("the information of the old FA", claim 23).
    ``seamless_handover`` (issue 14) asks for the FAs the MN can move to be prepared.
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
    seamless_handover: bool = False

    def __init__(self, nai: str, home_address: str, home_agent: str, foreign_agent: str,
                 tunnels: tuple[TunnelSpec, ...], previous_foreign_agent: str = "",
                 smooth_handoff: bool = False, distribution: str = DISTRIBUTION_REGISTRATION,
                 handoff: TunnelSpec | None = None, seamless_handover: bool = False) -> None:
        object.__setattr__(self, "nai", nai)
        object.__setattr__(self, "home_address", home_address)
        object.__setattr__(self, "home_agent", home_agent)
        object.__setattr__(self, "foreign_agent", foreign_agent)
        object.__setattr__(self, "tunnels", tunnels)
        object.__setattr__(self, "previous_foreign_agent", previous_foreign_agent)
        object.__setattr__(self, "smooth_handoff", smooth_handoff)
        object.__setattr__(self, "distribution", distribution)
        object.__setattr__(self, "handoff", handoff)
        object.__setattr__(self, "seamless_handover", seamless_handover)
        self.__post_init__()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VpnInfo) or other.__class__ is not self.__class__:
            return NotImplemented
        return (self.nai == other.nai and self.home_address == other.home_address and
                self.home_agent == other.home_agent and
                self.foreign_agent == other.foreign_agent and self.tunnels == other.tunnels and
                self.previous_foreign_agent == other.previous_foreign_agent and
                self.smooth_handoff == other.smooth_handoff and
                self.distribution == other.distribution and self.handoff == other.handoff and
                self.seamless_handover == other.seamless_handover)

    def __hash__(self) -> int:
        return hash((self.nai, self.home_address, self.home_agent, self.foreign_agent, self.tunnels,
                     self.previous_foreign_agent, self.smooth_handoff, self.distribution,
                     self.handoff, self.seamless_handover))

    def __post_init__(self) -> None:
        # The two options are bools, not merely truthy (issue 15): the codec writes them
        # as 0/1 and reads back bools, and its compiled build checks the annotation when
        # it reads them; an int here would encode in one build and raise in the other.
        # Every constructor here passes bool(...); refuse anything else at the source.
        if type(self.smooth_handoff) is not bool or type(self.seamless_handover) is not bool:
            raise TypeError(f"VpnInfo options must be bool: smooth_handoff="
                            f"{self.smooth_handoff!r}, seamless_handover="
                            f"{self.seamless_handover!r}")

    @property
    def on_demand(self) -> bool:
        return self.distribution == DISTRIBUTION_ON_DEMAND

    def tunnels_of(self, gateway: str) -> tuple[TunnelSpec, ...]:
        return tuple(t for t in self.tunnels if gateway in t.ends())
