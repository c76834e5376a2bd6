"""Issue 14: the flows of a seamless-handover MN's next move, prepared by its foreign
agent at the access switches of the FAs it can move to (``conf.neighbours``, the
plan of ``core/neighbours.py``), so the first frames after its link comes up there
are steered without a round trip to the controller.

One flow per MN and neighbour (``flows.prepare_mn``): the MN's frames still addressed
to this FA's MAC (its default route until the new FA's reply reaches it) are given
the neighbour FA's MAC and sent to it.  The new FA replaces it at the move by the
same flow with the MN's own cookie (``redirect``: it leaves with the MN's steering),
and prepares its own neighbours after its reply; the old FA removes what it prepared
when the MN leaves it, expires or deregisters.  Pure: returns actions and mods.

The uplink held (``holds_uplink``: ``HOLD_UPLINK`` and no standing CHILD_SA at the
neighbour, whose tunnel would be keyed before the move): the prepared redirect is a
punt to the controller, so nothing of the MN reaches the new FA before its tunnel: the
first punted frame makes the runtime ask ``uplink_hold`` (which FA prepared it, for
whom), the new FA's walk ends its tunnels with ``release_uplink`` (the held frames go
on in order, then the redirect replaces the punt).  The punt goes through a pkt/s meter per MN
(``punt_meter_id``: a spoofer of the MN's MAC at a neighbour cell punts at most its
rate to the controller); no meter id, no punt (the plain redirect)."""

from __future__ import annotations

from typing import Iterable

from controller.core import flows, neighbours
from controller.core.actions import Action, HoldUplink, ReleaseUplink, SendFlows
from controller.core.fa_conf import ForeignAgentConf
from controller.core.visitors import Visitor
from controller.core.vpn import VpnInfo

#: a seamless MN's frames to its previous FA are held at the new access switch until
#: the new FA's tunnel is up (False: redirected at once, dropped by the FA until then);
#: only without a standing CHILD_SA at the neighbour (``holds_uplink``)
HOLD_UPLINK = True


def holds_uplink() -> bool:
    """The prepared flow punts (the uplink held until the new FA's tunnel): only where
    the neighbour's CHILD_SA is made at the move.  With a standing CHILD_SA
    (``neighbours.STANDING_CHILD_SA``) the new FA's tunnel is keyed before the MN
    arrives: the hold only delays the uplink, and its hand-over races the old FA's
    removal of the punt (docs/decisions.md 2026-12-06, "the uplink not held")."""
    return HOLD_UPLINK and not neighbours.STANDING_CHILD_SA


def fa_slot(conf: ForeignAgentConf) -> int:
    """This FA's index among the topology's FAs (its punt meters' ids, -1: none)."""
    names = sorted(conf.fa_macs)
    return names.index(conf.name) if conf.name in names else -1


def punt_meter_id(conf: ForeignAgentConf, visitor: Visitor,
                  visitors: Iterable[Visitor] = ()) -> int:
    """The meter of the punts this FA prepares for ``visitor`` (0: none, no punt).
    The id is its port's: one MN per access port, so when another seamless visitor of
    ``visitors`` registered on that port after it, the id is that one's, and
    ``visitor`` (gone from the port, its entry not yet expired) has none: its removal
    must not delete the meter, which would take the other's punt with it."""
    if not holds_uplink() or any(_displaced_by(other, visitor) for other in visitors):
        return 0
    return flows.punt_meter_id(fa_slot(conf), visitor.port)


def _displaced_by(other: Visitor, visitor: Visitor) -> bool:
    """``other`` took ``visitor``'s port later (registration time, then NAI)."""
    return (other.nai != visitor.nai and other.port == visitor.port and other.lifetime > 0
            and other.vpn_info.seamless_handover
            and (other.expires - other.lifetime, other.nai)
            > (visitor.expires - visitor.lifetime, visitor.nai))


def redirect(conf: ForeignAgentConf, mn_mac: str, vpn_info: VpnInfo,
             old_fa: str) -> tuple[flows.Mod, ...]:
    """At the move, in the MN's steering: its frames to ``old_fa``'s MAC are given
    this FA's.  The same match and priority as what ``old_fa`` prepared here (this add
    replaces it in place, no gap), with the MN's cookie: the old FA's removal of what
    it prepared does not take it, the MN's own removal does."""
    old_mac = conf.fa_macs.get(old_fa, "")
    if not vpn_info.seamless_handover or not old_mac or old_fa == conf.name:
        return ()
    return (flows.FlowMod("add", flows.redirect_flow(
        mn_mac, old_mac, conf.inside_mac, conf.fa_port, flows.mn_cookie(mn_mac))),)


