"""The Diameter part of the topology schema: TLS on each link, the peer table's extra
source addresses, connection caps (issues 5 and 11; docs/topology.md).

``DiameterParsing`` is a mixin of ``topology._TopologyParser`` (it uses the ``fail``,
``mapping``, ``string``, ``integer``, ``list_of`` and ``base_dir`` of ``parser._Parser``).
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from typing import Any

from controller.config.schema import (DEFAULT_MAX_CONNECTIONS, MAX_MAX_CONNECTIONS, DomainConf,
                                      RelayConf, TlsConf)


class DiameterParsing:
    """TLS, ``peer_addresses`` and ``max_connections`` of the topology."""

    base_dir: Any
    fail: Any
    mapping: Any
    string: Any
    integer: Any
    list_of: Any
    named_mapping: Any
    endpoint: Any

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

    def relays(self, value: Any, domains: Mapping[str, DomainConf]) -> dict[str, RelayConf]:
        """``diameter_relays`` (issue 17): each a relay agent between the foreign
        domains it ``carries`` and the home AAA.  A domain is carried by one relay at
        most; a relay's identity is none of ours."""
        out: dict[str, RelayConf] = {}
        carried: dict[str, str] = {}
        ours = {d.aaa.host.lower() for d in domains.values() if d.aaa is not None}
        ours |= {d.home_agent.host.lower() for d in domains.values() if d.home_agent}
        for name, raw in self.named_mapping(value, "diameter_relays").items():
            path = f"diameter_relays.{name}"
            r = self.mapping(raw, path, ("host", "realm", "listen", "carries"),
                             ("peer_addresses",))
            host = self.string(r["host"], f"{path}.host")
            if host.lower() in ours:
                raise self.fail(f"{path}.host", f"{host!r} is one of our own Diameter "
                                                "identities, not a relay's")
            listen_host, listen_port = self.endpoint(r["listen"], f"{path}.listen")
            if listen_port == 0:
                raise self.fail(f"{path}.listen", "a relay runs in its own process: "
                                                  "give its real port, not 0")
            names = self.list_of(r["carries"], f"{path}.carries", self.string)
            if not names:
                raise self.fail(f"{path}.carries", "empty: name the foreign domains "
                                                   "whose requests it relays")
            for i, dname in enumerate(names):
                dom = domains.get(dname)
                where = f"{path}.carries[{i}]"
                if dom is None or dom.aaa is None or dom.home_agent is not None:
                    raise self.fail(where, f"{dname!r} is not a foreign domain with an aaa")
                if dname in carried:
                    raise self.fail(where, f"{dname!r} is carried by diameter_relays."
                                           f"{carried[dname]} already")
                carried[dname] = name
            out[name] = RelayConf(name=name, host=host,
                                  realm=self.string(r["realm"], f"{path}.realm"),
                                  listen_host=listen_host, listen_port=listen_port,
                                  carries=names, peer_addresses=self.peer_addresses(r, path))
        return out
