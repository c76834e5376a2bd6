"""Topology and deployment configuration: YAML parsed once into strict, frozen objects.

FAUCET style: every key is known, every value is checked, and each problem is a
``ConfigError`` whose message names the file, the key path and the reason, e.g.::

    topology/default.yaml: gateways.fa1.core.ip: '10.0.0.300/24' is not an IPv4 interface

Nothing here holds runtime state.  ``check_config(path)`` backs ``mipvpn check-config``.
The schema is the one ``topology/default.yaml`` documents.

Modules, leaves first (none imports a later one; none imports ``controller.core``):
``schema`` (the frozen objects, limits, ``ConfigError``), ``parser`` (the primitives
``_Parser``), ``diameter`` (TLS, peer addresses, connection caps, relays), ``allowance``
(``allowance:`` keys), ``openflow`` (``--of-tls-*`` options), ``topology`` (load, parse,
validate), ``warnings`` (what ``check-config`` warns about).
"""

from controller.config.schema import (AaaConf, AllowanceConf, ConfigError, DestinationConf,
                                      DomainConf, GatewayConf, HomeAgentConf, HostConf,
                                      IfaceConf, LinkConf, MobileNodeConf, ProfileConf,
                                      QosConf, RelayConf, SecurityConf, SwitchConf, TlsConf,
                                      Topology)
from controller.config.topology import check_config, load_topology, parse_topology
from controller.config.warnings import config_warnings

__all__ = [
    "AaaConf",
    "AllowanceConf",
    "ConfigError",
    "DestinationConf",
    "DomainConf",
    "GatewayConf",
    "HomeAgentConf",
    "HostConf",
    "IfaceConf",
    "LinkConf",
    "MobileNodeConf",
    "ProfileConf",
    "QosConf",
    "RelayConf",
    "SecurityConf",
    "SwitchConf",
    "TlsConf",
    "Topology",
    "check_config",
    "config_warnings",
    "load_topology",
    "parse_topology",
]
