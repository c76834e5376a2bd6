"""strongSwan adapter: one ``charon`` per gateway host, driven over VICI.

Three pieces:

* ``CharonProcess`` writes a private ``strongswan.conf`` for one gateway and runs charon
  inside that gateway's Mininet host (the host needs ``privateDirs=['/run']``: charon's
  pid file path is compiled in).  Its VICI socket lives on the shared filesystem so the
  controller, in the root namespace, can reach it.
* ``StrongSwanGateway`` is the controller-side driver for one gateway: it turns a
  ``TunnelSide`` into a VICI connection + shared secret, initiates it, tears it down and
  reports SA state as typed ``TunnelState`` values.
* ``prepare_gateway_host`` sets the sysctls a gateway needs to route through libipsec.

Where the kernel has no ESP (these machines) charon uses ``kernel-libipsec``: ESP in
userspace, always UDP-encapsulated (port 4500), cleartext in and out of the TUN device
``ipsec0``; charon routes each remote selector via ``ipsec0`` in table 220 and libipsec
picks the SA by its own policy lookup on (source, destination).  See docs/strongswan.md.

The pre-shared key is never logged and never put in an exception message.

Modules: ``charon`` (process and strongswan.conf), ``anchors`` (selector anchors),
``connection`` (VICI connection messages), ``state`` (typed SA state), ``driver``
(``StrongSwanGateway``), ``session`` (its VICI sessions), ``primaries`` (the secondary
tunnel's primaries), ``teardown`` (taking SAs down).
"""

from controller.adapters.strongswan.anchors import ANCHOR_DEV, SelectorAnchors
from controller.adapters.strongswan.charon import (CHARON, DOS_LIMITS, ROUTING_TABLE,
                                                   CharonError, CharonProcess, charon_plugins,
                                                   detect_kernel_esp, prepare_gateway_host,
                                                   stop_all, strongswan_conf)
from controller.adapters.strongswan.connection import (SECONDARY_POLICY_PRIORITY, child_names,
                                                       connection_for)
from controller.adapters.strongswan.driver import StrongSwanGateway, TunnelError
from controller.adapters.strongswan.state import ChildSaState, TunnelState

__all__ = [
    "ANCHOR_DEV", "CHARON", "DOS_LIMITS", "ROUTING_TABLE", "SECONDARY_POLICY_PRIORITY",
    "CharonError", "CharonProcess", "ChildSaState", "SelectorAnchors", "StrongSwanGateway",
    "TunnelError", "TunnelState", "charon_plugins", "child_names", "connection_for",
    "detect_kernel_esp", "prepare_gateway_host", "stop_all", "strongswan_conf",
]
