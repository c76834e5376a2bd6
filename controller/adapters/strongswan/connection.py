"""What one gateway's side of a tunnel becomes in VICI: the ``load-conn`` message, its
CHILD_SA names, per-tunnel IKE identities and the shared secret's id (no I/O)."""

from __future__ import annotations

import ipaddress
from typing import Any, Sequence

from controller.core.vpn import TunnelSide

def _norm_ts(selector: str) -> str:
    """A traffic selector as charon prints it (``10.30.0.0/24``), for comparisons."""
    try:
        return str(ipaddress.ip_network(selector, strict=False))
    except ValueError:
        return selector


def _identity(tunnel_id: str, gateway: str) -> str:
    """Per-tunnel IKE identity: two tunnels between the same gateways never share one."""
    return f"{tunnel_id}@{gateway}"


def _secret_id(tunnel_id: str) -> str:
    return f"psk:{tunnel_id}"


def secret_for(side: TunnelSide) -> dict[str, Any]:
    """The VICI ``load-shared`` message of a tunnel side's PSK."""
    tid = side.tunnel_id
    return {"id": _secret_id(tid), "type": "IKE", "data": side.psk,
            "owners": [_identity(tid, side.local.gateway), _identity(tid, side.remote.gateway)]}


# IPsec policy priority of a secondary tunnel end (``TunnelSide.secondary``).  Lower
# values win.  kernel-netlink computes at most 600,000 (base 200,000: x2 for installed
# SAs and trap policies, x3 for fallback drops, minus the selector sizes), so with kernel
# XFRM this end's SA never backs the policy another tunnel with the same selectors (and
# the same reqid) installs.  kernel-libipsec ignores manual priorities (measured: the
# MN's uplink still went into the forwarding tunnel), see ``_reassert_primaries``.
SECONDARY_POLICY_PRIORITY = 0xFFFFF


def child_names(tunnel_id: str, count: int) -> list[str]:
    """CHILD_SA config names of a tunnel: its id, then ``<id>#2``, ``<id>#3``, ..."""
    return [tunnel_id] + [f"{tunnel_id}#{i}" for i in range(2, count + 1)]


def connection_for(side: TunnelSide, dpd_delay: str = "2s",
                   remote_groups: Sequence[Sequence[str]] | None = None) -> dict[str, Any]:
    """The VICI ``load-conn`` message for one gateway's side of a tunnel (no secret).

    A secondary side gets a fixed, low policy priority (``SECONDARY_POLICY_PRIORITY``).
    ``remote_groups`` splits the remote selectors over several CHILD_SAs (names from
    ``child_names``), each with all local selectors; default: one CHILD_SA."""
    name = side.tunnel_id
    groups = [list(g) for g in remote_groups] if remote_groups else [
        list(side.remote.selectors)]
    children: dict[str, Any] = {}
    for child_name, remote in zip(child_names(name, len(groups)), groups):
        child: dict[str, Any] = {
            "mode": "tunnel",
            "local_ts": list(side.local.selectors),
            "remote_ts": remote,
            "esp_proposals": [side.security.esp],
            "start_action": "none",
            "dpd_action": "clear",
            "close_action": "none",
        }
        if side.secondary:
            child["priority"] = SECONDARY_POLICY_PRIORITY
        children[child_name] = child
    return {name: {
        "version": 2,
        "local_addrs": [side.local.address],
        "remote_addrs": [side.remote.address],
        "proposals": [side.security.ike],
        "mobike": "no",
        "dpd_delay": dpd_delay,
        "unique": "no",
        "local": {"auth": "psk", "id": _identity(name, side.local.gateway)},
        "remote": {"auth": "psk", "id": _identity(name, side.remote.gateway)},
        "children": children,
    }}
