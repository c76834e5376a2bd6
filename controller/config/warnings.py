"""What ``mipvpn check-config`` warns about (not errors): listeners reachable in clear."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from controller.config.schema import ConfigError, Topology
from controller.config.topology import load_topology


def config_warnings(path: str | Path, openflow: tuple[str, int] | None = None,
                    openflow_tls: bool = False) -> list[str]:
    """What ``check-config`` warns about in a valid ``path`` (listeners off loopback
    without TLS; ``diameter_warnings``); [] for an invalid one."""
    try:
        topo = load_topology(path)
    except ConfigError:
        return []
    return diameter_warnings(topo, openflow, openflow_tls)


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
