"""What a user may change in their own VPN profile: the operator's allowance (issue 11).

Claim 24 lets a user customise their VPN profile; the operator bounds it.  An
``Allowance`` lists, per user, the destination prefixes (each a user picks must lie
within one), the CN gateways, the highest rate (0 = any rate, unlimited included; a user
with a limit may not pick 0, which means unlimited), the DSCP values, the IKE and ESP
proposals, and whether the user may toggle ``smooth_handoff`` / ``distribution``.

Rules (``violations``): a value the user's stored profile already has is always kept (a
user loses nothing by editing something else, even what the operator set beyond the
allowance); anything new must lie within the allowance.  Removing destinations is always
allowed.  The operator is not bound by it.

Default when the operator says nothing (``allowance_from_profile``): the user may change
nothing beyond what their seeded profile already has: its prefixes (or networks within
them), its gateways, at most its rate, its DSCP, its proposals; no toggles.

Pure: no I/O.  The YAML form (``AllowanceConf``) is parsed by ``controller.config``
(``config/allowance.py``); ``controller.adapters.store`` keeps one per user;
``controller.adapters.rest`` enforces.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from controller.config.allowance import ALLOWANCE_KEYS
from controller.config.schema import AllowanceConf
from controller.core.aaa_home import VpnProfile

__all__ = ["NOTHING", "Allowance", "allowance_from_json", "allowance_from_profile",
           "allowance_to_json", "canonical", "resolve_allowance", "violations"]


@dataclass(frozen=True, slots=True)
class Allowance:
    """What one user may pick.  ``max_rate_kbps``: ``None`` = no rate but the one they
    have, 0 = any rate (unlimited included), N = 1..N kbit/s."""

    prefixes: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()
    max_rate_kbps: int | None = None
    dscp: tuple[int, ...] = ()
    ike: tuple[str, ...] = ()
    esp: tuple[str, ...] = ()
    smooth_handoff: bool = False       # may toggle it
    distribution: bool = False         # may toggle it
    seamless_handover: bool = False    # may toggle it


#: Nothing beyond what the user already has.
NOTHING = Allowance()


def canonical(a: Allowance) -> Allowance:
    return Allowance(tuple(sorted(set(a.prefixes), key=ipaddress.IPv4Network)),
                     tuple(sorted(set(a.gateways))), a.max_rate_kbps,
                     tuple(sorted(set(a.dscp))), tuple(sorted(set(a.ike))),
                     tuple(sorted(set(a.esp))), bool(a.smooth_handoff),
                     bool(a.distribution), bool(a.seamless_handover))


def allowance_from_profile(profile: VpnProfile | None) -> Allowance:
    """The safe default: nothing beyond ``profile`` (``NOTHING`` without one)."""
    if profile is None:
        return NOTHING
    return canonical(Allowance(
        prefixes=tuple(d.prefix for d in profile.destinations),
        gateways=tuple(d.gateway for d in profile.destinations),
        max_rate_kbps=profile.qos.rate_kbps, dscp=(profile.qos.dscp,),
        ike=(profile.security.ike,), esp=(profile.security.esp,)))


def resolve_allowance(profile: VpnProfile | None,
                      *confs: AllowanceConf | None) -> Allowance:
    """Per key, the first of ``confs`` that gives it, else the default of ``profile``."""
    base = allowance_from_profile(profile)
    values = {}
    for key in ALLOWANCE_KEYS:
        given = [getattr(c, key) for c in confs if c is not None and getattr(c, key)
                 is not None]
        values[key] = given[0] if given else getattr(base, key)
    return canonical(Allowance(**values))


def allowance_to_json(a: Allowance) -> dict[str, Any]:
    return {"prefixes": list(a.prefixes), "gateways": list(a.gateways),
            "max_rate_kbps": a.max_rate_kbps, "dscp": list(a.dscp), "ike": list(a.ike),
            "esp": list(a.esp), "smooth_handoff": a.smooth_handoff,
            "distribution": a.distribution, "seamless_handover": a.seamless_handover}


def allowance_from_json(d: dict[str, Any]) -> Allowance:
    rate = d.get("max_rate_kbps")
    return canonical(Allowance(
        prefixes=tuple(d.get("prefixes", ())), gateways=tuple(d.get("gateways", ())),
        max_rate_kbps=None if rate is None else int(rate),
        dscp=tuple(int(x) for x in d.get("dscp", ())), ike=tuple(d.get("ike", ())),
        esp=tuple(d.get("esp", ())), smooth_handoff=bool(d.get("smooth_handoff")),
        distribution=bool(d.get("distribution")),
        seamless_handover=bool(d.get("seamless_handover"))))


# ----------------------------------------------------------------- enforcement


def _within(prefix: str, allowed: tuple[str, ...]) -> bool:
    net = ipaddress.IPv4Network(prefix)
    return any(net.subnet_of(ipaddress.IPv4Network(a)) for a in allowed)


def _rate_problem(a: Allowance, rate: int) -> str | None:
    if a.max_rate_kbps is None:
        return "the rate is not yours to change (ask the operator)"
    if a.max_rate_kbps == 0:
        return None
    if rate == 0:
        return (f"0 means unlimited; your allowance is at most {a.max_rate_kbps} "
                "kbit/s")
    if rate > a.max_rate_kbps:
        return f"above your allowance of {a.max_rate_kbps} kbit/s"
    return None


def violations(a: Allowance, current: VpnProfile | None,
               new: VpnProfile) -> list[dict[str, str]]:
    """Each field of ``new`` outside ``a`` that the user's ``current`` profile does not
    already have, as ``{"field": "body.qos.dscp", "message": ...}`` (empty: allowed)."""
    out: list[dict[str, str]] = []

    def refuse(field: str, message: str) -> None:
        out.append({"field": field, "message": message})

    had = set(current.destinations) if current is not None else set()
    for i, d in enumerate(new.destinations):
        if d in had:
            continue
        if not _within(d.prefix, a.prefixes):
            refuse(f"body.destinations[{i}].prefix", "not within the prefixes your "
                   f"allowance lists ({', '.join(a.prefixes) or 'none'})")
        if d.gateway not in a.gateways:
            refuse(f"body.destinations[{i}].gateway", "not a gateway your allowance lists "
                   f"({', '.join(a.gateways) or 'none'})")
    sec = current.security if current is not None else None
    if (sec is None or new.security.ike != sec.ike) and new.security.ike not in a.ike:
        refuse("body.security.ike", "not an IKE proposal your allowance lists "
               f"({', '.join(a.ike) or 'none'})")
    if (sec is None or new.security.esp != sec.esp) and new.security.esp not in a.esp:
        refuse("body.security.esp", "not an ESP proposal your allowance lists "
               f"({', '.join(a.esp) or 'none'})")
    qos = current.qos if current is not None else None
    if qos is None or new.qos.rate_kbps != qos.rate_kbps:
        why = _rate_problem(a, new.qos.rate_kbps)
        if why:
            refuse("body.qos.rate_kbps", why)
    if (qos is None or new.qos.dscp != qos.dscp) and new.qos.dscp not in a.dscp:
        refuse("body.qos.dscp", "not a DSCP value your allowance lists "
               f"({', '.join(map(str, a.dscp)) or 'none'})")
    default = VpnProfile(new.nai, (), new.security, new.qos)   # the options' defaults
    for option in ("smooth_handoff", "distribution", "seamless_handover"):
        before = getattr(current if current is not None else default, option)
        if getattr(new, option) != before and not getattr(a, option):
            refuse(f"body.{option}", f"your allowance does not let you change {option}")
    return out
