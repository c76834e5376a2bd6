"""The uplink held at the new access switch (issue 14, seamless handover): a seamless
MN's frames still addressed to its previous FA reach the controller through the flow
that FA prepared at this switch (``flows.uplink_punt_flow``), from the first frame
after the link came up until the new FA's tunnel is up; then they go on in order into
the new FA and the redirect replaces the punt.  Bounded per MN (frames, age, time
without a release); what the core does not recognise is not held."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Coroutine, Iterable, Mapping

from controller.adapters import openflow
from controller.core import fa_prepare, flows
from controller.core.actions import HoldUplink, ReleaseUplink
from controller.core.handover import HandoverLog
from controller.core.role import FA, RoleKey
from controller.logtext import log_text
from controller.runtime import settings
from controller.runtime.lookup import foreign_agents

LOG = logging.getLogger("mipvpn.runtime")

#: outcome -> runtime counter (``mipvpn_held_uplink_frames_total{outcome}``)
COUNTERS = {"held": "uplink_held", "forwarded": "uplink_forwarded",
            "overflow": "uplink_dropped_overflow", "expired": "uplink_dropped_expired",
            "dropped": "uplink_dropped_unreleased", "refused": "uplink_refused"}


@dataclass
class HeldUplink:
    """A seamless MN's frames punted at a neighbour's access switch (``HoldUplink``):
    (arrival, frame), oldest first."""

    nai: str
    first_at: float
    to_mac: str                 # what the MN addresses them to: its previous FA
    frames: deque[tuple[float, bytes]] = field(
        default_factory=lambda: deque(maxlen=settings.HOLD_MAX_FRAMES))
    forwarding: str = ""        # released into this FA: frames go on at once
    held: int = 0
    forwarded: int = 0
    timer: asyncio.TimerHandle | None = None


class HeldUplinks:
    """``tunnel_up(gateway, tunnel_id)``: whether this runtime set the tunnel up and
    saw it established (no gateway round trip); ``tunnel_established(gateway,
    tunnel_id, timeout)``: ask the gateway (bounded); ``send_flows(dpid, mods)``:
    flow-mods with a barrier."""

    def __init__(self, roles: Mapping[str, Any], counters: dict[str, int],
                 datapaths: Mapping[int, Any],
                 tunnel_up: Callable[[str, str], bool],
                 tunnel_established: Callable[[str, str, float], Awaitable[bool]],
                 send_flows: Callable[[int, tuple[flows.Mod, ...]], Awaitable[None]],
                 spawn: Callable[[Coroutine[Any, Any, Any]], None],
                 handovers: HandoverLog | None = None) -> None:
        self.roles = roles
        self.counters = counters
        for name in COUNTERS.values():
            counters.setdefault(name, 0)
        self.datapaths = datapaths
        self.tunnel_up = tunnel_up
        self.tunnel_established = tunnel_established
        self.send_flows = send_flows
        self.spawn = spawn
        self.handovers = handovers
        # (access dpid, MN MAC) -> the uplink held there for a seamless MN
        self.holds: dict[tuple[int, str], HeldUplink] = {}

    def _count(self, outcome: str, n: int = 1) -> None:
        self.counters[COUNTERS[outcome]] += n

    def frame(self, dpid: int, data: bytes, at: float) -> bool:
        """A frame punted at an access switch from a non-FA port, not signalling (loop
        thread).  True: it is a seamless MN's uplink (held or forwarded); False: not
        one the core prepared a punt for (the caller treats it as before)."""
        if len(data) < 14:
            return False
        src, dst = _mac_str(data[6:12]), _mac_str(data[0:6])
        buf = self.holds.get((dpid, src))
        if buf is None:
            hold = self._decide(dpid, src, dst)
            if hold is None:
                return False
            buf = self._hold(hold, at)
        elif dst != buf.to_mac:     # the MN's, not to its previous FA (a solicitation)
            return False
        if buf.forwarding:          # the tunnel is up: straight on, behind the held
            self._forward(dpid, buf, [(at, data)])
            return True
        if len(buf.frames) == buf.frames.maxlen:
            self._count("overflow")
        buf.frames.append((at, data))
        buf.held += 1
        self._count("held")
        return True

    def _decide(self, dpid: int, src: str, dst: str) -> HoldUplink | None:
        """The core's answer: which FA prepared a punt here for this MAC, to itself."""
        for fa in foreign_agents(self.roles):
            for action in fa_prepare.uplink_hold(fa.conf, fa.visitors.values(), dpid,
                                                 src, dst):
                return action
        self._count("refused")
        return None

    def _hold(self, action: HoldUplink, at: float) -> HeldUplink:
        key = (action.dpid, action.mn_mac.lower())
        buf = HeldUplink(action.nai, at, action.to_mac)
        self.holds[key] = buf
        # bounded in time: no release (the MN registered elsewhere, or never) -> dropped
        buf.timer = asyncio.get_running_loop().call_later(
            settings.HOLD_TUNNEL_WAIT, self._expire, key, buf)
        return buf

    def _expire(self, key: tuple[int, str], buf: HeldUplink) -> None:
        if self.holds.get(key) is not buf or buf.forwarding:
            return
        del self.holds[key]
        self._count("dropped", len(buf.frames))
        LOG.warning("uplink held for %s at %#x: no release in %.1f s, %d frames dropped",
                    log_text(buf.nai), key[0], settings.HOLD_TUNNEL_WAIT, len(buf.frames))
        buf.frames.clear()

    def _forward(self, dpid: int, buf: HeldUplink,
                 frames: Iterable[tuple[float, bytes]]) -> None:
        """Hand frames to the new FA as its redirect would: its inside MAC as the
        destination, out of its port."""
        fa = self.roles.get(RoleKey(FA, buf.forwarding))
        dp = self.datapaths.get(dpid)
        now = time.monotonic()
        for at, data in frames:
            if fa is None or dp is None or now - at > settings.HOLD_MAX_AGE:
                self._count("expired")
                continue
            mac = bytes.fromhex(fa.conf.inside_mac.replace(":", ""))
            dp.send_msg(openflow.packet_out(dp, mac + l4_checksum_fixed(data)[6:],
                                            fa.conf.fa_port))
            buf.forwarded += 1
            self._count("forwarded")

    def release(self, action: ReleaseUplink) -> None:
        """``ReleaseUplink`` (in the new FA's walk, after its tunnels): the held frames
        go to the FA in order, then the redirect replaces the punt; frames punted
        meanwhile follow at once until the switch confirmed it (barrier).  A tunnel this
        runtime did not see up is asked for first (bounded): meanwhile frames are held."""
        key = (action.dpid, action.mn_mac.lower())
        buf = self.holds.get(key)
        if buf is None:     # nothing punted yet: stragglers still go the same way
            buf = self.holds[key] = HeldUplink(action.nai, time.monotonic(),
                                               action.from_mac)
        if buf.timer is not None:
            buf.timer.cancel()
        if all(self.tunnel_up(action.foreign_agent, t) for t in action.tunnel_ids):
            if settings.HOLD_UPLINK_GRACE > 0:
                self.spawn(self._grace_then_release(key, buf, action))
                return
            self._flush(key, buf, action)
            self.spawn(self._finish(key, buf, action))
        else:
            self.spawn(self._wait_then_release(key, buf, action))

    def _flush(self, key: tuple[int, str], buf: HeldUplink, action: ReleaseUplink) -> None:
        buf.forwarding = action.foreign_agent
        frames = list(buf.frames)
        buf.frames.clear()
        self._forward(key[0], buf, frames)
        if self.handovers is not None and buf.held:
            # the move's record (closed by the reply when the release waited the grace)
            rec = self.handovers.open.get(action.nai) or next(
                (r for r in reversed(self.handovers.records) if r.nai == action.nai), None)
            if rec is not None:
                rec.marks.setdefault("uplink_held_first", buf.first_at)
                rec.marks.setdefault("uplink_released", time.monotonic())

    async def _grace_then_release(self, key: tuple[int, str], buf: HeldUplink,
                                  action: ReleaseUplink) -> None:
        """The tunnel is up at its initiator, but the first packets cross it only some
        ms later (``HOLD_UPLINK_GRACE``): held until then, not lost."""
        await asyncio.sleep(settings.HOLD_UPLINK_GRACE)
        self._flush(key, buf, action)
        await self._finish(key, buf, action)

    async def _wait_then_release(self, key: tuple[int, str], buf: HeldUplink,
                                 action: ReleaseUplink) -> None:
        deadline = time.monotonic() + settings.HOLD_TUNNEL_WAIT
        up = True
        for tunnel_id in action.tunnel_ids:
            left = max(deadline - time.monotonic(), 0.0)
            up = up and await self.tunnel_established(action.foreign_agent, tunnel_id, left)
        if up:
            self._flush(key, buf, action)
        else:
            LOG.warning("%s: tunnel not up in %.1f s: uplink held for %s dropped",
                        action.foreign_agent, settings.HOLD_TUNNEL_WAIT, log_text(action.nai))
        await self._finish(key, buf, action)

    async def _finish(self, key: tuple[int, str], buf: HeldUplink,
                      action: ReleaseUplink) -> None:
        if action.mods:
            await self.send_flows(action.dpid, action.mods)
        if self.holds.get(key) is buf:
            del self.holds[key]
        if buf.frames:              # not forwarded: dropped
            self._count("dropped", len(buf.frames))
            buf.frames.clear()
        if buf.held:
            LOG.info("%s: uplink held for %s: %d frames, %d forwarded (with those "
                     "punted during the release)", action.foreign_agent,
                     log_text(action.nai), buf.held, buf.forwarded)


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def l4_checksum_fixed(frame: bytes) -> bytes:
    """``frame`` with its UDP / TCP / ICMP checksum computed.  A frame the MN's own
    stack sent reaches the controller as its interface handed it over: with checksum
    offload, the L4 checksum is only partial (the NIC, here the switch's egress, would
    finish it); forwarded as such, the correspondent drops it (measured: every held
    frame lost).  Not IPv4, fragments, truncated: unchanged."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return frame
    ihl = (frame[14] & 0x0F) * 4
    total = int.from_bytes(frame[16:18], "big")
    proto = frame[23]
    if ihl < 20 or len(frame) < 14 + total or total < ihl or \
            int.from_bytes(frame[20:22], "big") & 0x3FFF:   # MF or an offset: a fragment
        return frame
    l4 = bytearray(frame[14 + ihl:14 + total])
    where = {17: 6, 6: 16, 1: 2}.get(proto)
    if where is None or len(l4) < where + 2:
        return frame
    l4[where:where + 2] = b"\0\0"
    pseudo = (frame[26:34] + bytes([0, proto]) + len(l4).to_bytes(2, "big")
              if proto != 1 else b"")
    csum = 0xFFFF - _sum16(pseudo + bytes(l4))
    if proto == 17 and csum == 0:
        csum = 0xFFFF
    l4[where:where + 2] = csum.to_bytes(2, "big")
    return frame[:14 + ihl] + bytes(l4) + frame[14 + total:]


def _mac_str(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)
