"""Is this VPN information what the home AAA would compute for this user? (issue 11)

The HA must not load a tunnel, keep a binding or sign a Binding Update from VPN
information it was merely told.  ``check_vpn_info`` compares a ``VpnInfo`` with what
``HomeAaa.vpn_set_path`` (claim 8, 19) computes from the same inputs — the user record
and profile of the VPN database and the topology's gateways — and returns the first
reason it is not that, or None:

- it is the user's: NAI, home address, home agent as in the user record;
- its FA is a foreign agent of the topology (the one at the care-of address, when
  given), its previous FA one too (or none); options as in the profile;
- every tunnel end is a gateway of the topology at its real core address, and every
  tunnel is one of the user's VPN set path (same id, same ends, same initiator), each
  exactly once, none missing;
- a stationary HA<->CN-GW tunnel is exactly the topology's (and carries no key: its
  key is the home AAA's, set at start);
- a tunnel of the user: the MN side's selector is exactly the home address /32; every
  correspondent selector lies inside a profile destination behind that end's gateway
  and inside that gateway's own prefixes; security and QoS are the profile's; it has a
  key;
- a smooth-handoff tunnel (claims 22-23), if any, joins the previous FA and the FA with
  the same rules.

Pure: no I/O; the caller reads the user and profile (``VpnDatabase``) and passes the
gateways (``roles.gateway_infos``).  Reasons never carry keys; names and addresses in
them come from the checked information and are quoted with ``repr``.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import TYPE_CHECKING

from controller.core.vpn import (DISTRIBUTION_ON_DEMAND, DISTRIBUTION_REGISTRATION,
                                 GatewayType, QosSpec, SecuritySpec, TunnelEnd, TunnelSpec,
                                 VpnInfo, owner_of, tunnel_name)

if TYPE_CHECKING:
    from controller.core.aaa_home import GatewayInfo, UserRecord, VpnProfile

#: an IPv4 network as (network address as an integer, prefix length)
Network = tuple[int, int]


def check_vpn_info(info: VpnInfo, user: UserRecord, profile: VpnProfile | None,
                   gateways: dict[str, GatewayInfo], *,
                   care_of_address: str | None = None) -> str | None:
    """None if ``info`` is the user's VPN information as the home AAA computes it
    (for the FA it names; the HAR's subset: ``vpn.for_home_agent``), else the reason."""
    reason = _check_identity(info, user, profile, gateways, care_of_address)
    if reason:
        return reason
    try:
        expected = expected_tunnels(user, profile, gateways, info.foreign_agent)
        allowed = _correspondents(profile, gateways, user.home_agent)
    except (KeyError, ValueError) as exc:
        return f"the profile names no usable gateway or prefix ({exc})"
    security = profile.security if profile else SecuritySpec()
    qos = profile.qos if profile else QosSpec()
    home = (f"{user.home_address}/32",)
    seen: set[str] = set()
    for spec in info.tunnels:
        reason = _check_ends(spec, gateways)
        if reason:
            return reason
        if spec.tunnel_id in seen:
            return f"tunnel {spec.tunnel_id!r} appears twice"
        seen.add(spec.tunnel_id)
        want = expected.get(spec.tunnel_id)
        if want is None or want.ends() != spec.ends():
            return (f"tunnel {spec.tunnel_id!r} {spec.ends()!r} is not on the user's "
                    "VPN path")
        if not want.psk:            # stationary: exactly the topology's, no key
            if spec != want:
                return f"stationary tunnel {spec.tunnel_id!r} differs from the topology's"
            continue
        reason = _check_user_tunnel(spec, info.foreign_agent, home, allowed, security, qos)
        if reason:
            return reason
        if spec.initiator != want.initiator:
            return f"tunnel {spec.tunnel_id!r}: initiator {spec.initiator!r} is not " \
                   f"{want.initiator!r}"
    missing = sorted(set(expected) - seen)
    if missing:
        return f"tunnels missing from the VPN path: {missing!r}"
    if info.handoff is not None:
        return _check_handoff(info, user, gateways, allowed)
    return None


def expected_tunnels(user: UserRecord, profile: VpnProfile | None,
                     gateways: dict[str, GatewayInfo],
                     foreign_agent: str) -> dict[str, TunnelSpec]:
    """Tunnel id -> the tunnel ``HomeAaa.vpn_set_path`` makes for ``user`` at
    ``foreign_agent``, with ``psk`` set to ``b"x"`` for the user's tunnels (their key is
    fresh each time) and ``b""`` for the stationary ones.  Raises KeyError for a gateway
    the topology does not have."""
    ha, fa = gateways[user.home_agent], gateways[foreign_agent]
    security = profile.security if profile else SecuritySpec()
    qos = profile.qos if profile else QosSpec()
    on_demand = bool(profile and profile.distribution == DISTRIBUTION_ON_DEMAND)
    owner = owner_of(user.nai)
    home = (f"{user.home_address}/32",)
    via_ha: list[str] = []
    direct: dict[str, list[str]] = {}
    out: dict[str, TunnelSpec] = {}
    for dest in profile.destinations if profile else ():
        gw = gateways[dest.gateway]
        if gw.gateway_type is GatewayType.DYNAMIC:
            direct.setdefault(gw.name, []).append(dest.prefix)
            continue
        via_ha.append(dest.prefix)
        static = TunnelSpec(tunnel_name("static", ha.name, gw.name),
                            TunnelEnd(ha.name, ha.address, ha.prefixes),
                            TunnelEnd(gw.name, gw.address, gw.prefixes), psk=b"",
                            initiator=gw.name)
        out[static.tunnel_id] = static
    if via_ha:
        spec = TunnelSpec(tunnel_name(owner, ha.name, fa.name),
                          TunnelEnd(ha.name, ha.address, tuple(via_ha)),
                          TunnelEnd(fa.name, fa.address, home), psk=b"x",
                          security=security, qos=qos, initiator=fa.name)
        out[spec.tunnel_id] = spec
    for name, prefixes in direct.items():
        gw = gateways[name]
        spec = TunnelSpec(tunnel_name(owner, gw.name, fa.name),
                          TunnelEnd(gw.name, gw.address, tuple(prefixes)),
                          TunnelEnd(fa.name, fa.address, home), psk=b"x",
                          security=security, qos=qos,
                          initiator=gw.name if on_demand else fa.name)
        out[spec.tunnel_id] = spec
    return out


# ------------------------------------------------------------------ the parts


def _check_identity(info: VpnInfo, user: UserRecord, profile: VpnProfile | None,
                    gateways: dict[str, GatewayInfo],
                    care_of_address: str | None) -> str | None:
    if info.nai != user.nai:
        return f"VPN information is for user {info.nai!r}, not {user.nai!r}"
    if info.home_address != user.home_address:
        return f"home address {info.home_address!r} is not the user's"
    if info.home_agent != user.home_agent:
        return f"home agent {info.home_agent!r} is not the user's"
    ha = gateways.get(info.home_agent)
    if ha is None or ha.kind != "home_agent":
        return f"home agent {info.home_agent!r} is not a home agent of the topology"
    fa = gateways.get(info.foreign_agent)
    if fa is None or fa.kind != "foreign_agent":
        return f"foreign agent {info.foreign_agent!r} is not a foreign agent of the " \
               "topology"
    if care_of_address is not None and fa.address != care_of_address:
        return (f"foreign agent {info.foreign_agent!r} is not at the care-of address "
                f"{care_of_address!r}")
    previous = info.previous_foreign_agent
    if previous and (previous not in gateways
                     or gateways[previous].kind != "foreign_agent"):
        return f"previous foreign agent {previous!r} is not a foreign agent of the topology"
    if info.smooth_handoff != bool(profile and profile.smooth_handoff):
        return "smooth handoff differs from the profile"
    if info.seamless_handover != bool(profile and profile.seamless_handover):
        return "seamless handover differs from the profile"
    distribution = profile.distribution if profile else DISTRIBUTION_REGISTRATION
    if info.distribution != distribution:
        return f"distribution {info.distribution!r} differs from the profile"
    return None


def _check_ends(spec: TunnelSpec, gateways: dict[str, GatewayInfo]) -> str | None:
    for end in (spec.a, spec.b):
        gw = gateways.get(end.gateway)
        if gw is None:
            return f"tunnel {spec.tunnel_id!r}: end {end.gateway!r} is not a gateway of " \
                   "the topology"
        if end.address != gw.address:
            return (f"tunnel {spec.tunnel_id!r}: end {end.gateway!r} at {end.address!r} "
                    "is not its core address")
    return None


def _check_user_tunnel(spec: TunnelSpec, mn_side: str, home: tuple[str, ...],
                       allowed: dict[str, list[tuple[Network, tuple[Network, ...]]]],
                       security: SecuritySpec, qos: QosSpec) -> str | None:
    """A tunnel of the user: MN side exactly the home address, correspondent side
    inside the profile's destinations behind that gateway, the profile's service."""
    mine, other = (spec.a, spec.b) if spec.a.gateway == mn_side else (spec.b, spec.a)
    if tuple(mine.selectors) != home:
        return (f"tunnel {spec.tunnel_id!r}: MN-side selectors {mine.selectors!r} are "
                f"not the user's home address {home[0]!r}")
    reason = _within(spec.tunnel_id, other, allowed.get(other.gateway, []))
    if reason:
        return reason
    if spec.security != security:
        return f"tunnel {spec.tunnel_id!r}: security differs from the profile"
    if spec.qos != qos:
        return f"tunnel {spec.tunnel_id!r}: qos differs from the profile"
    if not spec.psk:
        return f"tunnel {spec.tunnel_id!r}: no key"
    return None


def _within(tunnel_id: str, end: TunnelEnd,
            allowed: list[tuple[Network, tuple[Network, ...]]]) -> str | None:
    if not end.selectors:
        return f"tunnel {tunnel_id!r}: no correspondent selector"
    for selector in end.selectors:
        try:
            net = _network(selector)
        except ValueError:
            return f"tunnel {tunnel_id!r}: selector {selector!r} is not an IPv4 network"
        if not any(_inside(net, dest) and any(_inside(net, p) for p in behind)
                   for dest, behind in allowed):
            return (f"tunnel {tunnel_id!r}: correspondent selector {selector!r} is not "
                    f"inside a profile destination behind {end.gateway!r} and its prefixes")
    return None


def _correspondents(profile: VpnProfile | None, gateways: dict[str, GatewayInfo],
                    ha: str) -> dict[str, list[tuple[Network, tuple[Network, ...]]]]:
    """Tunnel end (HA for static gateways, the CN-GW for dynamic ones) -> the profile
    destinations it may carry, each with the prefixes of the gateway behind it."""
    out: dict[str, list[tuple[Network, tuple[Network, ...]]]] = {}
    for dest in profile.destinations if profile else ():
        gw = gateways[dest.gateway]
        end = gw.name if gw.gateway_type is GatewayType.DYNAMIC else ha
        behind = tuple(_network(p) for p in gw.prefixes)
        out.setdefault(end, []).append((_network(dest.prefix), behind))
    return out


@lru_cache(maxsize=4096)
def _network(text: str) -> Network:
    """``"10.32.0.0/24"`` -> (address, 24); ValueError unless a network with zero host
    bits (``ipaddress`` is slow; selectors repeat, so parsed ones are kept)."""
    net = ipaddress.IPv4Network(text)
    return int(net.network_address), net.prefixlen


def _inside(net: Network, outer: Network) -> bool:
    """``net`` is a subnet of ``outer`` (or the same network)."""
    return net[1] >= outer[1] and (net[0] ^ outer[0]) >> (32 - outer[1]) == 0


def _check_handoff(info: VpnInfo, user: UserRecord, gateways: dict[str, GatewayInfo],
                   allowed: dict[str, list[tuple[Network, tuple[Network, ...]]]]
                   ) -> str | None:
    """The old-FA -> new-FA forwarding tunnel (``vpn.handoff_tunnel``): its service
    is that of the FA's first (already checked) tunnel."""
    spec = info.handoff
    assert spec is not None
    old, new = info.previous_foreign_agent, info.foreign_agent
    if (not old or spec.ends() != (old, new) or spec.initiator != new
            or spec.tunnel_id != tunnel_name(owner_of(user.nai), old, new)):
        return "smooth-handoff tunnel does not join the previous FA and the FA"
    reason = _check_ends(spec, gateways)
    if reason:
        return reason
    every = [pair for pairs in allowed.values() for pair in pairs]
    home = (f"{user.home_address}/32",)
    if tuple(spec.b.selectors) != home:
        return "smooth-handoff tunnel: MN-side selectors are not the user's home address"
    reason = _within(spec.tunnel_id, spec.a, every) if spec.a.selectors else None
    if reason:
        return reason
    first = next(iter(info.tunnels_of(new)), None)
    security = first.security if first else SecuritySpec()
    qos = first.qos if first else QosSpec()
    if spec.security != security or spec.qos != qos or not spec.psk:
        return "smooth-handoff tunnel: security, qos or key differ from the profile"
    return None
