"""The executor: performs a role's actions in order.  Tunnel actions go to the
gateway's worker, flow-mods are sent with a barrier and awaited, Diameter requests are
awaited and their answers fed back to the role that sent them; the state behind a
visible action is persisted first (issue 5).  A tunnel removal a role put after its
answer runs after the walk (issue 14: the HA's make before break), so it does not
delay the answer.  A move therefore reads as one straight
walk: port event -> FA -> AAA -> HA -> tunnel actions -> flow actions.

What concerns another role, or a role's request's outcome, is decided by the pure
``Dispatch`` (``controller.core.dispatch``), shared with the unit-test walk: this
executor only performs I/O (send, tunnel, flows) and timing."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from contextlib import nullcontext
from typing import Any, Awaitable, Callable, ContextManager, Coroutine, Mapping

from controller.adapters.diameter_peer import DiameterError
from controller.logtext import log_text
from controller.core import flows
from controller.core.actions import (AddTunnel, AnnounceMobileNode, AnswerDiameter,
                                     DeliverHeld, HoldTraffic, HoldUplink, Mark,
                                     NotifyVisitorLeft, PrepareTunnel,
                                     RelayToHomeAgent, ReleaseHold, ReleaseUplink,
                                     RemoveTunnel, ReplyMip, SendDiameter,
                                     SendFlows, SendMip, SendToMobileNode, VisitorMoved)
from controller.core.dispatch import Dispatch
from controller.core.handover import HandoverLog
from controller.metrics import Metrics
from controller.runtime import settings
from controller.runtime.diameter_links import DiameterLinks
from controller.runtime.gateways import Gateways
from controller.runtime.held import HeldDownlinks
from controller.runtime.mip_io import MipIo
from controller.runtime.persistence import Persistence

LOG = logging.getLogger("mipvpn.runtime")


#: the action classes ``Executor.execute`` performs: it tells them apart by identity
#: (one comparison each, not an ``isinstance`` call per branch: issue 15)
_KINDS = frozenset({AddTunnel, AnnounceMobileNode, AnswerDiameter, DeliverHeld, HoldTraffic,
                    HoldUplink,
                    Mark, NotifyVisitorLeft, PrepareTunnel, RelayToHomeAgent, ReleaseHold,
                    ReleaseUplink, RemoveTunnel, ReplyMip, SendDiameter, SendFlows, SendMip,
                    SendToMobileNode, VisitorMoved})
_VISIBLE = frozenset(settings.VISIBLE)


@functools.cache
def _kind_of(cls: type) -> type | None:
    """The action class a subclass is performed as (None: not an action)."""
    return next((k for k in cls.__mro__ if k in _KINDS), None)


class Executor:
    """Each collaborator it hands actions to is given here; ``send_flows(dpid, mods)``
    is the switches' (flow-mods with a barrier), ``spawn(coro)`` a task on the loop,
    ``now()`` the roles' clock."""

    def __init__(self, roles: Mapping[str, Any], handovers: HandoverLog, metrics: Metrics,
                 persistence: Persistence, gateways: Gateways, links: DiameterLinks,
                 mip_io: MipIo, held: HeldDownlinks, *,
                 send_flows: Callable[[int, tuple[flows.Mod, ...]], Awaitable[None]],
                 spawn: Callable[[Coroutine[Any, Any, Any]], None],
                 now: Callable[[], float],
                 snapshot: Callable[[], ContextManager[None]] = nullcontext) -> None:
        self.roles = roles
        self.snapshot = snapshot    # as ``DiameterLinks.snapshot``
        self.dispatch = Dispatch(roles)
        self.handovers = handovers
        self.metrics = metrics
        self.persistence = persistence
        self.gateways = gateways
        self.links = links
        self.mip_io = mip_io
        self.held = held
        self.send_flows = send_flows
        self.spawn = spawn
        self.now = now

    async def execute(self, key: str, actions: list[Any]) -> Any:
        """Perform ``actions`` for role ``key`` in order; return its answer, if any."""
        dispatch = self.dispatch
        result = None
        sending: list[asyncio.Future[None]] = []   # SendFlows(wait=False) in flight
        for action in actions:
            kind: type | None = type(action)
            if kind not in _KINDS:
                kind = _kind_of(kind)
            if kind in _VISIBLE and self.persistence.dirty:
                # issue 5: persisted before anyone hears of it (issue 15: one commit for
                # every walk that gets here in the same turn of the event loop)
                await self.persistence.commit()
            if kind is Mark:
                record = self.handovers.open.get(action.nai)
                self.handovers.mark(action.nai, action.phase, time.monotonic(), action.extra)
                if record is not None and action.phase == "rrp_sent":
                    self.metrics.handover_done(record)  # counters, histograms, log line
            elif kind is AddTunnel:
                if await self.gateways.add_tunnel(action):
                    # issue 14: established at its initiator, so at both ends
                    self._tunnel_up(action.side.tunnel_id)
            elif kind is RemoveTunnel:
                if result is None and not action.off_path:
                    await self.gateways.retire_tunnel(action)
                else:   # issue 14: after the role's answer (make before break at the
                    self.spawn(self.gateways.retire_tunnel(action))   # HA), off its path
            elif kind is PrepareTunnel:
                self.spawn(self.gateways.prepare_tunnel(action))   # off the move's path
            elif kind is SendFlows:
                # QoS (claims 8, 9) is in the mods already: the FA plans it
                if action.wait:
                    await self.send_flows(action.dpid, action.mods)
                else:   # issue 14: alongside what follows, settled before the MN hears
                    sending.append(asyncio.ensure_future(
                        self.send_flows(action.dpid, action.mods)))
            elif kind is SendDiameter:
                # a link not (yet) up, e.g. refused over TLS: no route, refused at once
                node, peer = (self.links.routes.get(key, {}).get(action.to)
                              or (self.links.nodes[key], None))
                late = (self.late_answer_handler(key)
                        if dispatch.takes_late_answers(key) else None)
                try:
                    answer = await node.request(action.request, peer=peer, late=late)
                except DiameterError as exc:
                    LOG.warning("%s: Diameter request to %s failed: %s", key, action.to, log_text(exc))
                    answer = None
                with self.snapshot():
                    follow = dispatch.diameter_outcome(self.now(), key,
                                                       action.request.session_id, answer)
                answer = await self.execute(key, follow)
                if answer is not None:
                    result = answer
            elif kind is AnswerDiameter:
                result = action.answer
            elif kind is ReplyMip:
                result = action.raw
            elif kind is RelayToHomeAgent:
                reply = await self.mip_io.relay_to_ha(key, action)
                await self.execute(key, dispatch.home_agent_outcome(self.now(), key,
                                                                    action, reply))
            elif kind is SendMip:
                reply = await self.mip_io.send_mip(key, action)
                if action.expect_reply:
                    follow = dispatch.mip_outcome(self.now(), key, action, reply)
                    answer = await self.execute(key, follow)
                    if answer is not None:
                        result = answer
            elif kind is SendToMobileNode:
                if sending:
                    await asyncio.gather(*sending)
                    sending.clear()
                self.mip_io.send_to_mn(action)
            elif kind is AnnounceMobileNode:
                self.mip_io.announce_mn(action)
            elif kind is HoldTraffic:
                self.held.hold(action)
            elif kind is DeliverHeld:
                self.held.deliver(action)       # issue 14: in line, before the relay
            elif kind is HoldUplink:
                pass        # the runtime asks for it at the first frame (held_uplink.py)
            elif kind is ReleaseUplink:
                if self.held.uplink is not None:    # issue 14: in line, before the reply
                    self.held.uplink.release(action)
            elif kind is ReleaseHold:
                # never in line: the forwarding tunnel comes up only after the BAck
                self.spawn(self.held.release(action))
            elif kind is NotifyVisitorLeft:
                for other, follow in dispatch.visitor_left(self.now(), action):
                    await self.execute(other, follow)
            elif kind is VisitorMoved:
                self.spawn(self._left_elsewhere(action))   # after this walk, not in it
            else:
                raise TypeError(f"unknown action {action!r}")
        if sending:
            await asyncio.gather(*sending)
        if self.persistence.dirty:
            await self.persistence.commit()
        return result

    def _tunnel_up(self, tunnel_id: str) -> None:
        """Tell the roles that ``tunnel_id`` is up (an earlier binding the HA kept for
        it ends: ``HomeAgent.on_tunnel_up``).  Their marks go into the move's record
        now; the rest (removing the earlier tunnels) runs after the walk that set it."""
        for key, role in self.roles.items():
            up = getattr(role, "on_tunnel_up", None)
            follow = up(self.now(), tunnel_id) if up is not None else None
            for mark in [a for a in follow or () if isinstance(a, Mark)]:
                self.handovers.mark(mark.nai, mark.phase, time.monotonic(), mark.extra)
            rest = [a for a in follow or () if not isinstance(a, Mark)]
            if rest:
                self.spawn(self.execute(key, rest))

    async def _left_elsewhere(self, moved: VisitorMoved) -> None:
        """The other FAs of this process that still list the moved MN drop it
        (``Dispatch.left_elsewhere``)."""
        for other, follow in self.dispatch.left_elsewhere(self.now(), moved):
            await self.execute(other, follow)

    def late_answer_handler(self, key: str) -> Any:
        """An answer that arrives after its request timed out goes to the role
        (``Dispatch.late_answer``), unless the MN registered elsewhere meanwhile."""
        def late(answer: Any) -> None:
            follow = self.dispatch.late_answer(self.now(), key, answer)
            if follow is not None:
                self.spawn(self.execute(key, follow))
        return late

    def registered_elsewhere(self, fa_key: str, nai: str) -> bool:
        return self.dispatch.registered_elsewhere(fa_key, nai)
