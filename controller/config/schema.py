"""The configuration's objects: strict, frozen dataclasses (``Topology`` and its parts),
the limits the schema enforces, and ``ConfigError``.  A leaf: imports nothing from
``controller``.  ``topology.py`` builds these from YAML."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

SwitchRole = Literal["core", "site", "access"]
GatewayKind = Literal["home_agent", "foreign_agent", "cn_gateway"]
GatewayType = Literal["static", "dynamic"]
Distribution = Literal["registration", "on_demand"]

SWITCH_ROLES: tuple[str, ...] = ("core", "site", "access")
GATEWAY_KINDS: tuple[str, ...] = ("home_agent", "foreign_agent", "cn_gateway")
GATEWAY_TYPES: tuple[str, ...] = ("static", "dynamic")
DISTRIBUTIONS: tuple[str, ...] = ("registration", "on_demand")
MAX_PORT = 0xFEFF  # highest ofport OVS accepts in ofport_request
MAX_DPID = (1 << 64) - 1
#: admission control (issue 5): registrations in flight per FA (AMR or HA relay
#: outstanding) beyond which a new one is refused at once with RFC 5944 code 66
DEFAULT_FA_MAX_PENDING = 64
MAX_FA_MAX_PENDING = 1_000_000
#: ... and beyond which a new one is refused while the oldest in flight, or the recent
#: AAA round trips on average, took this long (s): the queue ahead would outlast the
#: MN's retransmission timer and the Diameter timeout.  The foreign agent (core) is
#: given both per gateway (``GatewayConf.max_pending``, ``max_pending_age``).
DEFAULT_FA_MAX_PENDING_AGE = 2.0

# Gateway names become interface names "<name>-core" (15 chars max on Linux).
MAX_GATEWAY_NAME = 10

#: accepted connections a Diameter listener holds at once, by default (issue 11)
DEFAULT_MAX_CONNECTIONS = 64
MAX_MAX_CONNECTIONS = 65535


class ConfigError(ValueError):
    """A configuration problem: ``<file>: <key path>: <reason>``."""


@dataclass(frozen=True, slots=True)
class TlsConf:
    """Diameter over TLS (RFC 6733 §13, docs/security.md): absolute paths of this
    role's certificate and key (PEM) and of the CA that signs its peers' certificates.
    ``verify_peer``: as a server, require a client certificate signed by ``ca``; false
    means "server certificate only": clients without a certificate are then admitted
    only from the source addresses the peer table allows (docs/decisions.md)."""

    cert: str
    key: str
    ca: str
    verify_peer: bool = True


@dataclass(frozen=True, slots=True)
class AllowanceConf:
    """An allowance as the YAML gives it: ``None`` = key not given (falls back to the
    topology's ``user_allowance``, then to the seeded profile)."""

    prefixes: tuple[str, ...] | None = None
    gateways: tuple[str, ...] | None = None
    max_rate_kbps: int | None = None
    dscp: tuple[int, ...] | None = None
    ike: tuple[str, ...] | None = None
    esp: tuple[str, ...] | None = None
    smooth_handoff: bool | None = None
    distribution: bool | None = None
    seamless_handover: bool | None = None


# ---------------------------------------------------------------------------
# Configuration objects


@dataclass(frozen=True, slots=True)
class IfaceConf:
    """One interface of a gateway: address, MAC and where it plugs in."""

    ip: str
    prefixlen: int
    mac: str
    switch: str
    port: int

    @property
    def cidr(self) -> str:
        """``10.0.0.1/24``."""
        return f"{self.ip}/{self.prefixlen}"

    @property
    def network(self) -> str:
        """``10.0.0.0/24``."""
        return str(ipaddress.IPv4Interface(self.cidr).network)


@dataclass(frozen=True, slots=True)
class SwitchConf:
    name: str
    dpid: int
    role: SwitchRole
    foreign_agent: str | None = None


@dataclass(frozen=True, slots=True)
class GatewayConf:
    name: str
    kind: GatewayKind
    domain: str
    core: IfaceConf
    inside: IfaceConf
    gateway_type: GatewayType = "static"
    #: foreign agents: registrations in flight before new ones are refused (code 66)
    max_pending: int = DEFAULT_FA_MAX_PENDING
    max_pending_age: float = DEFAULT_FA_MAX_PENDING_AGE
    #: foreign agents: addresses its Diameter client may dial its AAAF from, besides
    #: loopback (the peer table, issue 11)
    peer_addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HostConf:
    name: str
    ip: str
    prefixlen: int
    mac: str
    gateway: str
    switch: str
    port: int

    @property
    def cidr(self) -> str:
        return f"{self.ip}/{self.prefixlen}"


@dataclass(frozen=True, slots=True)
class LinkConf:
    a_switch: str
    a_port: int
    b_switch: str
    b_port: int


@dataclass(frozen=True, slots=True)
class AaaConf:
    host: str
    listen_host: str
    listen_port: int
    tls: TlsConf | None = None
    #: addresses this AAA server may dial its peer from, besides loopback and its own
    #: listen address (the peer table, issue 11)
    peer_addresses: tuple[str, ...] = ()
    max_connections: int = DEFAULT_MAX_CONNECTIONS   # accepted at once, its listener


@dataclass(frozen=True, slots=True)
class HomeAgentConf:
    host: str
    diameter_listen_host: str
    diameter_listen_port: int
    mip_listen_host: str
    mip_listen_port: int
    tls: TlsConf | None = None          # its Diameter listener (the AAAH dials it)
    max_connections: int = DEFAULT_MAX_CONNECTIONS


@dataclass(frozen=True, slots=True)
class DomainConf:
    name: str
    realm: str
    aaa: AaaConf | None = None
    home_agent: HomeAgentConf | None = None
    home_prefixes: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MobileNodeConf:
    name: str
    nai: str
    home_address: str
    home_agent: str
    mac: str
    mn_aaa_spi: int
    mn_aaa_key: bytes = field(repr=False)
    attach_switch: str
    attach_port: int
    lifetime: int
    # MN-HA security association (RFC 5944 §3.5.2): optional in the schema; without
    # it the MN can only register through AAA (no locally answered intra-domain move)
    mn_ha_spi: int = 0
    mn_ha_key: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class DestinationConf:
    prefix: str
    gateway: str


@dataclass(frozen=True, slots=True)
class SecurityConf:
    ike: str = "aes128-sha256-modp2048"
    esp: str = "aes128gcm16-ecp256"   # with PFS, as SecuritySpec


@dataclass(frozen=True, slots=True)
class QosConf:
    rate_kbps: int = 0  # 0 = unlimited
    dscp: int = 0


@dataclass(frozen=True, slots=True)
class ProfileConf:
    nai: str
    destinations: tuple[DestinationConf, ...]
    security: SecurityConf = SecurityConf()
    qos: QosConf = QosConf()
    smooth_handoff: bool = False          # claims 22-23: old FA forwards to the new one
    distribution: Distribution = "registration"   # or "on_demand" (claims 2, 5)
    seamless_handover: bool = False       # issue 14: prepare the FAs it can move to
    allowance: AllowanceConf | None = None   # what the user may change (issue 11)


@dataclass(frozen=True, slots=True)
class RelayConf:
    """A standard Diameter relay agent between realms (RFC 6733 §2.8.1; issue 17), run
    by someone else (e.g. freeDiameter).  The AAAs of the foreign domains it ``carries``
    dial it instead of the home AAA; it dials the home AAA, which admits it as the one
    peer allowed to bring requests of those domains (docs/security.md)."""

    name: str
    host: str                          # its Diameter identity (Origin-Host of its CER)
    realm: str                         # its Origin-Realm
    listen_host: str                   # where the foreign AAAs dial it
    listen_port: int
    carries: tuple[str, ...]           # foreign domain names whose requests it relays
    peer_addresses: tuple[str, ...] = ()   # addresses it connects from, besides loopback


@dataclass(frozen=True, slots=True)
class Topology:
    name: str
    switches: dict[str, SwitchConf]
    gateways: dict[str, GatewayConf]
    hosts: dict[str, HostConf]
    links: tuple[LinkConf, ...]
    domains: dict[str, DomainConf]
    mobile_nodes: dict[str, MobileNodeConf]
    vpn_profiles: dict[str, ProfileConf]
    source: str
    user_allowance: AllowanceConf | None = None  # every user's default allowance
    diameter_relays: dict[str, RelayConf] = field(default_factory=dict)   # issue 17

    def relay_of(self, domain: str) -> RelayConf | None:
        """The relay that carries ``domain``'s Diameter requests to the home AAA (None:
        its AAA dials the home AAA directly)."""
        for relay in self.diameter_relays.values():
            if domain in relay.carries:
                return relay
        return None

    def foreign_agents_of(self, domain: str) -> tuple[GatewayConf, ...]:
        """Foreign agent gateways of ``domain``, by name."""
        return tuple(
            gw for name, gw in sorted(self.gateways.items())
            if gw.kind == "foreign_agent" and gw.domain == domain
        )

    def access_switch_of(self, fa_name: str) -> SwitchConf:
        """The access switch served by foreign agent ``fa_name``."""
        for sw in self.switches.values():
            if sw.role == "access" and sw.foreign_agent == fa_name:
                return sw
        raise KeyError(f"no access switch is served by {fa_name!r}")

    def domain_of_gateway(self, name: str) -> DomainConf:
        return self.domains[self.gateways[name].domain]

    def home_domain(self) -> DomainConf:
        """The domain that runs a home agent (exactly one is expected)."""
        homes = [d for d in self.domains.values() if d.home_agent is not None]
        if len(homes) != 1:
            raise ValueError(
                f"{self.source}: expected exactly one domain with a home_agent, "
                f"found {len(homes)}"
            )
        return homes[0]

    def switch_by_dpid(self, dpid: int) -> SwitchConf:
        for sw in self.switches.values():
            if sw.dpid == dpid:
                return sw
        raise KeyError(f"no switch has dpid {dpid:#x}")

