"""Switches (OpenFlow, fed from os-ken's threads): connected datapaths, flow-mods with
a barrier, flow stats, a reconnected switch's table reconciled, and the dispatch of
packet-ins and port events to the collaborators that handle them."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Coroutine, Mapping

from controller.adapters import openflow
from controller.core import flows
from controller.core.actions import HoldTraffic
from controller.core.handover import HandoverLog
from controller.metrics import Metrics
from controller.runtime.held import HeldDownlinks
from controller.core.dispatch import Dispatch
from controller.core.role import FA, HA, RoleKey
from controller.runtime.lookup import fa_of_dpid
from controller.runtime.mip_io import MipIo

LOG = logging.getLogger("mipvpn.runtime")


class Switches:
    """``datapaths``: dpid -> connected switch (shared with the collaborators that send
    packet-outs); ``flow_sink``: receives flow-mods instead of switches (benchmarks);
    ``execute`` / ``spawn`` / ``now``: the executor, a task on ``loop``, the clock."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fabric: flows.Fabric,
                 roles: Mapping[str, Any], counters: dict[str, int], metrics: Metrics,
                 datapaths: dict[int, Any], held: HeldDownlinks, mip_io: MipIo, *,
                 flow_sink: Callable[[int, tuple[flows.FlowMod, ...]], None] | None,
                 execute: Callable[[str, list[Any]], Awaitable[Any]],
                 spawn: Callable[[Coroutine[Any, Any, Any]], None],
                 now: Callable[[], float], handovers: HandoverLog | None = None) -> None:
        self.loop = loop
        self.fabric = fabric
        self.roles = roles
        self.dispatch = Dispatch(roles)
        self.counters = counters
        self.metrics = metrics
        self.datapaths = datapaths
        self.held = held
        self.mip_io = mip_io
        self.flow_sink = flow_sink
        self.execute = execute
        self.spawn = spawn
        self.now = now
        # issue 14: the link events each move's record starts with (port-status)
        self.handovers = handovers
        self.barriers: dict[tuple[int, int], asyncio.Future[None]] = {}
        self._stats: dict[tuple[int, int], tuple[list[Any], asyncio.Future[Any]]] = {}
        self.reconciles: dict[str, dict[str, Any]] = {}
        self.on_demand_seen: dict[tuple[str, str], float] = {}

    def switch_connected(self, dp: Any) -> None:
        """Called from os-ken's thread on switch features."""
        name = self.fabric.switch_of_dpid(dp.id)
        if name is None:
            LOG.warning("unknown switch dpid %#x connected", dp.id)
            return
        self.loop.call_soon_threadsafe(self._switch_up, dp, name)

    def _switch_up(self, dp: Any, name: str) -> None:
        self.datapaths[dp.id] = dp
        mods = [flows.FlowMod("delete", flows.FlowSpec(0, (), (), 0), cookie_mask=0)]
        mods += flows.static_flows(self.fabric, name)
        self.spawn(self._reconcile_switch(dp.id, tuple(mods)))
        LOG.info("switch %s (dpid %#x) connected", name, dp.id)

    async def _reconcile_switch(self, dpid: int, static: tuple[flows.FlowMod, ...]) -> None:
        """A switch (re)connected: its table becomes exactly what we intend — the
        static flows, then the steering of every MN registered through an FA on it
        (a reconnect after a switch restart loses nothing)."""
        # what the table must hold: the static flows, every visitor's steering.  The
        # switch is asked what it holds; only the difference is sent (issue 5: after a
        # controller restart nothing changes and no packet is dropped).  A switch that
        # does not answer gets the table reset and everything in one batch, one
        # barrier (the MNs' steering follows the reset in the same stream).
        dp = self.datapaths.get(dpid)
        existing = await self._flow_stats(dpid) if dp is not None else None
        # what we intend, computed after the switch answered: a visitor that left (or
        # came) during the round trip is not re-added (or missed)
        # (each FA's visitors' steering with QoS, or a departed MN's punt)
        mods: list[flows.Mod] = list(static) + self.dispatch.intended_flows(dpid)
        dp = self.datapaths.get(dpid)
        if dp is not None and existing is not None:
            msgs, counts = openflow.reconcile_msgs(dp, tuple(mods), existing)
            name = self.fabric.switch_of_dpid(dpid) or hex(dpid)
            self.reconciles[name] = {**counts, "at": time.time()}
            LOG.info("switch %s reconciled: %d flows kept, %d added, %d removed", name,
                     counts["kept"], counts["added"], counts["removed"])
            await self._send_msgs(dpid, msgs)
            return
        await self.send_flows(dpid, tuple(mods))

    async def _flow_stats(self, dpid: int, timeout: float = 2.0) -> list[Any] | None:
        """Every flow the switch holds (OFPMP_FLOW), or None if it does not answer."""
        dp = self.datapaths.get(dpid)
        if dp is None or self.flow_sink is not None:
            return None
        req = openflow.flow_stats_request(dp)
        dp.set_xid(req)
        fut = self.loop.create_future()
        self._stats[(dpid, req.xid)] = ([], fut)
        dp.send_msg(req)
        try:
            return await asyncio.wait_for(fut, timeout)  # type: ignore[no-any-return]
        except asyncio.TimeoutError:
            LOG.warning("switch %#x: no flow stats in %.0f s: resetting its table", dpid,
                        timeout)
            return None
        finally:
            self._stats.pop((dpid, req.xid), None)

    def flow_stats_reply(self, dpid: int, xid: int, body: list[Any], more: bool) -> None:
        """From os-ken's thread: one part of a flow-stats reply."""
        def got() -> None:
            entry = self._stats.get((dpid, xid))
            if entry is None:
                return
            entry[0].extend(body)
            if not more and not entry[1].done():
                entry[1].set_result(entry[0])
        self.loop.call_soon_threadsafe(got)

    async def _send_msgs(self, dpid: int, msgs: list[Any]) -> None:
        """Ready-made OpenFlow messages, then a barrier (awaited)."""
        dp = self.datapaths.get(dpid)
        if dp is None:
            return
        for msg in msgs:
            dp.send_msg(msg)
        n = len(msgs)
        self.counters["flow_mods"] += n
        self.metrics.flow_mods_sent(self.fabric.switch_of_dpid(dpid) or hex(dpid), n)
        barrier = dp.ofproto_parser.OFPBarrierRequest(dp)
        dp.set_xid(barrier)
        fut = self.loop.create_future()
        self.barriers[(dpid, barrier.xid)] = fut
        dp.send_msg(barrier)
        try:
            await asyncio.wait_for(fut, 2.0)
        except asyncio.TimeoutError:
            self.barriers.pop((dpid, barrier.xid), None)
            LOG.warning("no barrier reply from %#x", dpid)

    def switch_disconnected(self, dpid: int) -> None:
        self.loop.call_soon_threadsafe(self.datapaths.pop, dpid, None)

    def packet_in(self, dpid: int, in_port: int, data: bytes) -> None:
        self.counters["packet_in"] += 1
        switch = self.fabric.switch_of_dpid(dpid)
        if switch is not None and self.fabric.roles.get(switch) == "core":
            for port, gw in self.fabric.dynamic_cn_ports.get(switch, []):
                if port == in_port:
                    dst = openflow.ipv4_dst(data)
                    if dst is not None:
                        self.loop.call_soon_threadsafe(self._correspondent_packet, gw, dst)
            return
        if len(data) >= 14 and data[12:14] == b"\x08\x00" and self._from_fa(dpid, in_port):
            # IPv4 from an FA towards its access switch reaches us only when a departed
            # MN's downlink is punted (hold flow, fast-failover group); looked up on the
            # loop, after the port-status that made the hold
            self.loop.call_soon_threadsafe(self.held.held_frame, dpid, data, time.monotonic())
            return
        punted = openflow.parse_punted_mip(data)
        if punted is None:
            self.loop.call_soon_threadsafe(self._not_signalling, dpid, in_port, data,
                                           time.monotonic())
            return
        self.loop.call_soon_threadsafe(self.mip_io.rrq_in, dpid, in_port, punted)

    def _not_signalling(self, dpid: int, in_port: int, data: bytes, at: float) -> None:
        """A punted frame from an MN's side that is not a registration: a seamless MN's
        uplink held until its new FA's tunnel is up (issue 14), else an ICMP message
        (an agent solicitation)."""
        uplink = self.held.uplink
        if uplink is not None and uplink.frame(dpid, data, at):
            return
        self.mip_io.icmp_in(dpid, in_port, data)

    def _correspondent_packet(self, gateway: str, dst: str) -> None:
        """Claims 2, 5: a correspondent's packet towards a mobile node reached the core
        from a dynamic CN gateway: the HA distributes the VPN information now.  At most
        once a second per (gateway, destination): the packets keep coming until the
        tunnel is up."""
        now = time.monotonic()
        key = (gateway, dst)
        if now - self.on_demand_seen.get(key, -1e9) < 1.0 or "ha" not in self.roles:
            return
        self.on_demand_seen[key] = now
        ha = self.roles[RoleKey(HA)]     # the HA of this process (checked above)
        LOG.info("on-demand: packet from behind %s to %s", gateway, dst)
        self.spawn(self.execute(RoleKey(HA), ha.on_correspondent_packet(self.now(), dst,
                                                                        gateway)))

    def port_added(self, dpid: int, port: int) -> None:
        """A link came up at a switch port: if it is an access port, advertise there
        at once so a moved MN detects its new FA without waiting for the period.  The
        handover log notes both (the next registration on that port takes them)."""
        seen = time.monotonic()

        def advertise() -> None:
            fa = fa_of_dpid(self.roles, dpid)
            if fa is not None and port != fa.conf.fa_port:
                self.mip_io.send_advertisement(fa, port)
                if self.handovers is not None:
                    self.handovers.link_up(fa.conf.name, port, seen)
                    self.handovers.link_up(fa.conf.name, port, time.monotonic(),
                                           "advertisement_sent")
        self.loop.call_soon_threadsafe(advertise)

    def _from_fa(self, dpid: int, in_port: int) -> bool:
        fa = fa_of_dpid(self.roles, dpid)
        return fa is not None and in_port == fa.conf.fa_port

    def port_removed(self, dpid: int, port: int) -> None:
        """A switch port went away or its link went down (os-ken's thread): an MN on an
        access port has left that link (smooth handoff: its FA holds its downlink).  The
        handover log notes when, for each visitor the FA had on that port."""
        seen = time.monotonic()

        def gone() -> None:
            fa = fa_of_dpid(self.roles, dpid)
            if fa is None:
                return
            if self.handovers is not None and port != fa.conf.fa_port:
                for visitor in list(fa.visitors.values()):
                    if visitor.port == port:
                        self.handovers.link_down(visitor.nai, seen)
            actions = fa.on_port_down(self.now(), port)
            for action in actions:    # the buffer exists before the next packet-in
                if isinstance(action, HoldTraffic):
                    self.held.hold(action)
            if actions:
                self.spawn(self.execute(RoleKey(FA, fa.conf.name), actions))
        self.loop.call_soon_threadsafe(gone)

    def barrier_reply(self, dpid: int, xid: int) -> None:
        def done() -> None:
            fut = self.barriers.pop((dpid, xid), None)
            if fut is not None and not fut.done():
                fut.set_result(None)
        self.loop.call_soon_threadsafe(done)

    async def send_flows(self, dpid: int, mods: tuple[flows.Mod, ...]) -> None:
        if self.flow_sink is not None:
            self.flow_sink(dpid, mods)
            self.counters["flow_mods"] += len(mods)
            self.metrics.flow_mods_sent(self.fabric.switch_of_dpid(dpid) or hex(dpid),
                                        len(mods))
            return
        dp = self.datapaths.get(dpid)
        if dp is None:
            LOG.warning("switch %#x not connected; %d flow-mods not sent", dpid, len(mods))
            return
        await self._send_msgs(dpid, openflow.flow_mod_msgs(dp, mods))
