"""Topology configuration: YAML parsed once into strict, frozen objects.

FAUCET style: every key is known, every value is checked, and each problem is a
``ConfigError`` whose message names the file, the key path and the reason, e.g.::

    topology/default.yaml: gateways.fa1.core.ip: '10.0.0.300/24' is not an IPv4 interface

Nothing here holds runtime state.  ``check_config(path)`` backs ``mipvpn check-config``.
The schema is the one ``topology/default.yaml`` documents.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from controller.config.allowance import parse_allowance
from controller.config.diameter import DiameterParsing
from controller.config.parser import _Parser, _show, _type_name
from controller.config.schema import (DISTRIBUTIONS, GATEWAY_KINDS, GATEWAY_TYPES,
                                      DEFAULT_FA_MAX_PENDING, DEFAULT_FA_MAX_PENDING_AGE,
                                      MAX_DPID, MAX_FA_MAX_PENDING, MAX_GATEWAY_NAME,
                                      MAX_PORT, SWITCH_ROLES, AaaConf, ConfigError,
                                      DestinationConf, DomainConf, GatewayConf, HomeAgentConf,
                                      HostConf, IfaceConf, LinkConf, MobileNodeConf,
                                      ProfileConf, QosConf, SecurityConf, SwitchConf, Topology)
from controller.proto import nai as nai_syntax
from controller.topogen import GenerateError, expand

_HEX_KEY_RE = re.compile(r"^[0-9a-fA-F]{32}$")


# ---------------------------------------------------------------------------
# Loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r}", key_node.start_mark,
            )
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def load_topology(path: str | Path) -> Topology:
    """Read and validate a topology YAML file; raise ``ConfigError`` on any problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{source}: {where}YAML syntax error: {reason}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: YAML error: {exc}") from None
    return parse_topology(data, source, base_dir=Path(path).resolve().parent)


def check_config(path: str | Path) -> list[str]:
    """Problems found in ``path`` (empty list when the file is valid)."""
    try:
        load_topology(path)
    except ConfigError as exc:
        return [str(exc)]
    return []


def parse_topology(data: Any, source: str = "<config>",
                   base_dir: str | Path | None = None) -> Topology:
    """Validate an already-loaded YAML document (a dict) into a ``Topology``.  Relative
    file paths in it (TLS certificates) are relative to ``base_dir`` (the YAML file's
    directory; default: the current directory).  A document with ``generate`` is
    expanded first (``controller.topogen``, docs/experiments.md)."""
    if isinstance(data, dict) and "generate" in data:
        try:
            data = expand(data)
        except GenerateError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return _TopologyParser(source, base_dir).topology(data)


