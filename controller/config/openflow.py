"""OpenFlow over TLS: the command line's ``--of-tls-*`` options, checked."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass


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
