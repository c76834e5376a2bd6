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


# ------------------------------------------------------------------ per-move bounds (issue 14)
#
# ``move_max_gap_ms`` / ``move_max_lost``: a number (every move, both directions), a
# mapping {direction: N} (only the directions named), or {MN: number or {direction: N}}
# (only the MNs named).  A failure names the move (its index in the run, the MN, from
# -> to) and the segment of its walk (``demo_results.move_walk``) that grew.

PER_MOVE_KEYS = ("move_max_gap_ms", "move_max_lost")


def bound_for(bounds: Any, mn: str, direction: str) -> float | None:
    """The bound ``bounds`` sets on ``mn``'s moves in ``direction`` (None: none)."""
    if bounds is None or isinstance(bounds, bool):
        return None
    if isinstance(bounds, (int, float)):
        return bounds
    if isinstance(bounds, Mapping):
        if set(bounds) <= set(DIRECTIONS):
            value = bounds.get(direction)
            return value if isinstance(value, (int, float)) else None
        return bound_for(bounds.get(mn), mn, direction)
    return None


def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def grown_segment(move: Mapping[str, Any], others: Iterable[Mapping[str, Any]]
                  ) -> tuple[str, float, float | None] | None:
    """Where ``move``'s walk lost its time: ``(segment "a -> b", its ms in this move,
    how much longer than in ``others``, or None)``.  Against other moves (the same MN's,
    same run): each point's delay over the median of the same point in theirs, and the
    segment across which that delay grew most.  Without others: the walk's longest
    segment.  None when the move has no walk."""
    tl = (move.get("walk") or {}).get("timeline_ms") or {}
    if not tl:
        return None
    theirs = [(o.get("walk") or {}).get("timeline_ms") or {} for o in others]
    theirs = [t for t in theirs if t]
    if theirs:
        best: tuple[str, float, float] | None = None
        prev, prev_excess = None, 0.0
        for name, at in tl.items():
            vals = [float(t[name]) for t in theirs if name in t]
            if not vals:
                continue
            excess = float(at) - _median(vals)
            if prev is not None:
                growth = excess - prev_excess
                if best is None or growth > best[2]:
                    best = (f"{prev} -> {name}", round(float(at) - float(tl[prev]), 3),
                            round(growth, 3))
            prev, prev_excess = name, excess
        if best is not None:
            return best
    segs = (move.get("walk") or {}).get("segments") or []
    if not segs:
        return None
    s = max(segs, key=lambda seg: float(seg["ms"]))
    return f"{s['from']} -> {s['to']}", round(float(s["ms"]), 3), None


def _where_it_grew(move: Mapping[str, Any], others: list[Mapping[str, Any]]) -> str:
    grown = grown_segment(move, others)
    if grown is None:
        return "no walk recorded"
    seg, ms, growth = grown
    if growth is None:
        return f"longest segment of its walk: {seg} {ms:.1f} ms"
    return (f"grew most: {seg} {ms:.1f} ms, +{growth:.1f} ms over the median of "
            f"{move.get('mn')}'s other moves")


def per_move_problems(moves: Iterable[Mapping[str, Any]], gap_bounds: Any,
                      lost_bounds: Any) -> list[str]:
    """``move_max_gap_ms`` / ``move_max_lost`` on each move, per direction (and MN)."""
    moves = list(moves)
    problems: list[str] = []
    for i, move in enumerate(moves):
        mn = str(move.get("mn"))
        name = f"move {i} ({mn} {move.get('from')} -> {move.get('to')})"
        others = [m for j, m in enumerate(moves) if j != i and m.get("mn") == mn]
        for key, bounds, what, unit in (("gap_ms", gap_bounds, "move_max_gap_ms", " ms"),
                                        ("lost", lost_bounds, "move_max_lost", "")):
            wanted = {d: bound_for(bounds, mn, d) for d in DIRECTIONS}
            wanted = {d: b for d, b in wanted.items() if b is not None}
            if not wanted:
                continue
            values = move.get(key)
            if not isinstance(values, Mapping):
                problems.append(f"{name}: {what} set but the move was not measured "
                                f"(no probe of {mn})")
                continue
            for d, bound in wanted.items():
                if d not in values:
                    problems.append(f"{name}: {what}: no {d} measurement")
                elif values[d] > bound:
                    got = f"{values[d]:.1f}" if key == "gap_ms" else f"{values[d]}"
                    problems.append(f"{name}: {'gap' if key == 'gap_ms' else 'lost'} {d} "
                                    f"{got}{unit} > {bound:g}{unit}; "
                                    f"{_where_it_grew(move, others)}")
    return problems
