"""Who may talk Diameter to whom (issue 11: trust boundaries), from the topology (pure).

Two questions, both answered from the topology alone, never from what a peer says
about itself beyond its capabilities exchange:

* ``admit``: may a connection that announced ``host``/``realm`` in its CER, from
  ``address`` (with or without a verified TLS certificate naming ``host``), finish its
  capabilities exchange at role ``listener``?  The HA's listener takes only its AAAH,
  the AAAH's only the AAAFs of the topology's foreign domains, an AAAF's only its own
  FAs.  The source address must be loopback, the peer's configured ``listen`` address
  or one of its ``peer_addresses`` -- unless the peer proved ``host`` with a
  certificate our CA signed (TLS with ``verify_peer``).  Refused: CEA 3010
  DIAMETER_UNKNOWN_PEER (the transport's job; ``peer_policy`` adapts this to it).
* ``judge``: may the peer on a connection (the identity admitted at CER) send this
  request to this role, and does what the request says about its sender agree with
  that connection?  HAR at the HA only from its AAAH; AMR at an AAAF only from one of
  its FAs naming itself (Origin-Host and the FA AVP); AMR at the AAAH only from an AAAF
  of the topology naming itself as MIP-Originating-Foreign-AAA, for an FA of that
  AAAF's domain.  Refused: 5003 DIAMETER_AUTHORIZATION_REJECTED (docs/decisions.md).

Through a relay (issue 17, ``diameter_relays`` in the topology): the home AAA's
listener admits the relay (its own Origin-Host/Realm, from loopback, its configured
addresses or a certificate) instead of the AAAs of the domains it ``carries``, which
then reach the home AAA only through it.  A request the relay brings must show where
it came from: MIP-Originating-Foreign-AAA names the AAA of a domain that relay carries,
the last Route-Record (the relay's own statement of the peer it received the request
from, RFC 6733 §6.1.9) names that same AAA, and the rest is judged as if that AAA were
connected directly.  The relay is trusted for its carried domains and nothing else.

Role keys are those of ``roles.build_roles``: ``ha``, ``aaah``, ``aaaf:<domain>``,
``fa:<gateway>``.  Diameter identities compare case-insensitively.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from controller.core.role import AAAF, kind_of
from controller.proto import diameter as dia

if TYPE_CHECKING:
    from controller.config import Topology

UNKNOWN_PEER = dia.UNKNOWN_PEER            # 3010, in a CEA
AUTHORIZATION_REJECTED = dia.AUTHORIZATION_REJECTED  # 5003, RFC 6733 §7.1.5



@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a peer or a request is refused, and the Result-Code that says so.  The
    reason names roles and hosts of the topology, never a key."""

    result_code: int
    reason: str


@dataclass(frozen=True, slots=True)
class AllowedPeer:
    """A Diameter client the topology names for one listener."""

    role: str                         # its role key: "aaah", "aaaf:<d>", "fa:<gw>"
    host: str                         # its Origin-Host (lower case)
    realm: str                        # its Origin-Realm (lower case)
    name: str                         # FA: gateway name; AAA: domain name
    addresses: frozenset[str] = frozenset()   # source addresses besides loopback
    #: an AAAF: the FA gateways of its domain (what an AMR it relays may name)
    members: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PeerTable:
    """Listener role key -> Origin-Host -> the peer allowed there."""

    listeners: Mapping[str, Mapping[str, AllowedPeer]] = field(default_factory=dict)
    #: relay host -> the AAAs (as allowed peers of the home AAA) of the domains it carries
    behind: Mapping[str, Mapping[str, AllowedPeer]] = field(default_factory=dict)

    def peer(self, listener: str, host: str) -> AllowedPeer | None:
        return self.listeners.get(listener, {}).get(_ident(host))


def shown(name: str, limit: int = 64) -> str:
    """A peer-supplied name for a log line: escaped (repr) and cut at ``limit``."""
    return repr(name[:limit]) + ("..." if len(name) > limit else "")


