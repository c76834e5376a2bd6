"""The downlink held for a departed MN at its old access switch (smooth handoff,
claims 22-23; seamless handover, issue 14): bounded per-MN buffers fed by packet-ins,
sent to the MN at its new FA's switch once that FA's AAA accepted it there
(``DeliverHeld``), flushed into the old FA once the forwarding tunnel is up, dropped
(and counted) otherwise."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Mapping

from controller.adapters import openflow
from controller.logtext import log_text
from controller.core import flows
from controller.core.actions import DeliverHeld, HoldTraffic, ReleaseHold
from controller.runtime import settings
from controller.core.role import FA, RoleKey

if TYPE_CHECKING:
    from controller.runtime.held_uplink import HeldUplinks

LOG = logging.getLogger("mipvpn.runtime")


@dataclass
class HeldDownlink:
    """Frames punted towards a departed MN at its old access switch (``HoldTraffic``):
    (arrival, frame), oldest first."""

    foreign_agent: str
    nai: str
    frames: deque[tuple[float, bytes]] = field(
        default_factory=lambda: deque(maxlen=settings.HOLD_MAX_FRAMES))
    forwarding: bool = False    # released into the FA: frames go on at once
    # issue 14 (``DeliverHeld``): (dpid, port, from MAC) where the MN is now: frames go
    # straight to it there
    to_mn: tuple[int, int, bytes] | None = None
    counts: dict[str, int] = field(default_factory=lambda: {
        "held": 0, "forwarded": 0, "delivered": 0, "overflow": 0, "expired": 0,
        "dropped": 0})


class HeldDownlinks:
    """``datapaths``: dpid -> connected switch (shared with ``Switches``);
    ``tunnel_established(gateway, tunnel_id, timeout)``: whether a tunnel came up;
    ``send_flows(dpid, mods)``: flow-mods with a barrier."""

    def __init__(self, roles: Mapping[str, Any], counters: dict[str, int],
                 datapaths: Mapping[int, Any],
                 tunnel_established: Callable[[str, str, float], Awaitable[bool]],
                 send_flows: Callable[[int, tuple[flows.Mod, ...]], Awaitable[None]]
                 ) -> None:
        self.roles = roles
        self.counters = counters
        self.datapaths = datapaths
        self.tunnel_established = tunnel_established
        self.send_flows = send_flows
        # (access dpid, MN MAC) -> the downlink held for a departed MN (claims 22-23)
        self.holds: dict[tuple[int, str], HeldDownlink] = {}
        # issue 14: the uplink held at a new access switch (set by the root)
        self.uplink: HeldUplinks | None = None

    def hold(self, action: HoldTraffic) -> None:
        key = (action.dpid, action.mn_mac.lower())
        if key not in self.holds:
            self.holds[key] = HeldDownlink(action.foreign_agent, action.nai)

    def held_frame(self, dpid: int, data: bytes, at: float) -> None:
        """A frame punted towards a departed MN (loop thread)."""
        buf = self.holds.get((dpid, _mac_str(data[0:6])))
        if buf is None:
            self.counters["held_dropped_late"] += 1
            return
        if buf.to_mn is not None:   # the MN was accepted at a new FA: straight to it
            self._to_mn(buf, [(at, data)])
            return
        if buf.forwarding:          # the tunnel is up: straight on
            self._forward(dpid, buf, [(at, data)])
            return
        if len(buf.frames) == buf.frames.maxlen:
            buf.counts["overflow"] += 1
            self.counters["held_dropped_overflow"] += 1
        buf.frames.append((at, data))
        buf.counts["held"] += 1
        self.counters["held_frames"] += 1

    def deliver(self, action: DeliverHeld) -> None:
        """``DeliverHeld``: every hold of ``action.nai`` with its MAC at another switch
        sends what it held, and what is punted later, to the MN where it is now."""
        fa = self.roles.get(RoleKey(FA, action.foreign_agent))
        if fa is None:
            return
        mac = action.mn_mac.lower()
        target = (action.dpid, action.port,
                  bytes.fromhex(fa.conf.inside_mac.replace(":", "")))
        for (dpid, held_mac), buf in list(self.holds.items()):
            if held_mac != mac or buf.nai != action.nai or dpid == action.dpid:
                continue
            buf.to_mn = target
            frames = list(buf.frames)
            buf.frames.clear()
            self._to_mn(buf, frames)
            LOG.info("%s: downlink held for %s goes to it at %s port %d (%d frames)",
                     buf.foreign_agent, log_text(buf.nai), action.foreign_agent,
                     action.port, len(frames))

    def _to_mn(self, buf: HeldDownlink, frames: Iterable[tuple[float, bytes]]) -> None:
        """Frames held for the MN, to it at ``buf.to_mn`` (packet-out on its port, from
        the new FA's inside MAC): what the new FA would send it."""
        assert buf.to_mn is not None
        dpid, port, fa_mac = buf.to_mn
        dp = self.datapaths.get(dpid)
        now = time.monotonic()
        for at, data in frames:
            if now - at > settings.HOLD_MAX_AGE or dp is None:
                buf.counts["expired"] += 1
                self.counters["held_dropped_expired"] += 1
                continue
            dp.send_msg(openflow.packet_out(dp, data[0:6] + fa_mac + data[12:], port))
            buf.counts["delivered"] += 1
            self.counters["held_delivered"] += 1

    def _forward(self, dpid: int, buf: HeldDownlink,
                      frames: Iterable[tuple[float, bytes]]) -> None:
        """Hand frames to the old FA's IP stack: packet-out on its access port, addressed
        to its inside MAC (from the MN's), so that it routes them on."""
        fa = self.roles[RoleKey(FA, buf.foreign_agent)]
        dp = self.datapaths.get(dpid)
        now = time.monotonic()
        fa_mac = bytes.fromhex(fa.conf.inside_mac.replace(":", ""))
        for at, data in frames:
            if now - at > settings.HOLD_MAX_AGE or dp is None:
                buf.counts["expired"] += 1
                self.counters["held_dropped_expired"] += 1
                continue
            dp.send_msg(openflow.packet_out(dp, fa_mac + data[0:6] + data[12:],
                                            fa.conf.fa_port))
            buf.counts["forwarded"] += 1
            self.counters["held_forwarded"] += 1

    async def release(self, action: ReleaseHold) -> None:
        """``ReleaseHold``: once the forwarding tunnel is up, the held frames go to the
        FA (and whatever is still punted follows at once); then the punt flow goes and
        the buffer with it.  Without a tunnel (or when told) they are dropped."""
        key = (action.dpid, action.mn_mac.lower())
        buf = self.holds.get(key)
        t0 = time.monotonic()
        forward = action.forward
        if buf is not None and forward and action.tunnel_id:
            forward = await self.tunnel_established(action.foreign_agent,
                                                     action.tunnel_id, settings.HOLD_TUNNEL_WAIT)
            # the peer (the new FA, the initiator) installs its inbound SA only when
            # the responder's answer arrives: packets sent before are dropped there
            if forward and RoleKey(FA, action.peer) in self.roles:   # its gateway is ours
                left = settings.HOLD_TUNNEL_WAIT - (time.monotonic() - t0)
                if not await self.tunnel_established(action.peer, action.tunnel_id,
                                                      max(left, 0.0)):
                    LOG.warning("%s: tunnel %s not up at %s: forwarding anyway",
                                action.foreign_agent, log_text(action.tunnel_id), action.peer)
            elif forward and action.peer:
                await asyncio.sleep(settings.HOLD_PEER_GRACE)   # not ours to ask: a margin
            if not forward:
                LOG.warning("%s: tunnel %s not up in %.1f s: held downlink dropped",
                            action.foreign_agent, log_text(action.tunnel_id), settings.HOLD_TUNNEL_WAIT)
        if buf is not None and forward:
            buf.forwarding = True
            frames = list(buf.frames)
            buf.frames.clear()
            self._forward(action.dpid, buf, frames)
        if action.mods:
            await self.send_flows(action.dpid, action.mods)
        if buf is None:
            return
        if self.holds.get(key) is buf:
            del self.holds[key]
        if buf.frames:              # not forwarded: dropped
            n = len(buf.frames)
            buf.counts["dropped"] += n
            self.counters["held_dropped_released"] += n
            buf.frames.clear()
        c = buf.counts
        LOG.info("%s: downlink held for %s (%d frames): %d to the MN at its new FA, %d "
                 "forwarded%s, %d dropped (%d overflow, %d too old) %.0f ms after release",
                 action.foreign_agent, log_text(buf.nai), c["held"], c["delivered"],
                 c["forwarded"],
                 f" through {log_text(action.tunnel_id)}" if action.tunnel_id else "",
                 c["dropped"] + c["overflow"] + c["expired"], c["overflow"], c["expired"],
                 (time.monotonic() - t0) * 1000)


def _mac_str(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)
