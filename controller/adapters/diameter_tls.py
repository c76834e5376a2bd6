"""TLS contexts for Diameter from the topology's ``aaa.tls`` and ``home_agent.tls``
(RFC 6733 §13, TLS from the start; docs/security.md).

A listener with ``tls`` (the home AAA, a foreign AAA, the HA) presents its certificate;
with ``verify_peer`` (the default) it requires a client certificate signed by ``ca``
(mutual TLS), without it a client certificate is optional and a client without one is
admitted by the peer table's address check only.  The dialling side (AAAF -> AAAH,
FA -> AAAF, AAAH -> HA) presents its own domain's certificate and checks the server's
against ``ca`` and the server's Diameter identity.
"""

from __future__ import annotations

import ssl
from typing import Any


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


def tls_server_context(certfile: str, keyfile: str, cafile: str | None = None, *,
                       require_client_cert: bool = True) -> ssl.SSLContext:
    """A TLS >= 1.2 server context; with ``cafile``, clients must present a
    certificate it signed (mutual TLS, as RFC 6733 §13 expects between peers)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    if cafile is not None:
        ctx.load_verify_locations(cafile)
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return ctx


def tls_client_context(cafile: str, certfile: str | None = None,
                       keyfile: str | None = None) -> ssl.SSLContext:
    """A TLS >= 1.2 client context trusting ``cafile`` (hostname checked), presenting
    ``certfile`` when given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile)
    if certfile is not None:
        ctx.load_cert_chain(certfile, keyfile)
    return ctx
