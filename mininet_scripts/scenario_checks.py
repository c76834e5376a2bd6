"""A scenario's checks and expectations, on the data the runner gathered (no I/O here).

Each function returns the problems it found as sentences; an empty list is a pass.  No
check passes for want of data (issue 13): a gateway missing from ``GET /v1/tunnels`` or
whose charon answered with an error, a move bound with no probe measurement, a
comparison with nothing to compare, is a problem naming what was missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DIRECTIONS = ("mn_to_cn", "cn_to_mn")
# ha_carries_no_traffic_of: the HA may carry at most this share of what the MN's FA
# carried in the same window (stray packets on its static tunnels; the MN's own traffic
# through the HA would be all of it), and the FA must carry at least this share of the
# MN's probe rate (both directions: a stalled probe proves nothing).
HA_SHARE_TOLERATED = 0.02
FA_SHARE_REQUIRED = 0.25


def gateway_states(gateways: Mapping[str, Any], gw: str) -> tuple[list[dict[str, Any]] | None,
                                                                  str | None]:
    """One gateway's SAs from ``GET /v1/tunnels``' ``gateways``: ``(states, None)``, or
    ``(None, why)`` when it could not be asked."""
    if gw not in gateways:
        return None, f"{gw} is not in GET /v1/tunnels (has {sorted(gateways)})"
    states = gateways[gw]
    if isinstance(states, dict) and "error" in states:
        return None, f"{gw}'s charon answered with an error: {states['error']}"
    if not isinstance(states, list) or not all(isinstance(s, dict) for s in states):
        return None, f"{gw}'s tunnels are not a list of SAs: {states!r}"
    return states, None


def established_ids(states: Iterable[Mapping[str, Any]]) -> set[str]:
    return {str(s.get("tunnel_id")) for s in states if s.get("established", True)}


def tunnel_problems(gateways: Mapping[str, Any], present: Iterable[Iterable[str]],
                    absent: Iterable[Iterable[str]]) -> list[str]:
    """``present`` / ``absent``: [gateway, tunnel id] pairs, established at the gateway
    or not there.  A gateway that could not be asked fails either way."""
    problems: list[str] = []
    for wanted, pairs in ((True, present), (False, absent)):
        for gw, tid in pairs:
            states, why = gateway_states(gateways, gw)
            if states is None:
                problems.append(f"cannot tell whether tunnel {tid} is "
                                f"{'at' if wanted else 'gone from'} {gw}: {why}")
                continue
            ids = established_ids(states)
            if wanted and tid not in ids:
                problems.append(f"tunnel {tid} missing at {gw} (has {sorted(ids)})")
            elif not wanted and tid in ids:
                problems.append(f"tunnel {tid} still at {gw}")
    return problems


def packets_carried(before: Iterable[Mapping[str, Any]],
                    after: Iterable[Mapping[str, Any]]) -> int:
    """ESP packets (in + out) a gateway's SAs carried between two ``/v1/tunnels``
    readings.  An SA that appeared in between counts whole; a counter that went down
    (the SA was replaced) counts from 0."""
    def total(s: Mapping[str, Any]) -> int:
        return int(s.get("packets_in", 0) or 0) + int(s.get("packets_out", 0) or 0)
    was = {str(s.get("tunnel_id")): total(s) for s in before}
    carried = 0
    for s in after:
        now, prev = total(s), was.get(str(s.get("tunnel_id")), 0)
        carried += now - prev if now >= prev else now
    return carried


def ha_traffic_problems(mn: str, ha: str, fa: str, before: Mapping[str, Any],
                        after: Mapping[str, Any], probe_rate: float | None,
                        window_s: float) -> list[str]:
    """Route optimisation (claims 10-15, 19): while ``mn``'s probe runs, its FA's SAs
    carry it and the HA's SAs carry (next to) nothing.  ``before``/``after``: the
    ``gateways`` of two ``GET /v1/tunnels`` readings ``window_s`` apart; ``probe_rate``:
    the MN's probe's packets/s each way (None: no probe running - nothing to measure)."""
    if probe_rate is None:
        return [f"ha_carries_no_traffic_of {mn}: no probe of {mn} is running, so there is "
                f"no traffic to look for (add one to `probes`)"]
    problems = []
    carried: dict[str, int] = {}
    for gw in (ha, fa):
        b, why_b = gateway_states(before, gw)
        a, why_a = gateway_states(after, gw)
        if b is None or a is None:
            problems.append(f"ha_carries_no_traffic_of {mn}: cannot read {gw}'s SA "
                            f"counters: {why_b or why_a}")
        else:
            carried[gw] = packets_carried(b, a)
    if problems:
        return problems
    least = FA_SHARE_REQUIRED * probe_rate * 2 * window_s
    if carried[fa] < least:
        problems.append(f"ha_carries_no_traffic_of {mn}: {fa} (its FA) carried "
                        f"{carried[fa]} ESP packets in {window_s:g} s, fewer than {least:.0f} "
                        f"({FA_SHARE_REQUIRED:.0%} of the probe's {probe_rate:g}/s each way): "
                        f"the probe's traffic is not flowing, nothing was measured")
    if carried[ha] > HA_SHARE_TOLERATED * carried[fa]:
        problems.append(f"ha_carries_no_traffic_of {mn}: the HA ({ha}) carried "
                        f"{carried[ha]} ESP packets in {window_s:g} s while {fa} carried "
                        f"{carried[fa]} (more than {HA_SHARE_TOLERATED:.0%})")
    return problems


def move_bound_problems(i: int, move: Mapping[str, Any], max_gap_ms: float | None,
                        max_lost: int | None) -> list[str]:
    """``max_gap_ms`` / ``max_lost`` of one move, each direction; a bound on a move the
    probes did not measure (no probe of that MN) is a problem, not a pass."""
    problems = []
    for key, bound, what in (("gap_ms", max_gap_ms, "max_gap_ms"),
                             ("lost", max_lost, "max_lost")):
        if bound is None:
            continue
        values = move.get(key)
        if not isinstance(values, Mapping):
            problems.append(f"move {i} ({move.get('mn')}): {what} {bound} set but the move "
                            f"was not measured (no probe of {move.get('mn')})")
            continue
        for d in DIRECTIONS:
            if d not in values:
                problems.append(f"move {i}: {what}: no {d} measurement")
            elif key == "gap_ms" and values[d] > bound:
                problems.append(f"move {i}: gap {d} {values[d]:.1f} ms > {bound} ms")
            elif key == "lost" and values[d] > bound:
                problems.append(f"move {i}: lost {d} {values[d]} > {bound}")
    return problems


def unmeasured_moves(moves: Iterable[Mapping[str, Any]], mns: Iterable[str]) -> list[str]:
    """For comparisons of move loss (``lost_less``): each named MN moved, and every one
    of its moves was measured."""
    problems = []
    moves = list(moves)
    for mn in mns:
        mine = [m for m in moves if m.get("mn") == mn]
        if not mine:
            problems.append(f"{mn} did not move: no move loss to compare")
        elif any(not isinstance(m.get("lost"), Mapping) for m in mine):
            problems.append(f"{mn} has a move without a probe measurement: its loss "
                            f"cannot be compared")
    return problems


#: ``lost_less: [A, B]``: A's median loss per move must be at most this share of B's.
#: Medians, not totals: one move of A's that a loaded machine stalls (330 lost once,
#: against B's 177 over all its moves) must not outweigh the others; the share keeps
#: the check failing when A's mechanism stops working (then both lose alike, and the
#: median of one is below the other's about half the time).
LOST_LESS_SHARE = 0.5


def move_losses(moves: Iterable[Mapping[str, Any]], mn: str,
                dirs: Iterable[str] = DIRECTIONS) -> list[int]:
    """Packets ``mn`` lost in each of its measured moves (the named directions summed)."""
    dirs = tuple(dirs)
    return [sum(int(m["lost"][d]) for d in dirs) for m in moves
            if m.get("mn") == mn and isinstance(m.get("lost"), Mapping)]


def median(values: list[int]) -> float:
    s = sorted(values)
    n = len(s)
    return float(s[n // 2]) if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def lost_less_problems(moves: Iterable[Mapping[str, Any]], a: str, b: str,
                       dirs: Iterable[str] = DIRECTIONS) -> list[str]:
    """``lost_less: [a, b]``: every move of both measured, and a's median loss per move
    at most ``LOST_LESS_SHARE`` of b's (which must have lost something: else there is
    nothing a's mechanism could have saved)."""
    moves = list(moves)
    problems = unmeasured_moves(moves, (a, b))
    if problems:
        return problems
    dirs = tuple(dirs)
    ma, mb = median(move_losses(moves, a, dirs)), median(move_losses(moves, b, dirs))
    what = "+".join(dirs)
    if mb <= 0:
        return [f"{b} lost nothing ({what}) in the median move: no loss to compare"]
    if ma > LOST_LESS_SHARE * mb:
        return [f"{a} lost {ma:g} packets ({what}) in the median move, not at most "
                f"{LOST_LESS_SHARE:g} x {b}'s {mb:g}"]
    return []
