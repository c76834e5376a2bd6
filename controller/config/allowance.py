"""``allowance:`` / ``user_allowance:`` of the topology YAML (issue 11): parsed into an
``AllowanceConf``.  The policy that applies an allowance is ``controller.allowance``."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from controller.config.parser import _Parser
from controller.config.schema import AllowanceConf, GatewayConf

#: the keys of an allowance (``controller.allowance.Allowance`` has the same fields)
ALLOWANCE_KEYS: tuple[str, ...] = tuple(f.name for f in fields(AllowanceConf))


def parse_allowance(p: _Parser, value: Any, path: str,
                    gateways: dict[str, GatewayConf]) -> AllowanceConf:
    """``allowance:`` / ``user_allowance:`` of the topology YAML (every key optional)."""
    raw = p.mapping(value, path, (), ALLOWANCE_KEYS)

    def gateway(v: Any, gpath: str) -> str:
        name = p.string(v, gpath)
        gw = gateways.get(name)
        if gw is None:
            raise p.fail(gpath, f"gateway {name!r} is not defined in gateways")
        if gw.kind != "cn_gateway":
            raise p.fail(gpath, f"gateway {name!r} is a {gw.kind}, not a cn_gateway")
        return name

    def listed(key: str, item: Any) -> tuple[Any, ...] | None:
        if key not in raw:
            return None
        if not isinstance(raw[key], list):
            raise p.fail(f"{path}.{key}", "expected a list")
        return p.list_of(raw[key], f"{path}.{key}", item)

    def flag(key: str) -> bool | None:
        v = raw.get(key)
        if v is not None and not isinstance(v, bool):
            raise p.fail(f"{path}.{key}", f"expected true or false, got {v!r}")
        return v

    rate = raw.get("max_rate_kbps")
    return AllowanceConf(
        prefixes=listed("prefixes", p.network),
        gateways=listed("gateways", gateway),
        max_rate_kbps=None if rate is None else p.integer(rate, f"{path}.max_rate_kbps",
                                                          0, 100_000_000),
        dscp=listed("dscp", lambda v, q: p.integer(v, q, 0, 63)),
        ike=listed("ike", p.string), esp=listed("esp", p.string),
        smooth_handoff=flag("smooth_handoff"), distribution=flag("distribution"),
        seamless_handover=flag("seamless_handover"))
