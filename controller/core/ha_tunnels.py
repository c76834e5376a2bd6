"""The home agent's tunnel set at a (re)binding: which of its tunnels go, which come,
which are kept beside the new ones (smooth handoff's retire, simultaneous bindings),
and in which order relative to the HA's answer.

Claim 17's order is break before make: the VPN path to the old FA is deleted, then the
one to the new FA set, then the HA answers.  For a profile with ``seamless_handover``
(issue 14) the order is make before break: the new FA's tunnel is loaded, the HA
answers, and the old FA's tunnel is removed after the answer (the actions come after
it in the HA's list; the runtime runs them off the answer's path), so the removal no
longer delays the new FA's tunnel.  The old tunnel still goes, in the same walk.

A renewal that changes nothing (issue 15, seventh steps) sets nothing: a tunnel of the
binding that the HAR's VPN information names again with equal addresses, selectors,
security and QoS (the PSK aside), not retiring, with no earlier (simultaneous) binding
beside it, and confirmed up since the HA last added it (``tunnels_up``: the runtime's
``on_tunnel_up``) is kept with the key it uses (``TunnelSet.kept``): no ``AddTunnel``.
The HA's answer carries the kept key, so the FA learns from it whether the HA set the
tunnel again (a new key) or not (its own key).  Only through AAA (``tunnels_up`` given):
a move relayed by an FA gets its keys from the foreign AAA, never from the HA.

Pure: the HA's state objects (``retiring``, ``simultaneous``, ``tunnels_up``) are changed
in place as the HA's own methods did; nothing else is touched."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from controller.core.actions import Action, AddTunnel, Mark, RemoveTunnel
from controller.core.binding import Binding
from controller.core.expiry import ExpiryDict
from controller.core.simultaneous import (EarlierBinding, Retiring, SimultaneousBindings,
                                          honoured)
from controller.core.vpn import TunnelSpec, VpnInfo
from controller.model.dataclass_copy import replace
from controller.proto import mip

#: smooth handoff (claims 22-23): s the HA keeps its tunnel to the old FA after a move
#: (make before break: its newest SA, the new FA's, takes the downlink once the new FA
#: brought it up; until then the old FA gets it and holds it for the forwarding tunnel)
RETIRE_AFTER = 2.0


@dataclass
class TunnelSet:
    """``before``: the HA's actions before its answer (the new tunnels); ``after``: after
    it (the old FA's tunnels, make before break); ``new_ids``: the binding's tunnels;
    ``kept``: those a renewal left as they stand (tunnel id -> the spec in use, its key)."""

    before: list[Action] = field(default_factory=list)
    after: list[Action] = field(default_factory=list)
    new_ids: set[str] = field(default_factory=set)
    kept: dict[str, TunnelSpec] = field(default_factory=dict)

    def __init__(self, before: list[Action] | None = None, after: list[Action] | None = None,
                 new_ids: set[str] | None = None,
                 kept: dict[str, TunnelSpec] | None = None) -> None:
        self.before = before if before is not None else []
        self.after = after if after is not None else []
        self.new_ids = new_ids if new_ids is not None else set()
        self.kept = kept if kept is not None else {}


def unchanged(old: TunnelSpec | None, new: TunnelSpec) -> bool:
    """``new`` is ``old`` but for the key (a renewal's fresh PSK)."""
    return old is not None and (old == new or replace(old, psk=new.psk) == new)


def with_kept(vpn_info: VpnInfo, kept: dict[str, TunnelSpec]) -> VpnInfo:
    """``vpn_info`` with the kept tunnels' specs (the keys in use) in place of its own."""
    if not kept:
        return vpn_info
    return replace(vpn_info, tunnels=tuple(kept.get(t.tunnel_id, t) for t in vpn_info.tunnels))


def breaks_after_answer(vpn_info: VpnInfo) -> bool:
    """Issue 14: the old FA's tunnel goes after the HA's answer (make before break)."""
    return vpn_info.seamless_handover


def plan(ha: str, nai: str, now: float, old: Binding | None, vpn_info: VpnInfo,
         rrq: mip.RegistrationRequest, retiring: ExpiryDict[str, Retiring],
         simultaneous: SimultaneousBindings,
         end_earlier: Callable[[EarlierBinding, str, set[str]], list[Action]],
         tunnels_up: dict[str, bool], keeps: bool = False) -> TunnelSet:
    """The tunnel set of HA ``ha`` binding ``nai`` to ``vpn_info`` (``old``: the binding
    it had).  ``end_earlier(earlier, why, keep)``: the HA's actions ending an earlier
    (simultaneous) binding, its tunnels in ``keep`` aside.  ``tunnels_up``: tunnel id ->
    confirmed up since the HA added it, updated here for what is added or removed;
    ``keeps``: a renewal may keep a tunnel (through AAA only)."""
    new_tunnels = [t for t in vpn_info.tunnels_of(ha) if t.psk]
    out = TunnelSet(new_ids={t.tunnel_id for t in new_tunnels})
    removals: list[Action] = []
    moved = old is not None and old.foreign_agent != vpn_info.foreign_agent
    keep = moved and vpn_info.smooth_handoff
    earlier = simultaneous.pop(nai)   # two bindings at most: it goes now
    if earlier is not None:
        removals += end_earlier(earlier, "replaced", out.new_ids)
    if old is not None:
        gone = [t.tunnel_id for t in old.vpn_info.tunnels_of(ha)
                if t.psk and t.tunnel_id not in out.new_ids]
        if moved and honoured(rrq, vpn_info):
            # S bit (issue 14): the old binding stays until the new tunnel is up
            kept = [t for t in old.vpn_info.tunnels_of(ha) if t.tunnel_id in gone]
            for tid in gone:
                retiring.pop(tid, None)
            simultaneous.keep(now, nai, old.care_of_address, old.foreign_agent,
                              kept, out.new_ids)
            if gone:
                out.before.append(Mark(nai, "ha_simultaneous", {"kept": gone}))
        elif keep:
            # smooth handoff: make before break, the old FA's tunnel goes later
            for tunnel_id in gone:
                retiring[tunnel_id] = Retiring(nai, now + RETIRE_AFTER)
            if gone:
                out.before.append(Mark(nai, "ha_old_tunnel_kept", {"tunnels": gone}))
        else:
            # delete the VPN path to the old FA (claim 17): first, or after the answer
            removals += [RemoveTunnel(ha, tid) for tid in gone]
            for tid in gone:
                tunnels_up.pop(tid, None)
    old_specs = {t.tunnel_id: t for t in old.vpn_info.tunnels} if old else {}
    adds: list[Action] = []
    for spec in new_tunnels:
        tid = spec.tunnel_id
        retired = retiring.pop(tid, None) is not None
        was = old_specs.get(tid)
        if (keeps and not retired and earlier is None
                and tunnels_up.get(tid, False) and unchanged(was, spec)):
            assert was is not None
            out.kept[tid] = was      # a renewal: the tunnel stands, with its key
        elif was != spec or retired:
            adds.append(AddTunnel(ha, spec.side_for(ha)))
            tunnels_up[tid] = False   # until the runtime reports it up
    if breaks_after_answer(vpn_info):
        out.before += adds
        out.after = removals
    else:
        out.before = removals + out.before + adds
    return out
