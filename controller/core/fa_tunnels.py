"""The foreign agent's tunnel ends at a completed registration (issue 15, seventh steps):
which it sets, and which a renewal leaves as they stand.

A renewal that changes nothing touches no gateway.  The FA keeps an HA<->FA tunnel
when the MN registers again through it with the same MAC and access port, nothing of a
move in between (no forwarding tunnel of its own towards another FA, no retire, no
held downlink), the tunnel confirmed up since the FA last set it (``tunnels_up``: the
runtime's ``on_tunnel_up`` after the FA's initiation), and the AMA's spec of it equal
to the one the FA holds, *key included*.  The key decides with the HA: the HA answers
with the key it keeps for a tunnel it left standing (``ha_tunnels.plan``) and with the
home AAA's fresh one for a tunnel it set again, so an FA never keeps a tunnel the HA
set again, and an FA that sets its end again (any of the reasons above) sets it with
the key the HA holds.  An FA<->CN-GW tunnel comes with the home AAA's fresh key every
time (only the HA keeps keys; the CN-GW sets its end from the HA's Binding Update), so
the FA sets it again, as before.

Pure: ``tunnels_up`` is changed in place."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.core.actions import Action, AddTunnel
from controller.core.vpn import TunnelSpec, VpnInfo


@dataclass
class FaTunnels:
    """``adds``: the FA's AddTunnels, in the VPN information's order; ``kept``: the ids
    of the tunnels left standing."""

    adds: list[Action] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def __init__(self, adds: list[Action] | None = None, kept: list[str] | None = None) -> None:
        self.adds = adds if adds is not None else []
        self.kept = kept if kept is not None else []


def plan(fa: str, vpn_info: VpnInfo, old: VpnInfo | None, settled: bool,
         tunnels_up: dict[str, bool]) -> FaTunnels:
    """FA ``fa``'s tunnel ends for ``vpn_info``.  ``old``: the VPN information of the
    visitor it replaces (None: none); ``settled``: same MAC and port, and nothing of a
    move in between (see the module's text)."""
    out = FaTunnels()
    held: dict[str, TunnelSpec] = (
        {t.tunnel_id: t for t in old.tunnels_of(fa)} if old is not None and settled else {})
    for spec in vpn_info.tunnels_of(fa):
        tid = spec.tunnel_id
        if tunnels_up.get(tid, False) and held.get(tid) == spec:
            out.kept.append(tid)
            continue
        out.adds.append(AddTunnel(fa, spec.side_for(fa)))
        tunnels_up[tid] = False   # until the runtime reports it up
    return out
