"""The executor: performs a role's actions in order.  Tunnel actions go to the
gateway's worker, flow-mods are sent with a barrier and awaited, Diameter requests are
awaited and their answers fed back to the role that sent them; the state behind a
visible action is persisted first (issue 5).  A move therefore reads as one straight
walk: port event -> FA -> AAA -> HA -> tunnel actions -> flow actions."""

from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, Coroutine, Mapping

from controller.adapters.diameter_peer import DiameterError
from controller.logtext import log_text
from controller.core import flows, persist
from controller.core.actions import (AddTunnel, AnswerDiameter, HoldTraffic, Mark,
                                     NotifyVisitorLeft, RelayToHomeAgent, ReleaseHold,
                                     RemoveTunnel, ReplyMip, SendDiameter, SendFlows,
                                     SendMip, SendToMobileNode)
from controller.core.handover import HandoverLog
from controller.metrics import Metrics
from controller.runtime import settings
from controller.runtime.diameter_links import DiameterLinks
from controller.runtime.gateways import Gateways
from controller.runtime.held import HeldDownlinks
from controller.runtime.lookup import foreign_agents
from controller.runtime.mip_io import MipIo
from controller.runtime.persistence import Persistence

LOG = logging.getLogger("mipvpn.runtime")


class Executor:
    """Each collaborator it hands actions to is given here; ``send_flows(dpid, mods)``
    is the switches' (flow-mods with a barrier), ``spawn(coro)`` a task on the loop,
    ``now()`` the roles' clock."""

    def __init__(self, roles: Mapping[str, Any], handovers: HandoverLog, metrics: Metrics,
                 persistence: Persistence, gateways: Gateways, links: DiameterLinks,
                 mip_io: MipIo, held: HeldDownlinks, *,
                 send_flows: Callable[[int, tuple[flows.Mod, ...]], Awaitable[None]],
                 spawn: Callable[[Coroutine[Any, Any, Any]], None],
                 now: Callable[[], float]) -> None:
        self.roles = roles
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
        role = self.roles[key]
        result = None
        for action in actions:
            if self.persistence.dirty and isinstance(action, settings.VISIBLE):
                self.persistence.flush()   # issue 5: persisted before anyone hears of it
            if isinstance(action, Mark):
                if (persist.kind_of(key), action.phase) in persist.MARKS_THAT_CHANGE_STATE:
                    self.persistence.mark_dirty(key, action.nai)
                record = self.handovers.open.get(action.nai)
                self.handovers.mark(action.nai, action.phase, time.monotonic(), action.extra)
                if record is not None and action.phase == "rrp_sent":
                    self.metrics.handover_done(record)  # counters, histograms, log line
                if (action.phase == "rrp_sent" and action.extra.get("accepted")
                        and key.startswith("fa:")):
                    self.spawn(self.left_elsewhere(key, action.nai))
            elif isinstance(action, AddTunnel):
                await self.gateways.add_tunnel(action)
            elif isinstance(action, RemoveTunnel):
                await self.gateways.remove_tunnel(action)
            elif isinstance(action, SendFlows):
                mods: tuple[flows.Mod, ...] = action.mods
                if key.startswith("fa:"):  # QoS (claims 8, 9): the MN's meters and DSCP
                    # only the MNs these mods install (scanning every visitor's VPN
                    # info cost 76 % of the CPU at 5,000 visitors: docs/benchmarks.md)
                    macs = {str(v) for m in mods if m.op == "add"
                            for k, v in getattr(m, "flow", flows.FlowSpec(0, (), ())).match
                            if k in ("eth_src", "eth_dst")}
                    found = (role.visitors.by_mac(mac) for mac in macs)
                    mods = flows.with_mn_qos(mods, flows.visitors_qos(
                        (v for v in found if v is not None), role.conf.name))
                await self.send_flows(action.dpid, mods)
            elif isinstance(action, SendDiameter):
                # a link not (yet) up, e.g. refused over TLS: no route, refused at once
                node, peer = (self.links.routes.get(key, {}).get(action.to)
                              or (self.links.nodes[key], None))
                late = (self.late_answer_handler(key)
                        if hasattr(role, "on_late_diameter_answer") else None)
                try:
                    answer = await node.request(action.request, peer=peer, late=late)
                except DiameterError as exc:
                    LOG.warning("%s: Diameter request to %s failed: %s", key, action.to, log_text(exc))
                    follow = role.on_diameter_timeout(self.now(), action.request.session_id)
                else:
                    follow = role.on_diameter_answer(self.now(), answer)
                answer = await self.execute(key, follow)
                if answer is not None:
                    result = answer
            elif isinstance(action, (AnswerDiameter, ReplyMip)):
                result = action.answer if isinstance(action, AnswerDiameter) else action.raw
            elif isinstance(action, RelayToHomeAgent):
                reply = await self.mip_io.relay_to_ha(key, action)
                now = self.now()
                follow = (role.on_home_agent_reply(now, action.nai, reply) if reply
                          else role.on_home_agent_timeout(now, action.nai))
                await self.execute(key, follow)
            elif isinstance(action, SendMip):
                reply = await self.mip_io.send_mip(key, action)
                if action.expect_reply:
                    follow = role.on_mip_reply(self.now(), action.to, reply, action.context)
                    answer = await self.execute(key, follow)
                    if answer is not None:
                        result = answer
            elif isinstance(action, SendToMobileNode):
                self.mip_io.send_to_mn(action)
            elif isinstance(action, HoldTraffic):
                self.held.hold(action)
            elif isinstance(action, ReleaseHold):
                # never in line: the forwarding tunnel comes up only after the BAck
                self.spawn(self.held.release(action))
            elif isinstance(action, NotifyVisitorLeft):
                other = f"fa:{action.foreign_agent}"
                if other in self.roles:
                    await self.execute(other, self.roles[other].on_visitor_left(
                        self.now(), action.nai))
            else:
                raise TypeError(f"unknown action {action!r}")
        if self.persistence.dirty:
            self.persistence.flush()
        return result

    async def left_elsewhere(self, new_fa: str, nai: str) -> None:
        """The MN registered at ``new_fa``: any other FA of this controller that still
        lists it as a visitor (a move across domains, where the new FA cannot name the
        old one as a peer) drops its tunnel end and the MN's flows.  Same-domain moves
        are already handled by the FA's own NotifyVisitorLeft; this is idempotent."""
        for other in foreign_agents(self.roles):
            okey = f"fa:{other.conf.name}"
            if okey != new_fa and nai in other.visitors:
                await self.execute(okey, other.on_visitor_left(self.now(), nai))

    def late_answer_handler(self, key: str) -> Any:
        """An answer that arrives after its request timed out goes to the role (the FA:
        the home side may have completed a registration the FA already refused)."""
        def late(answer: Any) -> None:
            role = self.roles[key]
            if self.registered_elsewhere(key, getattr(answer, "user_name", "")):
                role.on_late_diameter_answer_dropped(answer)
                return
            self.spawn(self.execute(key, role.on_late_diameter_answer(self.now(), answer)))
        return late

    def registered_elsewhere(self, fa_key: str, nai: str) -> bool:
        """The MN registered (or is registering) through another FA of this process,
        or the HA here binds it to another FA: a late answer for ``fa_key`` is stale."""
        for key, role in self.roles.items():
            if key == fa_key or not key.startswith("fa:"):
                continue
            if nai in role.visitors or any(p.nai == nai for p in role.pending.values()):
                return True
        ha = self.roles.get("ha")
        binding = ha.bindings.get(nai) if ha is not None else None
        return binding is not None and binding.foreign_agent != fa_key.split(":", 1)[1]
