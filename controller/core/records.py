"""The roles' records of tunnels and VPN information as plain JSON-able dicts (issue 5:
what a restart restores; ``controller.core.persist`` says how records are kept).

Pure, and compiled with the hot modules (issue 15: every renewal writes the VPN
information of four roles' records).  Records hold key material (PSKs, in hex): they
go to the 0600 VPN database only and are never logged."""

from __future__ import annotations

from typing import Any

from controller.core.vpn import QosSpec, SecuritySpec, TunnelEnd, TunnelSpec, VpnInfo


def end_to_dict(end: TunnelEnd) -> dict[str, Any]:
    return {"gateway": end.gateway, "address": end.address,
            "selectors": list(end.selectors)}


def end_from_dict(d: dict[str, Any]) -> TunnelEnd:
    return TunnelEnd(d["gateway"], d["address"], tuple(d["selectors"]))


def tunnel_to_dict(spec: TunnelSpec) -> dict[str, Any]:
    return {"tunnel_id": spec.tunnel_id, "a": end_to_dict(spec.a), "b": end_to_dict(spec.b),
            "psk": spec.psk.hex(), "ike": spec.security.ike, "esp": spec.security.esp,
            "rate_kbps": spec.qos.rate_kbps, "dscp": spec.qos.dscp,
            "initiator": spec.initiator}


def tunnel_from_dict(d: dict[str, Any]) -> TunnelSpec:
    return TunnelSpec(d["tunnel_id"], end_from_dict(d["a"]), end_from_dict(d["b"]),
                      bytes.fromhex(d["psk"]), SecuritySpec(d["ike"], d["esp"]),
                      QosSpec(int(d["rate_kbps"]), int(d["dscp"])), d["initiator"])


def vpn_info_to_dict(info: VpnInfo) -> dict[str, Any]:
    return {"nai": info.nai, "home_address": info.home_address,
            "home_agent": info.home_agent, "foreign_agent": info.foreign_agent,
            "tunnels": [tunnel_to_dict(t) for t in info.tunnels],
            "previous_foreign_agent": info.previous_foreign_agent,
            "smooth_handoff": info.smooth_handoff, "distribution": info.distribution,
            "handoff": tunnel_to_dict(info.handoff) if info.handoff else None}


def vpn_info_from_dict(d: dict[str, Any]) -> VpnInfo:
    return VpnInfo(d["nai"], d["home_address"], d["home_agent"], d["foreign_agent"],
                   tuple(tunnel_from_dict(t) for t in d["tunnels"]),
                   d.get("previous_foreign_agent", ""), bool(d.get("smooth_handoff")),
                   d.get("distribution", "registration"),
                   tunnel_from_dict(d["handoff"]) if d.get("handoff") else None)