def _ident(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _specific_ip(host: str) -> str | None:
    """``host`` as an address when it is one a client can dial from (not a wildcard
    nor a name); None otherwise."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return None if ip.is_unspecified else str(ip)


def _addresses(listen_host: str | None, extra: tuple[str, ...]) -> frozenset[str]:
    out = {str(ipaddress.ip_address(a)) for a in extra}
    if listen_host:
        own = _specific_ip(listen_host)
        if own is not None and not ipaddress.ip_address(own).is_loopback:
            out.add(own)          # (loopback is allowed anyway)
    return frozenset(out)


def build_peer_table(topo: Topology) -> PeerTable:
    """Every listener's allowed peers (see the module docstring)."""
    listeners: dict[str, dict[str, AllowedPeer]] = {}
    aaafs: dict[str, AllowedPeer] = {}
    for dname, dom in sorted(topo.domains.items()):
        if dom.home_agent is not None or dom.aaa is None:
            continue
        fas: dict[str, AllowedPeer] = {}
        for gw in topo.foreign_agents_of(dname):
            host = _ident(f"{gw.name}.{dom.realm}")
            fas[host] = AllowedPeer(f"fa:{gw.name}", host, _ident(dom.realm), gw.name,
                                    _addresses(None, getattr(gw, "peer_addresses", ())))
        listeners[f"aaaf:{dname}"] = fas
        host = _ident(dom.aaa.host)
        aaafs[host] = AllowedPeer(
            f"aaaf:{dname}", host, _ident(dom.realm), dname,
            _addresses(dom.aaa.listen_host, getattr(dom.aaa, "peer_addresses", ())),
            frozenset(p.name for p in fas.values()))
    direct = dict(aaafs)
    relays: dict[str, AllowedPeer] = {}
    behind: dict[str, dict[str, AllowedPeer]] = {}
    for rname, relay in sorted(getattr(topo, "diameter_relays", {}).items()):
        host = _ident(relay.host)
        carried = {h: p for h, p in aaafs.items() if p.name in relay.carries}
        for h in carried:
            direct.pop(h, None)
        relays[host] = AllowedPeer(f"relay:{rname}", host, _ident(relay.realm), rname,
                                   _addresses(relay.listen_host, relay.peer_addresses),
                                   frozenset(relay.carries))
        behind[host] = carried
    for dname, dom in sorted(topo.domains.items()):
        if dom.home_agent is None or dom.aaa is None:
            continue
        listeners["aaah"] = {**direct, **relays}
        host = _ident(dom.aaa.host)
        listeners["ha"] = {host: AllowedPeer(
            "aaah", host, _ident(dom.realm), dname,
            _addresses(dom.aaa.listen_host, getattr(dom.aaa, "peer_addresses", ())))}
    return PeerTable(listeners, behind)


def _address_ok(peer: AllowedPeer, address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or str(ip) in peer.addresses


def admit(table: PeerTable, listener: str, host: str, realm: str, address: str,
          tls_identity: bool) -> Refusal | None:
    """None when the connection may finish its CER at ``listener``; else why not.
    ``tls_identity``: the peer presented a certificate our CA signed that names
    ``host`` (then the source address does not matter)."""
    peer = table.peer(listener, host)
    if peer is None:
        return Refusal(UNKNOWN_PEER, f"{shown(host)} is not a peer of {listener}")
    if _ident(realm) != peer.realm:
        return Refusal(UNKNOWN_PEER, f"{shown(host)} announced realm {shown(realm)}, "
                                     f"not {peer.realm!r}")
    if not tls_identity and not _address_ok(peer, address):
        return Refusal(UNKNOWN_PEER, f"{shown(host)} connected from {shown(address)}, "
                                     "not from an address configured for it")
    return None


class PeerPolicy:
    """``admit`` for one listener, as the transport's ``allowed_peers`` takes it: called
    with the CER's host and realm, the connection's source address and port, whether a
    verified certificate names the host, and (on loopback) whether the peer's socket
    belongs to this process's user (``same_user``; None: unknown).

    - A connection this process made itself (``own_endpoint(address, port)``: the
      source is the local end of one of our own client connections) is one of our
      roles: its address proves it, whatever the listener's address (a listener on a
      public address still takes its own process's links).
    - A peer that claims a role this process runs (``local_roles``) must be on such a
      connection (or prove the name with a certificate): loopback alone proves
      nothing, any local process can connect from it and announce any Origin-Host; it
      cannot take over the port our own client connection holds.
    - A peer of another process on loopback, without a certificate, must run as this
      controller's user (``same_user``): another user's process is refused.
    """

    def __init__(self, table: PeerTable, listener: str,
                 local_roles: frozenset[str] = frozenset(),
                 own_endpoint: Callable[[str, int], bool] | None = None) -> None:
        self.table = table
        self.listener = listener
        self.local_roles = local_roles
        self.own_endpoint = own_endpoint

    def is_own(self, address: str, port: int) -> bool:
        return self.own_endpoint is not None and self.own_endpoint(address, port)

    def __call__(self, host: str, realm: str, address: str, tls_identity: bool,
                 port: int = 0, same_user: bool | None = None) -> Refusal | None:
        own = self.is_own(address, port)
        refusal = admit(self.table, self.listener, host, realm, address,
                        tls_identity or own)
        if refusal is not None or tls_identity or own:
            return refusal
        peer = self.table.peer(self.listener, host)
        if peer is not None and peer.role in self.local_roles:
            return Refusal(UNKNOWN_PEER, f"{shown(host)} is a role of this process, but "
                                         f"{shown(address)}:{port} is not a connection "
                                         "this process made")
        if _is_loopback(address) and not same_user:
            return Refusal(UNKNOWN_PEER, f"{shown(host)} connected over loopback from a "
                                         "process of another user (or of no known "
                                         "owner): on a shared machine use TLS")
        return None


def peer_policy(table: PeerTable, listener: str,
                local_roles: frozenset[str] = frozenset(),
                own_endpoint: Callable[[str, int], bool] | None = None) -> PeerPolicy:
    """The ``PeerPolicy`` of ``listener`` (see there)."""
    return PeerPolicy(table, listener, local_roles, own_endpoint)


def _is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


# ------------------------------------------------------------------ per-command rules


def _refuse(why: str) -> Refusal:
    return Refusal(AUTHORIZATION_REJECTED, why)


def judge(table: PeerTable, role: str, request: Any, peer_host: str,
          peer_realm: str) -> Refusal | None:
    """None when the peer on this connection (``peer_host``/``peer_realm``, its CER)
    may send ``request`` to ``role`` and the request's claims about its sender agree
    with it; else the refusal to answer with."""
    peer = table.peer(role, peer_host)
    if peer is None or peer.realm != _ident(peer_realm):
        return Refusal(UNKNOWN_PEER, f"{shown(peer_host)} is not a peer of {role}")
    if role == "ha":
        if not isinstance(request, dia.HaRequest):
            return _refuse(f"{type(request).__name__} is not accepted by the home agent")
        if _ident(request.origin_host) != peer.host:
            return _refuse("HAR Origin-Host is not the connected home AAA")
        return None
    if not isinstance(request, dia.AmRequest):
        return _refuse(f"{type(request).__name__} is not accepted by {role}")
    if kind_of(role) == AAAF:
        # the FA the AMR names gets that FA's keys: it must be the FA on the connection
        if request.foreign_agent != peer.name:
            return _refuse("AMR names another foreign agent than the connected one")
        if (_ident(request.origin_host) != peer.host
                or _ident(request.origin_realm) != peer.realm):
            return _refuse("AMR Origin-Host/Realm is not the connected foreign agent")
        return None
    if role == "aaah":
        if peer.role.startswith("relay:"):
            return _judge_relayed(table, peer, request)
        return _judge_at_home(peer, request, "the connected AAA")
    return _refuse(f"{role} takes no Diameter requests")


def _judge_at_home(aaaf: AllowedPeer, request: dia.AmRequest, who: str) -> Refusal | None:
    """An AMR the foreign AAA ``aaaf`` sends the home AAA (directly or, ``who`` says,
    as the relay reports)."""
    origin = request.originating_foreign_aaa
    if origin is None or (_ident(origin[0]), _ident(origin[1])) != (aaaf.realm, aaaf.host):
        return _refuse(f"MIP-Originating-Foreign-AAA is not {who}")
    if request.foreign_agent not in aaaf.members:
        return _refuse("AMR names a foreign agent outside the relaying AAA's domain")
    if (_ident(request.origin_host) != _ident(f"{request.foreign_agent}.{aaaf.realm}")
            or _ident(request.origin_realm) != aaaf.realm):
        return _refuse("AMR Origin-Host is not the foreign agent it names")
    return None


def _judge_relayed(table: PeerTable, relay: AllowedPeer,
                   request: dia.AmRequest) -> Refusal | None:
    """An AMR the relay on the connection brings (see the module docstring)."""
    origin = request.originating_foreign_aaa
    if origin is None:
        return _refuse("relayed AMR without MIP-Originating-Foreign-AAA")
    aaaf = table.behind.get(relay.host, {}).get(_ident(origin[1]))
    if aaaf is None:
        return _refuse(f"{shown(origin[1])} is not behind relay {relay.name!r}")
    if not request.route_record or _ident(request.route_record[-1]) != aaaf.host:
        return _refuse("the relay's Route-Record does not name the originating AAA "
                       f"{aaaf.host!r}")
    return _judge_at_home(aaaf, request, f"the AAA relay {relay.name!r} received it from")