def prepare_neighbours(conf: ForeignAgentConf, visitor: Visitor,
                       old: Visitor | None, visitors: Iterable[Visitor] = ()) -> list[Action]:
    """After the reply to ``visitor``'s registration: its flows at every neighbour's
    access switch, if its profile asks for seamless handover; what this FA prepared
    for its previous entry (``old``) under another MAC, or before the option was
    switched off, removed; a deregistration (lifetime 0) prepares nothing and removes
    what was.  ``visitors``: this FA's (whose ports' meters are whose)."""
    out: list[Action] = []
    wanted = visitor.vpn_info.seamless_handover and visitor.lifetime > 0
    old_meter = (punt_meter_id(conf, old, visitors)
                 if old is not None and old.vpn_info.seamless_handover else 0)
    meter = punt_meter_id(conf, visitor, visitors) if wanted else 0
    for n in conf.neighbours:
        mods: tuple[flows.Mod, ...] = ()
        if old is not None and old.vpn_info.seamless_handover and (
                old.mn_mac != visitor.mn_mac or not wanted):
            mods += flows.unprepare_mn(old.mn_mac, conf.name, old_meter)
        elif old is not None and old.vpn_info.seamless_handover and old.port != visitor.port:
            mods += tuple(flows.MeterMod("delete", i) for i in (old_meter,) if i)
        if wanted:
            mods += flows.prepare_mn(visitor.mn_mac, conf.name, conf.inside_mac,
                                     n.inside_mac, n.fa_port, holds_uplink(), meter)
        if mods:
            out.append(SendFlows(n.access_dpid, mods))
    return out


def unprepare_neighbours(conf: ForeignAgentConf, visitor: Visitor,
                         visitors: Iterable[Visitor] = ()) -> list[Action]:
    """What ``prepare_neighbours`` stood up for ``visitor``, removed: it left, expired
    or deregistered (no flow of it stays at a switch it will not come to from here);
    its port's meter only if no later visitor of ``visitors`` has that port."""
    if not visitor.vpn_info.seamless_handover:
        return []
    meter = punt_meter_id(conf, visitor, visitors)
    return [SendFlows(n.access_dpid, flows.unprepare_mn(visitor.mn_mac, conf.name, meter))
            for n in conf.neighbours]


def prepared_flows(conf: ForeignAgentConf, visitors: Iterable[Visitor],
                   dpid: int) -> list[flows.Mod]:
    """The flows this FA intends at switch ``dpid`` for its visitors' next move (a
    reconnected switch's reconcile keeps them)."""
    seamless = [v for v in visitors if v.vpn_info.seamless_handover and v.lifetime > 0]
    # each port's meter is its latest visitor's (``punt_meter_id``), found in one pass
    latest: dict[int, Visitor] = {}
    for v in seamless:
        if v.port not in latest or _displaced_by(v, latest[v.port]):
            latest[v.port] = v
    meters = {v.nai: punt_meter_id(conf, v) if latest[v.port] is v else 0 for v in seamless}
    return [m for n in conf.neighbours if n.access_dpid == dpid for v in seamless
            for m in flows.prepare_mn(v.mn_mac, conf.name, conf.inside_mac, n.inside_mac,
                                      n.fa_port, holds_uplink(), meters[v.nai])]


def release_uplink(conf: ForeignAgentConf, nai: str, mn_mac: str, vpn_info: VpnInfo,
                   old_fa: str) -> list[Action]:
    """At the move, after this FA's tunnels: the MN's uplink held at this FA's access
    switch goes on, then the redirect (``redirect``) replaces the punt its previous FA
    prepared.  Nothing when there is no redirect (not seamless, no previous FA here)."""
    mods = redirect(conf, mn_mac, vpn_info, old_fa)
    if not mods or not holds_uplink():
        return []
    tunnel_ids = tuple(t.tunnel_id for t in vpn_info.tunnels_of(conf.name))
    return [ReleaseUplink(conf.name, conf.access_dpid, mn_mac.lower(), nai, tunnel_ids,
                          mods, conf.fa_macs[old_fa].lower())]


def uplink_hold(conf: ForeignAgentConf, visitors: Iterable[Visitor], dpid: int,
                src: str, dst: str) -> list[HoldUplink]:
    """A frame from ``src`` to ``dst`` punted at switch ``dpid``: if this FA prepared
    that punt (``dst`` is its MAC, ``dpid`` a neighbour's access switch, ``src`` a
    seamless visitor of it), it is that MN's uplink after a move: hold it."""
    if not holds_uplink() or dst.lower() != conf.inside_mac.lower() or not any(
            n.access_dpid == dpid for n in conf.neighbours):
        return []
    src = src.lower()
    for v in visitors:
        if v.mn_mac.lower() == src and v.vpn_info.seamless_handover and v.lifetime > 0:
            return [HoldUplink(dpid, src, v.nai, conf.inside_mac.lower())]
    return []
