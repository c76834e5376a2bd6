"""Handover records: per registration, the time of each signalling phase.

The runtime stamps every ``Mark`` action with its own monotonic clock when it executes
it, so a record reads as the straight walk of one move:
RRQ at FA -> AAA -> HAR/HAA -> AMA at FA -> tunnel up -> flows installed -> RRP sent.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

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
}


@dataclass
class HandoverRecord:
    seq: int
    nai: str
    foreign_agent: str
    previous_fa: str
    marks: dict[str, float] = field(default_factory=dict)
    accepted: bool | None = None
    code: int | None = None

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
                "phases_ms": self.phases_ms()}


class HandoverLog:
    """Keeps the last ``limit`` records; the open record per NAI receives marks."""

    def __init__(self, limit: int = 1000) -> None:
        self.records: deque[HandoverRecord] = deque(maxlen=limit)
        self.open: dict[str, HandoverRecord] = {}
        self._seq = 0

    def mark(self, nai: str, phase: str, t: float, extra: dict[str, Any]) -> None:
        if phase == "rrq_at_fa":
            self._seq += 1
            opened = HandoverRecord(self._seq, nai, extra.get("fa", ""),
                                    extra.get("previous_fa", ""))
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
