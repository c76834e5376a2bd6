"""The foreign agent's smooth handoff (claims 22-23): the old FA holds a departed MN's
downlink when its port goes, takes the new FA's Binding Update with the old-FA -> new-FA
forwarding tunnel, forwards what it held into it and retires its own tunnels a little
later (make before break); the new FA sends that Binding Update and sets its end on the
acknowledgement.  With seamless handover (issue 14) the old FA holds the downlink too,
and the new FA asks for it as soon as its AAA accepted the MN (``_deliver_held``).
A mixin of ``ForeignAgent`` (controller/core/foreign_agent.py), which holds the state it
works on; pure like it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from controller.core import fa_prepare, flows
from controller.core.actions import (Action, AddTunnel, DeliverHeld, HoldTraffic, Mark,
                                     ReleaseHold, RemoveTunnel, ReplyMip, SendFlows,
                                     SendMip)
from controller.core.binding import (IdentificationClock, ack_status, binding_ack,
                                     build_binding_update, check_binding_update,
                                     handoff_key, peek_binding_update)
from controller.core.expiry import ExpiryDict
from controller.core.fa_conf import ForeignAgentConf, Pending
from controller.core.persist import Changes
from controller.core.role import FA, RoleKey, kind_of, name_of
from controller.core.visitors import TrackedVisitorTable, Visitor
from controller.core.vpn import TunnelSpec, VpnInfo, handoff_psk
from controller.logtext import log_text
from controller.model.dataclass_copy import replace
from controller.proto import mip

LOG = logging.getLogger("mipvpn.fa")

DEPARTED_GRACE = 10.0  # s a departed visitor is remembered (a late handoff BU)
#: smooth handoff: s the old FA keeps its tunnels of a departed MN (make before break:
#: what the new FA's secondary tunnel sends it until the primaries' rekey, the MN's
#: uplink, goes on to the HA / CN-GW instead of being dropped)
RETIRE_AFTER = 2.0


@dataclass
class HandoffTunnel:
    """This FA's end of an old-FA -> new-FA forwarding tunnel (claims 22-23)."""

    nai: str
    spec: TunnelSpec
    expires: float
    old_side: bool            # True at the old FA, False at the new FA


@dataclass(frozen=True)
class Hold:
    """A departed smooth-handoff MN whose downlink the access switch punts and the
    runtime holds (claims 22-23), until the Binding Update or ``expires``."""

    nai: str
    mn_mac: str
    port: int
    expires: float


@dataclass(frozen=True)
class _Retiring:
    nai: str
    spec: TunnelSpec
    expires: float


@dataclass
class _HandoffPending:
    nai: str
    spec: TunnelSpec
    identification: int
    lifetime: int



