"""The roles of one controller, built from the topology (pure).

``build_roles`` is what ``Runtime`` runs at start and what the unit-test harness runs to
get the very same FA / AAAF / AAAH / HA / CN-GW objects: role keys are ``"aaah"``,
``"ha"``, ``"aaaf:<domain>"``, ``"fa:<gateway>"`` and ``"cngw:<gateway>"`` (one per
``cn_gateway``; only the dynamic ones accept Binding Updates).

Security associations made here: the HA reads each user's MN-HA key from the VPN
database (``mn_ha_key``); the HA<->CN-GW binding keys are the home AAA's
(``HomeAaa.binding_keys``, provisioned at start), given to the HA and to each CN-GW.
The HA also gets the VPN database and the topology's gateways (``db``, ``gateways``)
to check each registration's NAI, home address and VPN information against the user's
record and profile (``vpn_policy.check_vpn_info``, issue 11).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from controller.core.aaa_foreign import ForeignAaa
from controller.core.aaa_home import GatewayInfo, HomeAaa, VpnDatabase
from controller.core.cn_gateway import CnGateway
from controller.core.fa_conf import NeighbourPort
from controller.core.foreign_agent import ForeignAgent, ForeignAgentConf
from controller.core.role import AAAF, AAAH, CNGW, FA, HA, RoleKey
from controller.core.home_agent import HomeAgent
from controller.core.neighbours import NeighbourMap
from controller.core.vpn import GatewayType

if TYPE_CHECKING:
    from controller.config import DomainConf, Topology


@dataclass
class Roles:
    roles: dict[str, Any] = field(default_factory=dict)
    gateway_infos: dict[str, GatewayInfo] = field(default_factory=dict)
    home_domains: dict[str, DomainConf] = field(default_factory=dict)
    home_realms: set[str] = field(default_factory=set)
    ha_by_address: dict[str, str] = field(default_factory=dict)  # HA core address -> name
    home_domain: DomainConf | None = None


def gateway_infos(topo: Topology) -> dict[str, GatewayInfo]:
    infos: dict[str, GatewayInfo] = {}
    for name, gw in topo.gateways.items():
        dom = topo.domains[gw.domain]
        prefixes = tuple(dom.home_prefixes) if gw.kind == "home_agent" else (
            tuple(dom.prefixes) if gw.kind == "cn_gateway" else ())
        infos[name] = GatewayInfo(name, gw.kind, gw.core.ip,
                                  GatewayType(getattr(gw, "gateway_type", "static")
                                              or "static"), prefixes)
    return infos


def mn_ha_key_of(db: VpnDatabase) -> Callable[[str], tuple[int, bytes] | None]:
    """NAI -> (SPI, key) of the user's MN-HA security association, read from the VPN
    database at each registration (so a key change applies at once); None without."""
    def lookup(nai: str) -> tuple[int, bytes] | None:
        user = db.user(nai)
        if user is None or not user.mn_ha_key:
            return None
        return (user.mn_ha_spi, user.mn_ha_key)
    return lookup


def _neighbour_ports(topo: Topology, neighbours: NeighbourMap,
                     fa: str) -> tuple[NeighbourPort, ...]:
    """Issue 14: the FAs the HA prepares tunnels towards for an MN at ``fa`` (the same
    plan, ``NeighbourMap.plan``), with where their access switches take its frames."""
    out = []
    for name in neighbours.plan(fa, seamless=True):
        gw = topo.gateways[name]
        out.append(NeighbourPort(name, topo.switches[gw.inside.switch].dpid, gw.inside.port,
                                 gw.inside.mac))
    return tuple(out)


def build_roles(topo: Topology, db: VpnDatabase) -> Roles:
    """Every role of ``topo``: the home domain's AAAH and HA, each foreign domain's
    AAAF and its FAs.  ``db`` is the VPN database the AAAH reads."""
    out = Roles(gateway_infos=gateway_infos(topo))
    fa_by_coa = {gw.core.ip: name for name, gw in topo.gateways.items()
                 if gw.kind == "foreign_agent"}
    out.home_domains = {n: d for n, d in topo.domains.items() if d.home_agent}
    out.home_realms = {d.realm for d in out.home_domains.values()}
    neighbours = NeighbourMap.from_topology(topo)
    for dname, dom in out.home_domains.items():
        assert dom.home_agent is not None and dom.aaa is not None
        ha_names = [n for n, g in topo.gateways.items()
                    if g.kind == "home_agent" and g.domain == dname]
        ha_name = ha_names[0]
        aaah = HomeAaa(dom.aaa.host, dom.realm, db, out.gateway_infos,
                       {ha_name: dom.home_agent.host})
        out.roles[RoleKey(AAAH)] = aaah
        out.roles[RoleKey(HA)] = HomeAgent(ha_name, topo.gateways[ha_name].core.ip,
                                    dom.home_agent.host, dom.realm, fa_by_coa,
                                    mn_ha_key=mn_ha_key_of(db),
                                    binding_keys=dict(aaah.binding_keys),
                                    db=db, gateways=out.gateway_infos,
                                    neighbours=neighbours)
        for name, key in aaah.binding_keys.items():
            info = out.gateway_infos[name]
            out.roles[RoleKey(CNGW, name)] = CnGateway(name, info.address, info.gateway_type,
                                                     keys={"ha": key})
        out.ha_by_address[topo.gateways[ha_name].core.ip] = ha_name
        out.home_domain = dom
    for dname, dom in topo.domains.items():
        if dom.home_agent or dom.aaa is None:
            continue
        fas = {n: g.core.ip for n, g in topo.gateways.items()
               if g.kind == "foreign_agent" and g.domain == dname}
        out.roles[RoleKey(AAAF, dname)] = ForeignAaa(dom.aaa.host, dom.realm, fas,
                                                   out.home_realms)
        for fa_name in fas:
            gw = topo.gateways[fa_name]
            conf = ForeignAgentConf(
                name=fa_name, host=f"{fa_name}.{dom.realm}", realm=dom.realm,
                core_address=gw.core.ip, inside_address=gw.inside.ip,
                inside_mac=gw.inside.mac,
                access_dpid=topo.switches[gw.inside.switch].dpid,
                fa_port=gw.inside.port,
                peers={ip: n for n, ip in fas.items()},
                max_pending=gw.max_pending, max_pending_age=gw.max_pending_age,
                neighbours=_neighbour_ports(topo, neighbours, fa_name),
                fa_macs={n: g.inside.mac for n, g in topo.gateways.items()
                         if g.kind == "foreign_agent"})
            out.roles[RoleKey(FA, fa_name)] = ForeignAgent(conf)
    return out
