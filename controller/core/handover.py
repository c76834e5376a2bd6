"""Handover records: per registration, the time of each signalling phase.

The runtime stamps every ``Mark`` action with its own monotonic clock when it executes
it, so a record reads as the straight walk of one move:
RRQ at FA -> AAA -> HAR/HAA -> AMA at FA -> tunnel up -> flows installed -> RRP sent.

Issue 14, where a move's milliseconds go: the runtime also notes what the switches tell
it about the link (``link_down``: the MN's old access port went, OpenFlow port-status;
``link_up``: a port came up at an FA's access switch, ``advertisement_sent``: the FA's
agent advertisement out of it), before any record exists; the record of the move that
follows takes them (``LINK_WINDOW``).  ``breakdown`` turns any set of points on the
one monotonic clock (these marks, the MN's events, the probes' first packet through in
each direction) into the walk of one move: each point's time since the first, and the
segments between consecutive points.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping

#: s: a port event older than this when a registration arrives belongs to no move
LINK_WINDOW = 5.0
#: marks noted before the move's record exists (the switches see the link first)
LINK_MARKS = ("link_down", "link_up", "advertisement_sent")

# phase name -> (from mark, to mark); a phase is reported when both marks exist
PHASES: dict[str, tuple[str, str]] = {
    "aaa_round_trip": ("rrq_at_fa", "ama_at_fa"),
    "har_haa": ("ha_bind", "haa_sent"),
    "ha_tunnel_set": ("ha_bind", "ha_tunnel_set"),
    "ha_relay": ("ama_at_fa", "rrp_from_ha"),
    # route optimisation (claims 19-21): the HA's BU to the CN-GW until its BAck
    "ro_binding_update": ("bu_sent", "back_at_ha"),
    "cngw_tunnel_set": ("bu_at_cngw", "cngw_tunnel_set"),
    "flows_installed": ("fa_setup", "flows_installed"),
    "fa_tunnel_up": ("flows_installed", "tunnel_up"),
    "controller_total": ("rrq_at_fa", "rrp_sent"),
    # the link as the controller saw it (port-status), until the MN's RRQ at the FA
    "link_down_to_up": ("link_down", "link_up"),
    "link_up_to_rrq_at_fa": ("link_up", "rrq_at_fa"),
}


def breakdown(points: Mapping[str, float | None], origin: str = "") -> dict[str, Any]:
    """The walk of one move: ``points`` (name -> time on one monotonic clock, s; None:
    not seen) in time order, as ``timeline_ms`` (each point's ms since ``origin``, a
    point's name, or else the first point) and ``segments`` (``{"from", "to", "ms"}``
    between consecutive points: where the time between them went).  Ties keep the
    order of ``points``."""
    seen = [(t, i, name) for i, (name, t) in enumerate(points.items()) if t is not None]
    seen.sort()
    if not seen:
        return {"timeline_ms": {}, "segments": []}
    start = points.get(origin) if origin else None
    origin_t = seen[0][0] if start is None else start
    timeline = {name: round((t - origin_t) * 1000.0, 3) for t, _i, name in seen}
    segments = [{"from": a[2], "to": b[2], "ms": round((b[0] - a[0]) * 1000.0, 3)}
                for a, b in zip(seen, seen[1:])]
    return {"timeline_ms": timeline, "segments": segments}


@dataclass
class HandoverRecord:
    seq: int
    nai: str
    foreign_agent: str
    previous_fa: str
    marks: dict[str, float] = field(default_factory=dict)
    accepted: bool | None = None
    code: int | None = None

    def __init__(self, seq: int, nai: str, foreign_agent: str, previous_fa: str,
                 marks: dict[str, float] | None = None, accepted: bool | None = None,
                 code: int | None = None) -> None:
        self.seq = seq
        self.nai = nai
        self.foreign_agent = foreign_agent
        self.previous_fa = previous_fa
        self.marks = marks if marks is not None else {}
        self.accepted = accepted
        self.code = code

    @property
    def kind(self) -> str:
        if not self.previous_fa:
            return "registration"
        return "intra-domain" if "aaaf_local" in self.marks else "inter-domain"

    def phases_ms(self) -> dict[str, float]:
        out = {}
        for name, (start, end) in PHASES.items():
            if start in self.marks and end in self.marks:
                out[name] = round((self.marks[end] - self.marks[start]) * 1000.0, 3)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "nai": self.nai, "kind": self.kind,
                "foreign_agent": self.foreign_agent, "previous_fa": self.previous_fa,
                "accepted": self.accepted, "code": self.code,
                "marks": {k: round(v, 6) for k, v in self.marks.items()},
                "phases_ms": self.phases_ms(),
                "breakdown": breakdown(self.marks)}


class HandoverLog:
    """Keeps the last ``limit`` records; the open record per NAI receives marks."""

    def __init__(self, limit: int = 1000) -> None:
        self.records: deque[HandoverRecord] = deque(maxlen=limit)
        self.open: dict[str, HandoverRecord] = {}
        self._seq = 0
        # link events seen before the move's record exists: NAI -> the MN's old port
        # went (its old FA knew it there); (FA, port) -> mark -> when that port came up
        self.links_down: dict[str, float] = {}
        self.ports_up: dict[tuple[str, int], dict[str, float]] = {}

    def link_down(self, nai: str, t: float) -> None:
        """The access port ``nai`` was on went away (port-status at its old FA)."""
        self.links_down[nai] = t
        self._forget(t)

    def link_up(self, fa: str, port: int, t: float, phase: str = "link_up") -> None:
        """A port of ``fa``'s access switch came up (``phase`` "link_up"), or the FA's
        advertisement went out of it ("advertisement_sent")."""
        if phase not in LINK_MARKS:
            raise ValueError(f"not a link mark: {phase}")
        self.ports_up.setdefault((fa, port), {})[phase] = t
        self._forget(t)

    def _forget(self, now: float) -> None:
        for nai in [n for n, t in self.links_down.items() if now - t > LINK_WINDOW]:
            del self.links_down[nai]
        for key in [k for k, m in self.ports_up.items()
                    if now - max(m.values()) > LINK_WINDOW]:
            del self.ports_up[key]

    def _link_marks(self, nai: str, fa: str, port: int | None, t: float
                    ) -> dict[str, float]:
        out: dict[str, float] = {}
        down = self.links_down.pop(nai, None)
        if down is not None and 0 <= t - down <= LINK_WINDOW:
            out["link_down"] = down
        up = self.ports_up.pop((fa, port), {}) if port is not None else {}
        for phase, when in up.items():
            if 0 <= t - when <= LINK_WINDOW and (down is None or when >= down):
                out[phase] = when
        return out

    def mark(self, nai: str, phase: str, t: float, extra: dict[str, Any]) -> None:
        if phase == "rrq_at_fa":
            self._seq += 1
            opened = HandoverRecord(self._seq, nai, extra.get("fa", ""),
                                    extra.get("previous_fa", ""))
            opened.marks.update(self._link_marks(nai, opened.foreign_agent,
                                                 extra.get("port"), t))
            self.open[nai] = opened
            self.records.append(opened)
        rec = self.open.get(nai)
        if rec is None:
            return
        rec.marks.setdefault(phase, t)
        if phase == "rrp_sent":
            rec.accepted = bool(extra.get("accepted"))
            rec.code = extra.get("code", 0 if rec.accepted else None)
            self.open.pop(nai, None)

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.records]