class SmoothHandoff:
    """The smooth-handoff events and helpers of ``ForeignAgent`` (its state below)."""

    conf: ForeignAgentConf
    changes: Changes
    visitors: TrackedVisitorTable
    departed: ExpiryDict[str, tuple[Visitor, float]]
    handoffs: ExpiryDict[str, HandoffTunnel]
    handoff_pending: dict[str, _HandoffPending]
    holds: ExpiryDict[str, Hold]
    retiring: ExpiryDict[str, _Retiring]
    tunnels_up: dict[str, bool]
    counters: dict[str, int]
    _handoff_ident: dict[str, int]
    _clock: IdentificationClock

    def on_port_down(self, now: float, port: int) -> list[Action]:
        """An access port of this FA's switch went away (OpenFlow port-status delete or
        link down): the MN on it has left the link, the new FA does not know yet.  For a
        visitor with smooth handoff (claims 22-23) or seamless handover (issue 14) its
        steering is replaced by a punt of its downlink to the controller, which holds
        it until the new FA's AAA accepts the MN there (seamless: ``DeliverHeld``, then
        it goes to the MN at once), the new FA's Binding Update arrives (then it goes
        into the forwarding tunnel) or ``hold_time`` has passed (dropped).  The visitor
        itself stays until the move tells (BU, "visitor left", expiry)."""
        if port == self.conf.fa_port:
            return []
        actions: list[Action] = []
        for visitor in list(self.visitors.values()):
            info = visitor.vpn_info
            if (visitor.port != port or visitor.nai in self.holds
                    or not (info.smooth_handoff or info.seamless_handover)):
                continue
            self.holds[visitor.nai] = Hold(visitor.nai, visitor.mn_mac, port,
                                           now + self.conf.hold_time)
            self.counters["holds"] += 1
            dpid = self.conf.access_dpid
            actions += [Mark(visitor.nai, "held_at_old_fa", {"fa": self.conf.name}),
                        HoldTraffic(self.conf.name, dpid, visitor.mn_mac, visitor.nai),
                        SendFlows(dpid, flows.hold_mn(visitor.mn_mac, self.conf.fa_port))]
        return actions

    def _release(self, nai: str, forward: bool, tunnel_id: str = "",
                 unpunted: bool = False, peer: str = "") -> list[Action]:
        """End the hold of ``nai``'s downlink; ``unpunted``: its punt flow is already
        gone (the MN is back, its steering replaced the punt)."""
        hold = self.holds.pop(nai, None)
        if hold is None:
            return []
        self.counters["holds_forwarded" if forward else "holds_expired"] += 1
        mods = () if unpunted else flows.release_hold(hold.mn_mac)
        return [ReleaseHold(self.conf.name, self.conf.access_dpid, hold.mn_mac, forward,
                            tunnel_id, mods, peer),
                Mark(nai, "hold_released" if forward else "hold_expired",
                     {"fa": self.conf.name, "tunnel": tunnel_id})]

    # ------------------------------------------------------------------ smooth handoff

    def on_mip(self, now: float, raw: bytes, sender: str) -> list[Action]:
        """Old FA, claims 22-23: the new FA's Binding Update with the forwarding tunnel.
        Cache it, delete the VPN path to the HA (every tunnel of the MN here) and the
        MN's steering, set this end of the old-FA -> new-FA tunnel, acknowledge."""
        if raw[:1] == bytes([mip.REGISTRATION_REPLY]):
            # a Registration Reply that answers no request of ours (the awaited ones
            # never get here): dropped and counted (RFC 5944 §3.7.3.1)
            self.counters["reply_unmatched"] += 1
            return []
        bu = peek_binding_update(raw)
        if bu is None:
            self.counters["malformed"] += 1
            return []
        new_fa = name_of(sender) if kind_of(sender) == FA else ""
        nai = bu.nai or ""
        visitor = self.visitors.get(nai)
        departed = self.departed.get(nai)
        known = visitor or (departed[0] if departed else None)
        if (known is None or known.home_address != bu.home_address or not new_fa
                or not known.fa_key):
            return self._handoff_ack(bu, mip.BACK_ADMIN_PROHIBITED)
        expected = handoff_psk(known.fa_key, self.conf.name, new_fa)
        checked = check_binding_update(raw, handoff_key(expected), now,
                                       self._handoff_ident.get(nai, 0))
        if isinstance(checked, int):
            return self._handoff_ack(bu, checked)
        if (len(checked.tunnels) != 1 or checked.tunnels[0].psk != expected
                or set(checked.tunnels[0].ends()) != {self.conf.name, new_fa}):
            return self._handoff_ack(bu, mip.BACK_POORLY_FORMED)
        self._handoff_ident[nai] = bu.identification
        self.changes.note(nai)              # an in-place change: persisted
        spec = checked.tunnels[0]
        actions: list[Action] = [Mark(nai, "handoff_bu_at_old_fa", {"fa": self.conf.name})]
        if visitor is not None:
            del self.visitors[nai]
            self.departed[nai] = (visitor, now + DEPARTED_GRACE)
            actions += self._teardown(visitor, now)
        if checked.is_delete:
            if self.handoffs.pop(spec.tunnel_id, None) is not None:
                actions.append(RemoveTunnel(self.conf.name, spec.tunnel_id))
            actions += self._release(nai, forward=False)
        else:
            self.handoffs[spec.tunnel_id] = HandoffTunnel(nai, spec, now + checked.lifetime,
                                                          old_side=True)
            actions.append(AddTunnel(self.conf.name, spec.side_for(self.conf.name)))
            # what was held for the MN since its link left goes into the tunnel (the
            # runtime waits for its CHILD_SA: the new FA initiates after the BAck)
            actions += self._release(nai, forward=True, tunnel_id=spec.tunnel_id,
                                     peer=new_fa)
        self.counters["handoff_bu_accepted"] += 1
        return actions + self._handoff_ack(bu, mip.BACK_OK)

    def on_mip_reply(self, now: float, to: str, raw: bytes | None,
                     context: object) -> list[Action]:
        """New FA, claims 22-23: the old FA's Binding Acknowledge; set this end of the
        forwarding tunnel (initiator: the old FA's end is set)."""
        p = self.handoff_pending.pop(str(context), None)
        if p is None:
            return []
        status = ack_status(raw, p.identification)
        if status != mip.BACK_OK:
            LOG.warning("%s: smooth handoff of %s to %s failed (%s)", self.conf.name,
                        log_text(p.nai), to, "timeout" if status is None else status)
            return [Mark(p.nai, "handoff_failed", {"fa": self.conf.name, "status": status})]
        self.handoffs[p.spec.tunnel_id] = HandoffTunnel(p.nai, p.spec, now + p.lifetime,
                                                        old_side=False)
        # Secondary: its selectors equal those of this FA's tunnel towards the HA (or a
        # CN-GW); it only has to receive what the old FA forwards, never carry the uplink.
        side = replace(p.spec.side_for(self.conf.name), secondary=True)
        return [AddTunnel(self.conf.name, side),
                Mark(p.nai, "handoff_set", {"fa": self.conf.name})]

    def _deliver_held(self, p: Pending, vpn_info: VpnInfo) -> list[Action]:
        """Issue 14: the new FA's AAA accepted a seamless MN that came from another FA
        (the local AAA checked its MN-FA authenticator over this very RRQ; on the full
        path the home AAA its MN-AAA one and the HA its registration): what that FA
        holds for it goes to it here now (``DeliverHeld``), not after this FA's reply
        and a Binding Update, or never (without smooth handoff)."""
        old_fa = p.previous_fa or vpn_info.previous_foreign_agent
        if not vpn_info.seamless_handover or not old_fa or old_fa == self.conf.name:
            return []
        return [DeliverHeld(self.conf.name, self.conf.access_dpid, p.port, p.mn_mac, p.nai),
                Mark(p.nai, "held_to_mn")]

    def _stop_forwarding(self, nai: str, off_path: bool = False) -> list[Action]:
        """The MN is back here while this FA, its old FA, still forwards it elsewhere:
        remove that end of the forwarding tunnel (``off_path``: beside the walk)."""
        actions: list[Action] = []
        for tunnel_id, h in list(self.handoffs.items()):
            if h.nai == nai and h.old_side:
                del self.handoffs[tunnel_id]
                actions.append(RemoveTunnel(self.conf.name, tunnel_id, off_path=off_path))
        return actions

    def _handoff_update(self, now: float, p: Pending, spec: TunnelSpec) -> list[Action]:
        """New FA: the Binding Update that hands the old FA the forwarding tunnel."""
        old_fa = next(g for g in spec.ends() if g != self.conf.name)
        ident = self._clock.next(now)
        lifetime = self.conf.handoff_lifetime
        raw = build_binding_update(handoff_key(spec.psk), ident, lifetime,
                                   p.rrq.home_address, self.conf.core_address, p.nai, (spec,))
        context = f"handoff:{ident}"
        self.handoff_pending[context] = _HandoffPending(p.nai, spec, ident, lifetime)
        self.counters["handoff_bu_sent"] += 1
        return [Mark(p.nai, "handoff_bu_sent", {"fa": self.conf.name, "old_fa": old_fa}),
                SendMip(RoleKey(FA, old_fa), raw, expect_reply=True, context=context)]

    def _handoff_ack(self, bu: mip.BindingUpdate, status: int) -> list[Action]:
        if status != mip.BACK_OK:
            self.counters["handoff_bu_refused"] += 1
            LOG.info("%s: handoff Binding Update for %s refused (%d)", self.conf.name,
                     bu.home_address, status)
        return [ReplyMip(binding_ack(status, bu.home_address, bu.identification))]

    def _teardown(self, visitor: Visitor, now: float | None = None) -> list[Action]:
        """Drop the visitor's tunnels and steering.  ``now`` (it moved on): with smooth
        handoff its tunnels stay ``RETIRE_AFTER`` longer (make before break)."""
        actions: list[Action] = []
        for t in visitor.vpn_info.tunnels_of(self.conf.name):
            self.tunnels_up.pop(t.tunnel_id, None)    # set anew if the MN comes back
            if now is not None and visitor.vpn_info.smooth_handoff:
                self.retiring[t.tunnel_id] = _Retiring(visitor.nai, t, now + RETIRE_AFTER)
            else:
                actions.append(RemoveTunnel(self.conf.name, t.tunnel_id))
        # a forwarding tunnel this FA ended as the new FA is of no use once the MN left
        for tunnel_id, h in list(self.handoffs.items()):
            if h.nai == visitor.nai and not h.old_side:
                del self.handoffs[tunnel_id]
                actions.append(RemoveTunnel(self.conf.name, tunnel_id))
        actions.append(SendFlows(self.conf.access_dpid, flows.remove_mn(visitor.mn_mac)))
        return actions + fa_prepare.unprepare_neighbours(self.conf, visitor,
                                                         self.visitors.values())
