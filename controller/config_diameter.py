"""The Diameter part of the topology schema: TLS on each link, the peer table's extra
source addresses, connection caps (issues 5 and 11; docs/topology.md), and the
warnings ``mipvpn check-config`` prints for listeners reachable in clear.

``DiameterParsing`` is a mixin of ``config._Parser`` (it uses its ``fail``,
``mapping``, ``string``, ``integer``, ``list_of`` and ``base_dir``).
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controller.config import DomainConf, Topology

#: accepted connections a Diameter listener holds at once, by default (issue 11)
DEFAULT_MAX_CONNECTIONS = 64
MAX_MAX_CONNECTIONS = 65535


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


class DiameterParsing:
    """TLS, ``peer_addresses`` and ``max_connections`` of the topology."""

    base_dir: Any
    fail: Any
    mapping: Any
    string: Any
    integer: Any
    list_of: Any

    def readable_file(self, value: Any, path: str) -> str:
        name = self.string(value, path)
        full = (self.base_dir / name).resolve()
        if not full.is_file():
            raise self.fail(path, f"file {str(full)!r} does not exist")
        if not os.access(full, os.R_OK):
            raise self.fail(path, f"file {str(full)!r} is not readable")
        return str(full)

    def tls(self, value: Any, path: str) -> TlsConf:
        t = self.mapping(value, path, ("cert", "key", "ca"), ("verify_peer",))
        cert = self.readable_file(t["cert"], f"{path}.cert")
        key = self.readable_file(t["key"], f"{path}.key")
        ca = self.readable_file(t["ca"], f"{path}.ca")
        verify = t.get("verify_peer", True)
        if not isinstance(verify, bool):
            raise self.fail(f"{path}.verify_peer", f"expected true or false, got {verify!r}")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            ctx.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            raise self.fail(f"{path}.key", f"{cert!r} and {key!r} are not a PEM "
                                           f"certificate and its private key "
                                           f"({getattr(exc, 'reason', None) or exc})") from None
        try:
            ctx.load_verify_locations(ca)
        except (ssl.SSLError, OSError) as exc:
            raise self.fail(f"{path}.ca", f"{ca!r} holds no PEM CA certificate "
                                          f"({getattr(exc, 'reason', None) or exc})") from None
        return TlsConf(cert=cert, key=key, ca=ca, verify_peer=verify)

    def peer_address(self, value: Any, path: str) -> str:
        """A source address a peer may connect from: one IPv4/IPv6 address, not a
        wildcard nor a network."""
        try:
            if not isinstance(value, str):
                raise ValueError
            ip = ipaddress.ip_address(value)
        except ValueError:
            raise self.fail(path, f"{value!r} is not an IP address") from None
        if ip.is_unspecified:
            raise self.fail(path, f"{value!r} is a wildcard, not a peer's address")
        return str(ip)

    def peer_addresses(self, raw: Mapping[str, Any], path: str) -> tuple[str, ...]:
        return tuple(self.list_of(raw.get("peer_addresses"), f"{path}.peer_addresses",
                                  self.peer_address))

    def max_connections(self, raw: Mapping[str, Any], path: str) -> int:
        if "max_connections" not in raw:
            return DEFAULT_MAX_CONNECTIONS
        return int(self.integer(raw["max_connections"], f"{path}.max_connections", 1,
                                MAX_MAX_CONNECTIONS))

    def check_tls(self, domains: Mapping[str, DomainConf]) -> None:
        """The inter-domain link (a foreign AAAF dialling the home AAA) runs over TLS
        when the home AAA has ``tls``; then every foreign AAA needs its own ``tls``
        (client certificate, CA) and none may have one otherwise.  The AAAH dials the
        HA with the home AAA's ``tls``: a home agent with ``tls`` needs it."""
        homes = [d for d in domains.values() if d.home_agent is not None and d.aaa]
        home_tls = any(d.aaa is not None and d.aaa.tls is not None for d in homes)
        home_key = f"domains.{homes[0].name}.aaa.tls" if homes else "the home domain's aaa.tls"
        for d in homes:
            if d.home_agent is not None and d.home_agent.tls is not None and (
                    d.aaa is None or d.aaa.tls is None):
                raise self.fail(f"domains.{d.name}.aaa.tls",
                                f"missing: the home agent listens over TLS "
                                f"(domains.{d.name}.home_agent.tls), so the home AAA, "
                                "which dials it, needs a certificate, key and CA too")
        for d in domains.values():
            if d.home_agent is not None or d.aaa is None:
                continue
            if home_tls and d.aaa.tls is None:
                raise self.fail(f"domains.{d.name}.aaa.tls",
                                f"missing: the home AAA listens over TLS ({home_key}), so "
                                "this domain's AAA needs a certificate, key and CA too")
            if not home_tls and d.aaa.tls is not None and homes:
                raise self.fail(f"domains.{d.name}.aaa.tls",
                                f"the home AAA has no TLS ({home_key} is not set): set both "
                                "or neither")


