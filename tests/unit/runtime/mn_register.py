"""mn1 registering through a runtime's real MIPv4 socket, as the tests of the runtime's
links (loopback, TLS, trust, relay) all do: one RRQ built from the topology, sent to an
FA's ingress, its reply decoded."""

from __future__ import annotations

import socket
import time
from typing import Any

from controller.proto import mip, mip_keys
from controller.loadgen import build_rrq


def register(rt: Any, fa: str = "fa1", ident: int | None = None,
             previous: str | None = None, sock: socket.socket | None = None,
             via: Any = None, mn_fa_key: bool = False) -> Any:
    """mn1's registration through ``fa`` of ``via`` (default ``rt``; ``rt`` gives the
    topology); ``previous`` names the FA it leaves (the previous-FA extension). With
    ``mn_fa_key`` the MN-FA key the reply's nonce gives is kept on ``rt.mn_fa`` and sent
    on the next request, like the MN client (RFC 3957; issue 11)."""
    topo = rt.topo
    mn = topo.mobile_nodes["mn1"]
    ident = mip.ntp_identification(time.time()) if ident is None else ident
    prev = topo.gateways[previous].core.ip if previous else None
    fa_spi, fa_key = getattr(rt, "mn_fa", (0, b"")) if mn_fa_key else (0, b"")
    raw = build_rrq(mn.nai, mn.home_address, topo.gateways["ha"].core.ip,
                    topo.gateways[fa].core.ip, mn.mn_aaa_spi, mn.mn_aaa_key, ident,
                    previous_coa=prev, ha_spi=mn.mn_ha_spi, ha_key=mn.mn_ha_key,
                    fa_spi=fa_spi, fa_key=fa_key)
    own = sock is None
    if sock is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
    try:
        sock.sendto(raw, (via or rt).ingress[f"fa:{fa}"].address)
        rrp = mip.decode(sock.recvfrom(2048)[0])
    finally:
        if own:
            sock.close()
    if mn_fa_key and rrp.accepted:
        nonce = mip_keys.nonce_reply(rrp)
        if nonce is not None:
            rt.mn_fa = (nonce.spi, mip_keys.mn_fa_key(mn.mn_aaa_key, nonce.nonce, mn.nai))
    return rrp
