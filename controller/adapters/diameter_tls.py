"""TLS contexts for Diameter between domains from the topology's ``aaa.tls`` (RFC 6733
§13, TLS from the start; docs/security.md).

The home AAA server listens over TLS with its certificate; with ``verify_peer`` (the
default) it requires a client certificate signed by ``ca`` (mutual TLS).  A foreign
domain's AAA server dials it presenting its own certificate and checks the home
server's against ``ca`` and the home AAA's Diameter identity (``aaa.host``).  Links
inside a domain (FA -> AAAF, AAAH -> HA) stay plain TCP: they run on loopback inside
one controller process.
"""

from __future__ import annotations

import ssl
from typing import Any

from controller.adapters.diameter_peer import tls_client_context, tls_server_context


def server_context(tls: Any) -> ssl.SSLContext | None:
    """The listening side (``config.TlsConf`` or None: plain TCP)."""
    if tls is None:
        return None
    return tls_server_context(tls.cert, tls.key, tls.ca,
                              require_client_cert=bool(tls.verify_peer))


def client_context(tls: Any) -> ssl.SSLContext | None:
    """The dialling side: trusts ``tls.ca``, presents ``tls.cert``."""
    if tls is None:
        return None
    return tls_client_context(tls.ca, tls.cert, tls.key)