# ------------------------------------------------------------------ warnings


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False            # a name: where it points is not known here


def diameter_warnings(topo: Topology, openflow: tuple[str, int] | None = None,
                      openflow_tls: bool = False) -> list[str]:
    """What ``check-config`` warns about (not errors): each Diameter listener, and the
    OpenFlow listener ``openflow`` (host, port), that is not on loopback while TLS is
    off there -- peers then talk in clear and are told apart only by address."""
    out: list[str] = []
    src = topo.source
    for name, dom in sorted(topo.domains.items()):
        listeners = []
        if dom.aaa is not None:
            listeners.append((f"domains.{name}.aaa", "listen", dom.aaa.listen_host,
                              dom.aaa.listen_port, dom.aaa.tls))
        if dom.home_agent is not None:
            ha = dom.home_agent
            listeners.append((f"domains.{name}.home_agent", "diameter_listen",
                              ha.diameter_listen_host, ha.diameter_listen_port, ha.tls))
        for path, key, host, port, tls in listeners:
            if tls is None and not _loopback(host):
                out.append(f"{src}: {path}.{key}: warning: Diameter on {host}:{port} is "
                           f"not loopback and TLS is off ({path}.tls): peers talk in "
                           "clear and are identified only by their source address")
    if openflow is not None and not openflow_tls and not _loopback(openflow[0]):
        out.append(f"{src}: --of-listen: warning: OpenFlow on {openflow[0]}:{openflow[1]} "
                   "is not loopback and TLS is off (--of-tls-cert/--of-tls-key): any "
                   "host that reaches it can act as a switch")
    return out


# ------------------------------------------------------------------ OpenFlow over TLS


@dataclass(frozen=True, slots=True)
class OpenFlowTls:
    """os-ken's OpenFlow listener over TLS (``--of-tls-cert/--of-tls-key``, optional
    ``--of-tls-ca``: then switches must present a certificate it signed)."""

    cert: str
    key: str
    ca: str | None = None


def openflow_tls(cert: str | None, key: str | None,
                 ca: str | None = None) -> OpenFlowTls | None:
    """The command line's OpenFlow TLS options, checked (``ValueError`` naming the
    option); None when TLS is off."""
    if cert is None and key is None:
        if ca is not None:
            raise ValueError("--of-tls-ca: needs --of-tls-cert and --of-tls-key")
        return None
    if cert is None or key is None:
        missing = "--of-tls-key" if key is None else "--of-tls-cert"
        raise ValueError(f"{missing}: --of-tls-cert and --of-tls-key go together")
    out = []
    for option, name in (("--of-tls-cert", cert), ("--of-tls-key", key),
                         ("--of-tls-ca", ca)):
        if name is None:
            out.append(None)
            continue
        full = os.path.abspath(name)
        if not os.path.isfile(full) or not os.access(full, os.R_OK):
            raise ValueError(f"{option}: file {full!r} does not exist or is not readable")
        out.append(full)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(out[0], out[1])
        if out[2] is not None:
            ctx.load_verify_locations(out[2])
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"--of-tls-cert/--of-tls-key/--of-tls-ca: not a PEM certificate, "
                         f"its key and a CA ({getattr(exc, 'reason', None) or exc})") from None
    return OpenFlowTls(cert=out[0], key=out[1], ca=out[2])
