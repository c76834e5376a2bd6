"""Simultaneous bindings at the home agent (RFC 5944 §3.3, the RRQ's ``S`` flag 0x80;
issue 14).

An MN whose profile asks for seamless handover (``VpnInfo.seamless_handover``) may set
S in its Registration Request.  Then a move does not end the binding to the old
care-of address at once: the HA keeps it, and its tunnel to the old FA, beside the new
binding until the new FA's tunnel is confirmed up (``on_tunnel_up``: the runtime says
so once the gateway reports the CHILD_SA established), and at most ``OVERLAP_MAX``
seconds (``due``), whichever comes first.  At most two bindings per MN: a further move
during the overlap ends the earlier one at once.  Without the profile option the S bit
is not honoured: the reply says 1 (accepted, simultaneous mobility bindings
unsupported, RFC 5944 §3.4) and the move breaks the old binding first, as before.

Duplicates the MN receives during the overlap are acceptable: RFC 5944 lets an HA with
simultaneous bindings tunnel a copy to each care-of address.

Pure: ``now`` and events in, tunnel ids out; the home agent turns them into actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.core.records import tunnel_from_dict, tunnel_to_dict
from controller.core.vpn import TunnelSpec, VpnInfo
from controller.proto import mip

#: s an earlier binding is kept at most without a confirmation of the new tunnel
OVERLAP_MAX = 1.0
#: bindings per MN at most: the current one and one earlier
MAX_BINDINGS = 2


def honoured(rrq: mip.RegistrationRequest, info: VpnInfo) -> bool:
    """The S bit of ``rrq`` counts: set, and the user's profile allows it."""
    return rrq.has_flag(mip.FLAG_S) and info.seamless_handover


@dataclass(frozen=True)
class Retiring:
    """Smooth handoff (claims 22-23): the old FA's tunnel the HA keeps a while."""

    nai: str
    expires: float


@dataclass(frozen=True)
class EarlierBinding:
    """The binding an MN had before its last move, kept beside the current one."""

    nai: str
    care_of_address: str
    foreign_agent: str
    tunnels: tuple[TunnelSpec, ...]    # the HA's tunnels to the earlier FA, still set
    awaiting: tuple[str, ...]          # the new tunnels whose confirmation ends it
    since: float
    expires: float

    def to_dict(self) -> dict[str, Any]:
        return {"care_of_address": self.care_of_address, "foreign_agent": self.foreign_agent,
                "tunnels": [tunnel_to_dict(t) for t in self.tunnels],
                "awaiting": list(self.awaiting), "since": self.since, "expires": self.expires}

    @classmethod
    def from_dict(cls, nai: str, d: dict[str, Any]) -> EarlierBinding:
        return cls(nai, d["care_of_address"], d["foreign_agent"],
                   tuple(tunnel_from_dict(t) for t in d.get("tunnels", ())),
                   tuple(d.get("awaiting", ())), float(d["since"]), float(d["expires"]))


class SimultaneousBindings:
    """NAI -> its earlier binding (at most one: ``MAX_BINDINGS`` counts the current)."""

    def __init__(self) -> None:
        self.earlier: dict[str, EarlierBinding] = {}

    def keep(self, now: float, nai: str, care_of_address: str, foreign_agent: str,
             tunnels: list[TunnelSpec], awaiting: set[str]) -> EarlierBinding | None:
        """Keep the binding ``nai`` had (its HA tunnels ``tunnels``) until one of
        ``awaiting`` is up or ``OVERLAP_MAX`` passed.  Returns the earlier binding this
        replaces (it must go now: two bindings at most), if any."""
        dropped = self.earlier.pop(nai, None)
        if tunnels:
            self.earlier[nai] = EarlierBinding(nai, care_of_address, foreign_agent,
                                               tuple(tunnels), tuple(sorted(awaiting)),
                                               now, now + OVERLAP_MAX)
        return dropped

    def pop(self, nai: str) -> EarlierBinding | None:
        return self.earlier.pop(nai, None)

    def confirmed(self, tunnel_id: str) -> list[EarlierBinding]:
        """The earlier bindings ended by ``tunnel_id`` being up (removed here)."""
        done = [e for e in self.earlier.values() if tunnel_id in e.awaiting]
        for e in done:
            del self.earlier[e.nai]
        return done

    def due(self, now: float) -> list[EarlierBinding]:
        """The earlier bindings whose overlap ran out (removed here)."""
        done = [e for e in self.earlier.values() if e.expires <= now]
        for e in done:
            del self.earlier[e.nai]
        return done

    def state(self, key: str) -> dict[str, Any]:
        """``{"earlier": record}`` for the owner's state record, or nothing."""
        earlier = self.earlier.get(key)
        return {"earlier": earlier.to_dict()} if earlier is not None else {}