class _TopologyParser(_Parser, DiameterParsing):
    """The topology's sections, each from the primitives of ``_Parser``."""

    def topology(self, data: Any) -> Topology:
        top = self.mapping(
            data, "", ("name", "switches", "gateways", "domains"),
            ("hosts", "links", "mobile_nodes", "vpn_profiles", "user_allowance",
             "diameter_relays"),
        )
        name = self.string(top["name"], "name")
        switches = self.switches(top["switches"])
        domains = self.domains(top["domains"])
        gateways = self.gateways(top["gateways"], switches, domains)
        hosts = self.hosts(top.get("hosts"), switches)
        links = self.links(top.get("links"), switches)
        self.check_access_switches(switches, gateways)
        mobile_nodes = self.mobile_nodes(top.get("mobile_nodes"), switches, gateways, domains)
        profiles = self.profiles(top.get("vpn_profiles"), gateways, domains)
        user_allowance = (None if top.get("user_allowance") is None else
                          parse_allowance(self, top["user_allowance"], "user_allowance",
                                          gateways))
        relays = self.relays(top.get("diameter_relays"), domains)
        return Topology(
            name=name, switches=switches, gateways=gateways, hosts=hosts, links=links,
            domains=domains, mobile_nodes=mobile_nodes, vpn_profiles=profiles,
            source=self.source, user_allowance=user_allowance, diameter_relays=relays,
        )

    def switches(self, value: Any) -> dict[str, SwitchConf]:
        out: dict[str, SwitchConf] = {}
        dpids: dict[int, str] = {}
        for name, raw in self.named_mapping(value, "switches", allow_empty=False).items():
            path = f"switches.{name}"
            sw = self.mapping(raw, path, ("dpid", "role"), ("foreign_agent",))
            dpid = self.integer(sw["dpid"], f"{path}.dpid", 1, MAX_DPID)
            if dpid in dpids:
                raise self.fail(
                    f"{path}.dpid", f"dpid {dpid:#x} is already used by switch {dpids[dpid]!r}"
                )
            dpids[dpid] = name
            role = self.choice(sw["role"], f"{path}.role", SWITCH_ROLES)
            fa = sw.get("foreign_agent")
            if role == "access":
                if fa is None:
                    raise self.fail(f"{path}.foreign_agent", "missing required key for an access switch")
                fa = self.string(fa, f"{path}.foreign_agent")
            elif fa is not None:
                raise self.fail(f"{path}.foreign_agent", "only an access switch has a foreign_agent")
            out[name] = SwitchConf(name=name, dpid=dpid, role=role, foreign_agent=fa)  # type: ignore[arg-type]
        return out

    def iface(self, value: Any, path: str, switches: Mapping[str, SwitchConf]) -> IfaceConf:
        raw = self.mapping(value, path, ("ip", "mac", "switch", "port"))
        addr = self.interface(raw["ip"], f"{path}.ip")
        mac = self.mac(raw["mac"], f"{path}.mac")
        switch = self.string(raw["switch"], f"{path}.switch")
        port = self.integer(raw["port"], f"{path}.port", 1, MAX_PORT)
        self.claim_port(switch, port, f"{path}.switch", switches)
        return IfaceConf(ip=str(addr.ip), prefixlen=addr.network.prefixlen, mac=mac,
                         switch=switch, port=port)

    def gateways(
        self, value: Any, switches: Mapping[str, SwitchConf], domains: Mapping[str, DomainConf]
    ) -> dict[str, GatewayConf]:
        out: dict[str, GatewayConf] = {}
        for name, raw in self.named_mapping(value, "gateways", allow_empty=False).items():
            path = f"gateways.{name}"
            if len(name) > MAX_GATEWAY_NAME:
                raise self.fail(path, f"name longer than {MAX_GATEWAY_NAME} characters "
                                      "(it names interfaces)")
            gw = self.mapping(raw, path, ("kind", "domain", "core", "inside"),
                              ("gateway_type", "max_pending", "max_pending_age",
                               "peer_addresses"))
            kind = self.choice(gw["kind"], f"{path}.kind", GATEWAY_KINDS)
            domain = self.string(gw["domain"], f"{path}.domain")
            if domain not in domains:
                raise self.fail(f"{path}.domain", f"domain {domain!r} is not defined in domains")
            gtype = "static"
            if "gateway_type" in gw:
                if kind != "cn_gateway":
                    raise self.fail(f"{path}.gateway_type", "only a cn_gateway has a gateway_type")
                gtype = self.choice(gw["gateway_type"], f"{path}.gateway_type", GATEWAY_TYPES)
            max_pending = DEFAULT_FA_MAX_PENDING
            if "max_pending" in gw:
                if kind != "foreign_agent":
                    raise self.fail(f"{path}.max_pending",
                                    "only a foreign_agent has max_pending")
                max_pending = self.integer(gw["max_pending"], f"{path}.max_pending", 1,
                                           MAX_FA_MAX_PENDING)
            max_age = DEFAULT_FA_MAX_PENDING_AGE
            if "max_pending_age" in gw:
                if kind != "foreign_agent":
                    raise self.fail(f"{path}.max_pending_age",
                                    "only a foreign_agent has max_pending_age")
                max_age = gw["max_pending_age"]
                if isinstance(max_age, bool) or not isinstance(max_age, (int, float)):
                    raise self.fail(f"{path}.max_pending_age",
                                    f"expected seconds (a number), got {_show(max_age)}")
                if not 0.1 <= max_age <= 60:
                    raise self.fail(f"{path}.max_pending_age",
                                    f"{max_age} is out of range 0.1..60 (seconds)")
            if "peer_addresses" in gw and kind != "foreign_agent":
                raise self.fail(f"{path}.peer_addresses",
                                "only a foreign_agent has peer_addresses (it dials its AAA)")
            core = self.iface(gw["core"], f"{path}.core", switches)
            inside = self.iface(gw["inside"], f"{path}.inside", switches)
            out[name] = GatewayConf(name=name, kind=kind, domain=domain, core=core,  # type: ignore[arg-type]
                                    inside=inside, gateway_type=gtype,  # type: ignore[arg-type]
                                    max_pending=max_pending,
                                    max_pending_age=float(max_age),
                                    peer_addresses=self.peer_addresses(gw, path))
        return out

    def hosts(self, value: Any, switches: Mapping[str, SwitchConf]) -> dict[str, HostConf]:
        out: dict[str, HostConf] = {}
        for name, raw in self.named_mapping(value, "hosts").items():
            path = f"hosts.{name}"
            h = self.mapping(raw, path, ("ip", "mac", "gateway", "switch", "port"))
            addr = self.interface(h["ip"], f"{path}.ip")
            mac = self.mac(h["mac"], f"{path}.mac")
            gateway = self.ipv4(h["gateway"], f"{path}.gateway")
            if ipaddress.IPv4Address(gateway) not in addr.network:
                raise self.fail(f"{path}.gateway", f"{gateway} is not in {addr.network}")
            switch = self.string(h["switch"], f"{path}.switch")
            port = self.integer(h["port"], f"{path}.port", 1, MAX_PORT)
            self.claim_port(switch, port, f"{path}.switch", switches)
            out[name] = HostConf(name=name, ip=str(addr.ip), prefixlen=addr.network.prefixlen,
                                 mac=mac, gateway=gateway, switch=switch, port=port)
        return out

    def link_end(self, value: Any, path: str) -> tuple[str, int]:
        if not isinstance(value, str) or value.count(":") != 1:
            raise self.fail(path, f"{_show(value)} is not switch:port")
        switch, _, port = value.partition(":")
        if not switch or not port.isdigit():
            raise self.fail(path, f"{_show(value)} is not switch:port")
        return switch, self.integer(int(port), path, 1, MAX_PORT)

    def links(self, value: Any, switches: Mapping[str, SwitchConf]) -> tuple[LinkConf, ...]:
        def link(raw: Any, path: str) -> LinkConf:
            if not isinstance(raw, list) or len(raw) != 2:
                raise self.fail(path, f"expected [switch:port, switch:port], got {_show(raw)}")
            (a, ap), (b, bp) = (self.link_end(raw[i], f"{path}[{i}]") for i in range(2))
            if a == b:
                raise self.fail(path, f"link connects switch {a!r} to itself")
            self.claim_port(a, ap, f"{path}[0]", switches)
            self.claim_port(b, bp, f"{path}[1]", switches)
            return LinkConf(a_switch=a, a_port=ap, b_switch=b, b_port=bp)

        return self.list_of(value, "links", link)

    def check_access_switches(
        self, switches: Mapping[str, SwitchConf], gateways: Mapping[str, GatewayConf]
    ) -> None:
        served: dict[str, str] = {}
        for sw in switches.values():
            if sw.role != "access" or sw.foreign_agent is None:
                continue
            path = f"switches.{sw.name}.foreign_agent"
            gw = gateways.get(sw.foreign_agent)
            if gw is None:
                raise self.fail(path, f"gateway {sw.foreign_agent!r} is not defined in gateways")
            if gw.kind != "foreign_agent":
                raise self.fail(path, f"gateway {gw.name!r} is a {gw.kind}, not a foreign_agent")
            if gw.name in served:
                raise self.fail(path, f"{gw.name!r} already serves switch {served[gw.name]!r}")
            served[gw.name] = sw.name
            if gw.inside.switch != sw.name:
                raise self.fail(
                    path, f"{gw.name!r} has its inside interface on {gw.inside.switch!r}, "
                          f"not on {sw.name!r}"
                )

    def domains(self, value: Any) -> dict[str, DomainConf]:
        out: dict[str, DomainConf] = {}
        for name, raw in self.named_mapping(value, "domains", allow_empty=False).items():
            path = f"domains.{name}"
            d = self.mapping(raw, path, ("realm",),
                             ("aaa", "home_agent", "home_prefixes", "prefixes"))
            realm = self.string(d["realm"], f"{path}.realm")
            aaa = None
            if d.get("aaa") is not None:
                a = self.mapping(d["aaa"], f"{path}.aaa", ("host", "listen"),
                                 ("tls", "peer_addresses", "max_connections"))
                host, port = self.endpoint(a["listen"], f"{path}.aaa.listen")
                tls = self.tls(a["tls"], f"{path}.aaa.tls") if "tls" in a else None
                aaa = AaaConf(host=self.string(a["host"], f"{path}.aaa.host"),
                              listen_host=host, listen_port=port, tls=tls,
                              peer_addresses=self.peer_addresses(a, f"{path}.aaa"),
                              max_connections=self.max_connections(a, f"{path}.aaa"))
            ha = None
            if d.get("home_agent") is not None:
                hp = f"{path}.home_agent"
                h = self.mapping(d["home_agent"], hp, ("host", "diameter_listen", "mip_listen"),
                                 ("tls", "max_connections"))
                dh, dp = self.endpoint(h["diameter_listen"], f"{hp}.diameter_listen")
                mh, mp = self.endpoint(h["mip_listen"], f"{hp}.mip_listen")
                ha = HomeAgentConf(host=self.string(h["host"], f"{hp}.host"),
                                   diameter_listen_host=dh, diameter_listen_port=dp,
                                   mip_listen_host=mh, mip_listen_port=mp,
                                   tls=self.tls(h["tls"], f"{hp}.tls") if "tls" in h else None,
                                   max_connections=self.max_connections(h, hp))
            home_prefixes = self.list_of(d.get("home_prefixes"), f"{path}.home_prefixes",
                                         self.network)
            prefixes = self.list_of(d.get("prefixes"), f"{path}.prefixes", self.network)
            out[name] = DomainConf(name=name, realm=realm, aaa=aaa, home_agent=ha,
                                   home_prefixes=home_prefixes, prefixes=prefixes)
        self.check_tls(out)
        return out

    def mobile_nodes(
        self, value: Any, switches: Mapping[str, SwitchConf],
        gateways: Mapping[str, GatewayConf], domains: Mapping[str, DomainConf],
    ) -> dict[str, MobileNodeConf]:
        out: dict[str, MobileNodeConf] = {}
        nais: dict[str, str] = {}
        for name, raw in self.named_mapping(value, "mobile_nodes").items():
            path = f"mobile_nodes.{name}"
            m = self.mapping(raw, path, ("nai", "home_address", "home_agent", "mac",
                                         "mn_aaa_spi", "mn_aaa_key", "attach", "lifetime"),
                             ("mn_ha_spi", "mn_ha_key"))
            nai = self.string(m["nai"], f"{path}.nai")
            why = nai_syntax.problem(nai, need_realm=True)
            if why is not None:
                raise self.fail(f"{path}.nai", f"{nai!r} is not an NAI (user@realm): {why}")
            if nai in nais:
                raise self.fail(f"{path}.nai", f"{nai!r} is already used by {nais[nai]!r}")
            nais[nai] = name
            hoa = self.ipv4(m["home_address"], f"{path}.home_address")
            ha_name = self.string(m["home_agent"], f"{path}.home_agent")
            ha = gateways.get(ha_name)
            if ha is None:
                raise self.fail(f"{path}.home_agent", f"gateway {ha_name!r} is not defined in gateways")
            if ha.kind != "home_agent":
                raise self.fail(f"{path}.home_agent", f"gateway {ha_name!r} is a {ha.kind}, not a home_agent")
            home_prefixes = domains[ha.domain].home_prefixes
            if home_prefixes and not any(
                ipaddress.IPv4Address(hoa) in ipaddress.IPv4Network(p) for p in home_prefixes
            ):
                raise self.fail(f"{path}.home_address",
                                f"{hoa} is not in the home prefixes of domain {ha.domain!r}")
            mac = self.mac(m["mac"], f"{path}.mac")
            spi = self.integer(m["mn_aaa_spi"], f"{path}.mn_aaa_spi", 256, 0xFFFFFFFF)
            key = m["mn_aaa_key"]
            if not isinstance(key, str) or not _HEX_KEY_RE.match(key):
                raise self.fail(f"{path}.mn_aaa_key",
                                "must be 16 bytes as 32 hex digits (value not shown)")
            attach = self.mapping(m["attach"], f"{path}.attach", ("switch", "port"))
            sw = self.string(attach["switch"], f"{path}.attach.switch")
            port = self.integer(attach["port"], f"{path}.attach.port", 1, MAX_PORT)
            self.claim_port(sw, port, f"{path}.attach.switch", switches)
            if switches[sw].role != "access":
                raise self.fail(f"{path}.attach.switch", f"switch {sw!r} is not an access switch")
            lifetime = self.integer(m["lifetime"], f"{path}.lifetime", 1, 0xFFFE)
            ha_spi, ha_key = 0, b""
            if ("mn_ha_spi" in m) != ("mn_ha_key" in m):
                missing = "mn_ha_key" if "mn_ha_spi" in m else "mn_ha_spi"
                raise self.fail(f"{path}.{missing}",
                                "mn_ha_spi and mn_ha_key go together (MN-HA association)")
            if "mn_ha_spi" in m:
                ha_spi = self.integer(m["mn_ha_spi"], f"{path}.mn_ha_spi", 256, 0xFFFFFFFF)
                raw_key = m["mn_ha_key"]
                if not isinstance(raw_key, str) or not _HEX_KEY_RE.match(raw_key):
                    raise self.fail(f"{path}.mn_ha_key",
                                    "must be 16 bytes as 32 hex digits (value not shown)")
                ha_key = bytes.fromhex(raw_key)
                if ha_key == bytes.fromhex(key):
                    raise self.fail(f"{path}.mn_ha_key",
                                    "must differ from mn_aaa_key (value not shown)")
            out[name] = MobileNodeConf(
                name=name, nai=nai, home_address=hoa, home_agent=ha_name, mac=mac,
                mn_aaa_spi=spi, mn_aaa_key=bytes.fromhex(key), attach_switch=sw,
                attach_port=port, lifetime=lifetime, mn_ha_spi=ha_spi, mn_ha_key=ha_key,
            )
        return out

    def profiles(self, value: Any, gateways: Mapping[str, GatewayConf],
                 domains: Mapping[str, DomainConf]) -> dict[str, ProfileConf]:
        out: dict[str, ProfileConf] = {}
        if value is None:
            return out
        if not isinstance(value, dict):
            raise self.fail("vpn_profiles", f"expected a mapping of NAIs, got {_type_name(value)}")
        for nai, raw in value.items():
            path = f"vpn_profiles.{nai}"
            why = (nai_syntax.problem(nai, need_realm=True) if isinstance(nai, str)
                   else "not a string")
            if why is not None:
                raise self.fail(path, f"{nai!r} is not an NAI (user@realm): {why}")
            p = self.mapping(raw, path, ("destinations",),
                             ("security", "qos", "smooth_handoff", "distribution",
                              "seamless_handover", "allowance"))

            def destination(raw_dest: Any, dpath: str) -> DestinationConf:
                d = self.mapping(raw_dest, dpath, ("prefix", "gateway"))
                prefix = self.network(d["prefix"], f"{dpath}.prefix")
                gw_name = self.string(d["gateway"], f"{dpath}.gateway")
                gw = gateways.get(gw_name)
                if gw is None:
                    raise self.fail(f"{dpath}.gateway", f"gateway {gw_name!r} is not defined in gateways")
                if gw.kind != "cn_gateway":
                    raise self.fail(f"{dpath}.gateway", f"gateway {gw_name!r} is a {gw.kind}, not a cn_gateway")
                # issue 11: the home agent refuses VPN information whose correspondent
                # selectors reach beyond the networks behind the gateway; such a profile
                # could never register, so it is an error here, not a 129 at run time
                behind = [ipaddress.ip_network(n) for n in domains[gw.domain].prefixes]
                net = ipaddress.ip_network(prefix)
                if not any(net.subnet_of(b) for b in behind):  # type: ignore[arg-type]
                    raise self.fail(f"{dpath}.prefix", f"{prefix} is not within the networks "
                                    f"behind {gw_name!r} (domains.{gw.domain}.prefixes: "
                                    f"{', '.join(str(b) for b in behind) or 'none'})")
                return DestinationConf(prefix=prefix, gateway=gw_name)

            dests = self.list_of(p["destinations"], f"{path}.destinations", destination)
            if not dests:
                raise self.fail(f"{path}.destinations", "must list at least one destination")
            security = SecurityConf()
            if p.get("security") is not None:
                s = self.mapping(p["security"], f"{path}.security", (), ("ike", "esp"))
                security = SecurityConf(
                    ike=self.string(s.get("ike", security.ike), f"{path}.security.ike"),
                    esp=self.string(s.get("esp", security.esp), f"{path}.security.esp"),
                )
            qos = QosConf()
            if p.get("qos") is not None:
                q = self.mapping(p["qos"], f"{path}.qos", (), ("rate_kbps", "dscp"))
                qos = QosConf(
                    rate_kbps=self.integer(q.get("rate_kbps", 0), f"{path}.qos.rate_kbps",
                                           0, 100_000_000),
                    dscp=self.integer(q.get("dscp", 0), f"{path}.qos.dscp", 0, 63),
                )
            smooth = p.get("smooth_handoff", False)
            if not isinstance(smooth, bool):
                raise self.fail(f"{path}.smooth_handoff",
                                f"expected true or false, got {_show(smooth)}")
            seamless = p.get("seamless_handover", False)
            if not isinstance(seamless, bool):
                raise self.fail(f"{path}.seamless_handover",
                                f"expected true or false, got {_show(seamless)}")
            distribution = self.choice(p.get("distribution", "registration"),
                                       f"{path}.distribution", DISTRIBUTIONS)
            allowance = (None if p.get("allowance") is None else
                         parse_allowance(self, p["allowance"], f"{path}.allowance", gateways))
            out[nai] = ProfileConf(nai=nai, destinations=dests, security=security, qos=qos,
                                   smooth_handoff=smooth, seamless_handover=seamless,
                                   distribution=distribution,  # type: ignore[arg-type]
                                   allowance=allowance)
        return out
