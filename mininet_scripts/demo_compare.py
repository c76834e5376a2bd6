"""The demo's comparison: its user with the option on against the plain path.

`mipvpn demo` runs the topology's first MN (alice in topology/default.yaml) with both
optional handover features of the profile on, seamless handover (the neighbour FA's
IKE_SA prepared ahead) and smooth handoff (the old FA forwards in-flight traffic), and,
in the same run, a second MN cloned from it (same access switch, same moves, same probe
rate, same VPN profile) with both off: the plain path.
Both are probed the same way; what the option gained is the difference per move and
direction.  Pure functions (no I/O): the topology transform and the numbers' formatting.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

BASELINE_NAME = "plain"          # the plain-path MN's host name in the demo's network
#: the profile options the demo's user has on and the plain path has off
OPTIONS = ("seamless_handover", "smooth_handoff")
OPTION_LABEL = "seamless + smooth handoff"
DIRECTIONS = (("cn_to_mn", "downlink"), ("mn_to_cn", "uplink"))


class CompareError(ValueError):
    pass


def _used_ports(data: dict[str, Any]) -> dict[str, set[int]]:
    used: dict[str, set[int]] = {}
    for gw in (data.get("gateways") or {}).values():
        for side in ("core", "inside"):
            if isinstance(gw.get(side), dict):
                used.setdefault(gw[side]["switch"], set()).add(int(gw[side]["port"]))
    for host in (data.get("hosts") or {}).values():
        used.setdefault(host["switch"], set()).add(int(host["port"]))
    for mn in (data.get("mobile_nodes") or {}).values():
        used.setdefault(mn["attach"]["switch"], set()).add(int(mn["attach"]["port"]))
    for link in data.get("links") or []:
        for end in link:
            sw, port = str(end).split(":")
            used.setdefault(sw, set()).add(int(port))
    return used


def demo_target(data: dict[str, Any], mn_name: str) -> str:
    """The access switch the demo moves ``mn_name`` to: the first other access switch
    (as ``Demo.run`` picks it)."""
    attach = data["mobile_nodes"][mn_name]["attach"]["switch"]
    for name, sw in data["switches"].items():
        if sw.get("role") == "access" and name != attach:
            return str(name)
    raise CompareError(f"the topology has no access switch besides {attach!r}: "
                       f"the demo's user cannot move")


def with_plain_baseline(data: dict[str, Any], mn_aaa_key: str, mn_ha_key: str
                        ) -> tuple[dict[str, Any], str, str]:
    """The topology ``data`` (parsed YAML) for the demo: its first MN's profile with
    ``OPTIONS`` on, and a plain-path MN added (profile identical but ``OPTIONS`` off) on the same access switch, on a port free there and on the move's target switch.

    ``mn_aaa_key``/``mn_ha_key``: the new MN's keys (hex, 16 bytes), made by the caller
    for this run.  Returns (new data, the demo user's MN name, the baseline MN's name)."""
    out = copy.deepcopy(data)
    mns = out.get("mobile_nodes") or {}
    if not mns:
        raise CompareError("the topology has no mobile node")
    user = next(iter(mns))
    mn = mns[user]
    profiles = out.get("vpn_profiles") or {}
    if mn["nai"] not in profiles:
        raise CompareError(f"no VPN profile for the demo's user {mn['nai']!r}")
    name = BASELINE_NAME
    taken = set(mns) | set(out.get("hosts") or {}) | set(out.get("gateways") or {}) \
        | set(out.get("switches") or {})
    if name in taken:
        raise CompareError(f"the topology already has a node named {name!r}")
    local, realm = str(mn["nai"]).split("@", 1)
    nai = f"{local}.plain@{realm}"
    if nai in profiles or any(m["nai"] == nai for m in mns.values()):
        raise CompareError(f"the topology already has {nai!r}")

    attach = mn["attach"]["switch"]
    target = demo_target(out, user)
    used = _used_ports(out)
    port = next(p for p in range(2, 1000)
                if p not in used.get(attach, set()) and p not in used.get(target, set())
                and p != int(mn["attach"]["port"]))
    home_agent = out["gateways"][mn["home_agent"]]
    domain = out["domains"][home_agent["domain"]]
    taken_ips = {str(m["home_address"]) for m in mns.values()}
    taken_ips |= {str(h["ip"]).split("/")[0] for h in (out.get("hosts") or {}).values()}
    taken_ips |= {str(g[s]["ip"]).split("/")[0] for g in out["gateways"].values()
                  for s in ("core", "inside") if isinstance(g.get(s), dict)}
    home = ipaddress.ip_address(mn["home_address"])
    net = next(ipaddress.ip_network(p) for p in domain["home_prefixes"]
               if home in ipaddress.ip_network(p))
    # the first free address above the user's, else the first free one
    address = next((str(a) for a in sorted(net.hosts(), key=lambda a: (a <= home, a))
                    if str(a) not in taken_ips), None)
    if address is None:
        raise CompareError(f"no free home address in {net}")
    macs = {str(m["mac"]).lower() for m in mns.values()}
    macs |= {str(h.get("mac", "")).lower() for h in (out.get("hosts") or {}).values()}
    base = int(str(mn["mac"]).replace(":", ""), 16)
    mac = next(m for m in (_mac(base + i) for i in range(1, 256)) if m not in macs)

    clone: dict[str, Any] = {
        "nai": nai, "home_address": address, "home_agent": mn["home_agent"], "mac": mac,
        "mn_aaa_spi": max(int(m["mn_aaa_spi"]) for m in mns.values()) + 1,
        "mn_aaa_key": mn_aaa_key,
        "attach": {"switch": attach, "port": port}, "lifetime": mn.get("lifetime", 300)}
    if mn.get("mn_ha_key"):
        clone["mn_ha_spi"] = max(int(m.get("mn_ha_spi", 0)) for m in mns.values()) + 1
        clone["mn_ha_key"] = mn_ha_key
    mns[name] = clone
    profiles[mn["nai"]] = {**profiles[mn["nai"]], **{o: True for o in OPTIONS}}
    profiles[nai] = {**profiles[mn["nai"]], **{o: False for o in OPTIONS}}
    return out, user, name


def move_ports(data: dict[str, Any], names: list[str]) -> dict[str, int]:
    """The port on the move's target switch for each MN of ``names`` (which share an
    access switch): its attach port where that is free there, else the first free one
    (two-domains.yaml has mn3 on acc2's port 2, mn1's attach port)."""
    target = demo_target(data, names[0])
    used = set(_used_ports(data).get(target, set()))
    mns = data["mobile_nodes"]
    wanted = {n: int(mns[n]["attach"]["port"]) for n in names}
    out: dict[str, int] = {}
    for name in names:
        port = wanted[name]
        if port in used:
            port = next(p for p in range(2, 1000)
                        if p not in used and p not in wanted.values())
        used.add(port)
        out[name] = port
    return out


def _mac(value: int) -> str:
    raw = f"{value & 0xFFFFFFFFFFFF:012x}"
    return ":".join(raw[i:i + 2] for i in range(0, 12, 2))


def compare(option: dict[str, Any], plain: dict[str, Any]) -> dict[str, Any]:
    """Per move and in total, for each direction: gap and packets lost with the option
    (``option``: the demo user's ``moves``/``probe``) and on the plain path (``plain``:
    the baseline's), and ``difference`` = option - plain (negative: the option gained).
    Moves pair up in order (the two MNs make the same moves)."""
    moves = []
    for i, (a, b) in enumerate(zip(option["moves"], plain["moves"])):
        entry: dict[str, Any] = {"move": i, "from": a["from"], "to": a["to"]}
        for metric in ("gap_ms", "lost"):
            entry[metric] = {d: _diff(a[metric][d], b[metric][d]) for d, _ in DIRECTIONS}
        moves.append(entry)
    totals: dict[str, Any] = {}
    for metric in ("gap_ms", "lost"):
        totals[metric] = {
            d: _diff(sum(m[metric][d]["option"] for m in moves),
                     sum(m[metric][d]["plain"] for m in moves)) for d, _ in DIRECTIONS}
    whole = {d: _diff(option["probe"][d]["lost"], plain["probe"][d]["lost"])
             for d, _ in DIRECTIONS}
    return {"moves": moves, "total": totals, "whole_run_lost": whole}


def _diff(option: float, plain: float) -> dict[str, float]:
    diff = option - plain
    if isinstance(option, float) or isinstance(plain, float):
        option, plain, diff = round(option, 3), round(plain, 3), round(diff, 3)
    return {"option": option, "plain": plain, "difference": diff}


def summary(cmp: dict[str, Any], option: str = OPTION_LABEL) -> str:
    """One line, what the option gained in each direction: the gap per move (the mean
    of the moves) and the packets lost around the moves (summed), with the option
    against the plain path."""
    n = max(1, len(cmp["moves"]))
    parts = []
    for d, label in DIRECTIONS:
        g, t = cmp["total"]["gap_ms"][d], cmp["total"]["lost"][d]
        ga, gb = g["option"] / n, g["plain"] / n
        parts.append(f"{label} gap {ga:.1f} vs {gb:.1f} ms per move "
                     f"({_gap_gain(round(ga - gb, 1))}), {t['option']} lost vs {t['plain']} "
                     f"on the plain path ({_gain(t['difference'], 'packets')})")
    return f"{option}: " + "; ".join(parts)


def mn_lines(cmp: dict[str, Any], option_mn: str, plain_mn: str,
             option: str = OPTION_LABEL) -> tuple[str, str]:
    """One line per MN: its gap per move (mean) and packets lost (summed over the
    moves), each direction."""
    n = max(1, len(cmp["moves"]))
    out = []
    for side, mn, what in (("option", option_mn, option), ("plain", plain_mn, "plain path")):
        gaps = ", ".join(f"{label} {cmp['total']['gap_ms'][d][side] / n:.1f} ms"
                         for d, label in DIRECTIONS)
        lost = ", ".join(f"{label} {cmp['total']['lost'][d][side]}"
                         for d, label in DIRECTIONS)
        out.append(f"{mn} ({what}): gap per move {gaps}; lost {lost} "
                   f"({len(cmp['moves'])} moves)")
    return out[0], out[1]


def _gap_gain(diff: float) -> str:
    if diff < 0:
        return f"{-diff:.1f} ms shorter"
    if diff > 0:
        return f"{diff:.1f} ms longer"
    return "the same"


def _gain(diff: float, unit: str) -> str:
    if diff < 0:
        return f"{-diff:g} {unit} fewer"
    if diff > 0:
        return f"{diff:g} {unit} more"
    return "no difference"


def comparison_lines(cmp: dict[str, Any], option_mn: str, plain_mn: str,
                     option: str = OPTION_LABEL) -> list[str]:
    """The comparison as printed: per move a table (gap, lost; both directions) with the
    option, on the plain path and the difference; then the totals, one line per MN and
    the summary."""
    head = (f"    {'':22s} {option + ' (' + option_mn + ')':>24s} "
            f"{'plain path (' + plain_mn + ')':>24s} {'difference':>12s}")
    lines = [f"{option} ({option_mn}) against the plain path ({plain_mn}), same moves:"]

    def rows(block: dict[str, Any]) -> list[str]:
        out = []
        for metric, what, unit in (("gap_ms", "gap", "ms"), ("lost", "lost", "pkts")):
            for d, label in DIRECTIONS:
                v = block[metric][d]
                fmt = (lambda x: f"{x:.1f}") if unit == "ms" else (lambda x: f"{x:d}")
                sign = "+" if v["difference"] > 0 else ""
                out.append(f"    {what + ' ' + label + ' (' + unit + ')':22s} "
                           f"{fmt(v['option']):>24s} {fmt(v['plain']):>24s} "
                           f"{sign + fmt(v['difference']):>12s}")
        return out

    for m in cmp["moves"]:
        lines.append(f"  move {m['move'] + 1}: {m['from']} -> {m['to']}")
        lines.append(head)
        lines += rows(m)
    lines.append(f"  all {len(cmp['moves'])} moves")
    lines.append(head)
    lines += rows(cmp["total"])
    w = cmp["whole_run_lost"]
    lines.append("  whole run, lost: " + ", ".join(
        f"{label} {w[d]['option']} vs {w[d]['plain']}" for d, label in DIRECTIONS))
    lines += mn_lines(cmp, option_mn, plain_mn, option)
    lines.append(summary(cmp, option))
    return lines
