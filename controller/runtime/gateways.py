"""Gateways: the tunnel drivers of every gateway, each called on its own worker thread
(VICI is blocking): tunnel add/remove with QoS, preparation and promotion (issue 14),
warm-up.  The supervisor that watches a charon and reconciles its tunnels against what
the roles want, and health, are in ``gateway_watch.py``."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import Any, Callable, Coroutine, Mapping

from controller.adapters.gateway import GatewayDriver
from controller.logtext import log_text
from controller.adapters.qos import GatewayQos
from controller.adapters.strongswan import TunnelError
from controller.core.dispatch import Dispatch
from controller.core.actions import AddTunnel, PrepareTunnel, RemoveTunnel
from controller.core.handover import HandoverLog
from controller.core.vpn import QosSpec, TunnelSide, TunnelSpec, owner_of, tunnel_name
from controller.runtime import settings
from controller.runtime.marks import prune, stamp
from controller.runtime.gateway_keep import KeepStanding, nothing
from controller.runtime.gateway_watch import GatewaySupervision
from controller.runtime.workers import DriverWorker, InOrder

LOG = logging.getLogger("mipvpn.runtime")

#: s between two looks at a promotion's rekey (``Gateways._rekey_at``)
REKEY_POLL = 0.003


class Gateways(GatewaySupervision, KeepStanding):
    """``drivers``: gateway name -> its tunnel driver; ``qos``: gateway name -> its
    ``GatewayQos`` (real gateways only); ``roles``: the running roles (what they want
    decides a reconcile)."""

    def __init__(self, drivers: dict[str, GatewayDriver], qos: dict[str, GatewayQos],
                 roles: Mapping[str, Any]) -> None:
        self.drivers = drivers
        self.qos = qos
        self.roles = roles
        self.dispatch = Dispatch(roles)
        self.workers = {name: DriverWorker(f"vici-{name}") for name in drivers}
        # issue 14: removals off a move's path, on the driver's second VICI session
        # (``removes_aside``), in order with the calls for the same tunnel
        self.aside = {name: DriverWorker(f"vici-{name}-aside") for name in drivers}
        self.in_order = InOrder()
        self._shaped: set[tuple[str, str]] = set()   # (gateway, tunnel): QoS asked there
        # one thread per gateway blocks on a VICI connection charon closes when it
        # dies (issue 5: charon loss seen at once, not at the next health check)
        self.watchers = ThreadPoolExecutor(max(1, len(drivers)),
                                           thread_name_prefix="vici-watch")
        self.tunnel_log: dict[tuple[str, str], dict[str, Any]] = {}
        self.static_tunnels: list[TunnelSpec] = []
        self.health: dict[str, dict[str, Any]] = {}
        self._initiated: dict[str, float] = {}
        self._gw_poke: dict[str, asyncio.Event] = {}
        self._touched: dict[tuple[str, str], float] = {}   # (gateway, tunnel) -> set at
        self._owned: set[str] = set()
        # (gateway, tunnel) stood up ahead by prepare_tunnel: its add keeps the IKE_SA
        self._prepared: set[tuple[str, str]] = set()
        self._added: dict[tuple[str, str], float] = {}   # (gateway, tunnel) -> added at
        self._live: dict[tuple[str, str], TunnelSide] = {}   # what add_tunnel set there
        self._stood: dict[str, object] = {}   # tunnel -> its standing CHILD_SA's refresh
        self._stood_spec: dict[str, TunnelSpec] = {}   # tunnel -> what stands there
        # issue 14: a standing preparation of a tunnel live at both ends as it would
        # stand (the tunnel a seamless MN left): the roles' removal keeps it standing
        self._keep: dict[str, PrepareTunnel] = {}
        # ends the runtime retired ahead of their role's removal (kept standing, or
        # removed with the other end): that removal does nothing more
        self._retired: set[tuple[str, str]] = set()
        self._keeping: dict[str, asyncio.Future[None]] = {}   # a keep in progress
        self._refreshes: set[asyncio.Task[None]] = set()
        #: (gateway, tunnel id, when): a promotion's rekey completed there (the root
        #: puts it in the move's record: ``ha_rekey_done``)
        self.on_rekeyed: Callable[[str, str, float], None] | None = None

    def own(self) -> set[str]:
        """Fix the gateways this process drives (at start, once the stationary tunnels
        are known)."""
        self._owned = self.owned_gateways()
        return self._owned

    def close(self) -> None:
        self.watchers.shutdown(wait=False)   # its threads end within 0.5 s
        for gw in self.drivers.values():
            gw.close()
        for qos in self.qos.values():  # QoS (claims 8, 9)
            qos.close()

    async def add_tunnel(self, action: AddTunnel, load_only: bool = False) -> bool:
        """``load_only`` (reconcile): load this end without touching an SA charon may
        hold for it, and without initiating.  True: this end initiated the tunnel and
        charon reported its CHILD_SA established (issue 14: ``on_tunnel_up``).  In
        order with this tunnel's removals, also those that run aside."""
        async with self.in_order.turn((action.gateway, action.side.tunnel_id)):
            return await self._add_tunnel(action, load_only)

    async def _add_tunnel(self, action: AddTunnel, load_only: bool) -> bool:
        gw = self.drivers[action.gateway]
        key = (action.gateway, action.side.tunnel_id)
        # the roles want it live (again): no removal of it is to keep it standing
        self._keep.pop(action.side.tunnel_id, None)
        self._retired.discard(key)
        stamp(self._touched, key, time.monotonic())
        stamp(self._added, key, self._touched[key])
        add = gw.add_tunnel
        if not load_only and self._live_at_both_ends(action.gateway, action.side):
            # a move back within the old FA's retire (the core cancelled it): the
            # IKE_SA of this very tunnel still stands between the same two gateways;
            # both adds keep it, the driver replaces the CHILD_SA (issue 14)
            peer = action.side.remote.gateway
            self._prepared |= {key, (peer, action.side.tunnel_id)}
        if load_only:   # a reconcile: the other end's IKE_SA may be stale
            for k in [k for k in self._live if k[1] == action.side.tunnel_id]:
                del self._live[k]
        else:
            self._live[key] = action.side
        if key in self._prepared:
            self._prepared.discard(key)
            # issue 14: a CHILD_SA standing ahead is promoted (rekeyed: it takes the
            # downlink); else CREATE_CHILD_SA on the standing IKE_SA
            add = gw.promote_tunnel
        if load_only:
            action = AddTunnel(action.gateway, replace(action.side, initiator=False))
            add = gw.load_tunnel
        entry = {"gateway": action.gateway, "tunnel_id": action.side.tunnel_id,
                 "local": action.side.local.address, "remote": action.side.remote.address,
                 "remote_gateway": action.side.remote.gateway,
                 "local_ts": list(action.side.local.selectors),
                 "remote_ts": list(action.side.remote.selectors),
                 "initiator": action.side.initiator, "state": "setting"}
        self.tunnel_log[key] = entry
        await self._qos(action.gateway, "apply", action.side)  # QoS (claims 8, 9)
        took = None
        error: Exception | None = None
        peer = (action.side.remote.gateway, action.side.tunnel_id)
        for attempt in range(settings.TUNNEL_TRIES if action.side.initiator else 1):
            try:
                took = await self.workers[action.gateway].run(
                    partial(add, key=False) if add == gw.promote_tunnel else add, action.side)
                if action.side.initiator and peer in self._live and (
                        add == gw.promote_tunnel
                        or self.tunnel_log.get(peer, {}).get("on_prepared_ike_sa")):
                    # the HA rekeys it (its new outbound SA at once, as a rekey's
                    # initiator), in the background: this end's SA carries already.
                    # Also when this end's preparation had failed and its add was an
                    # ordinary one: the HA's end was promoted and must not stay
                    # "standing" over the MN's live CHILD_SA
                    self._background(self._rekey_at(peer[0], self._live[peer]))
                break
            except (TunnelError, OSError) as exc:
                error = exc
                LOG.warning("tunnel %s at %s: attempt %d failed: %s", log_text(action.side.tunnel_id),
                            action.gateway, attempt + 1, log_text(exc))
                await asyncio.sleep(0.1)
        if took is None:
            exc = error
            self._live.pop(key, None)
            self.poke_gateway(action.gateway)   # charon gone? (issue 5)
            entry["state"] = "failed"
            entry["error"] = str(exc)
            LOG.error("tunnel %s at %s failed: %s", log_text(action.side.tunnel_id), action.gateway,
                      log_text(exc))
            return False
        entry["state"] = "up" if action.side.initiator else "configured"
        entry["setup_ms"] = round(took * 1000, 3)
        on_prepared = add == gw.promote_tunnel
        if on_prepared:
            entry["on_prepared_ike_sa"] = True   # issue 14: CREATE_CHILD_SA only
            # its key authenticates no CREATE_CHILD_SA: loaded after the move, not in it
            self._background(self._on_worker(action.gateway, "loading the move's key",
                                             gw.load_key, action.side))
        LOG.info("tunnel %s at %s %s in %.1f ms%s", log_text(action.side.tunnel_id),
                 action.gateway, entry["state"], took * 1000,
                 " on its prepared IKE_SA" if on_prepared else "")
        return entry["state"] == "up"

    def _live_at_both_ends(self, gateway: str, side: TunnelSide) -> bool:
        """``side``'s tunnel is up as ``side`` describes it at ``gateway`` and at its
        peer, both driven here (neither end removed since: a removal terminates the
        IKE_SA at both), with the same selectors, addresses and security (the PSK
        aside: docs/security.md)."""
        peer = side.remote.gateway
        if peer not in self.drivers:
            return False
        here = self._live.get((gateway, side.tunnel_id))
        there = self._live.get((peer, side.tunnel_id))
        if here is None or there is None or here.initiator != side.initiator:
            return False
        return (replace(here, psk=b"") == replace(side, psk=b"")
                and there.remote == side.local and there.local == side.remote)

    async def remove_tunnel(self, action: RemoveTunnel) -> None:
        """Off the move's path (``action.off_path``) and where the driver has a second
        VICI session: on that session's own worker (issue 14: the MN's promotion at
        this gateway does not queue behind it), in order with this tunnel's other
        calls."""
        gw = self.drivers[action.gateway]
        key = (action.gateway, action.tunnel_id)
        self._keep.pop(action.tunnel_id, None)
        async with self.in_order.turn(key):
            stamp(self._touched, key, time.monotonic())
            # the IKE_SA goes at both ends (terminated here, connection unloaded): a
            # preparation at the other end is dead too; its next add must not expect it
            self._prepared = {k for k in self._prepared if k[1] != action.tunnel_id}
            self._stood.pop(action.tunnel_id, None)
            self._stood_spec.pop(action.tunnel_id, None)
            for k in [k for k in self._live if k[1] == action.tunnel_id]:
                del self._live[k]
            self.tunnel_log.pop(key, None)
            aside = action.off_path and gw.removes_aside
            try:
                await (self.aside[action.gateway].run(gw.remove_aside, action.tunnel_id)
                       if aside else
                       self.workers[action.gateway].run(gw.remove_tunnel, action.tunnel_id))
            except (TunnelError, OSError) as exc:
                LOG.error("removing tunnel %s at %s failed: %s", log_text(action.tunnel_id),
                          action.gateway, log_text(exc))
            await self._qos(action.gateway, "remove", action.tunnel_id)  # QoS
        LOG.info("tunnel %s at %s removed%s", log_text(action.tunnel_id), action.gateway,
                 " (aside)" if aside else "")

    def prepare_tunnel(self, action: PrepareTunnel, delay: float | None = None,
                       wait: float | None = None) -> Coroutine[Any, Any, None]:
        """Issue 14: what a preparation does, decided when it is asked (before any
        removal the same walk asks): a standing preparation of a tunnel live at both
        ends as it would stand (the tunnel the MN left) waits for the roles' removals,
        which keep it standing (``retire_tunnel``); one of a tunnel standing already
        that differs only by its key (a full registration's new ``prepared_psk``)
        loads the key at both ends; anything else, ``_prepare``."""
        tid = action.spec.tunnel_id
        self._keep.pop(tid, None)
        if action.child and not action.remove:
            if self._live_as(action.spec):
                self._keep[tid] = action
                return nothing()
            if self._stands_as(action.spec):
                return self._new_key(action)
        return self._prepare(action, delay, wait)

    async def _prepare(self, action: PrepareTunnel, delay: float | None = None,
                       wait: float | None = None) -> None:
        """Issue 14: stand ``action.spec`` up ahead (responder end loaded first, then the
        initiator's IKE_SA), or take a prepared one down (``remove``), after ``delay``
        (``settings.PREPARE_AFTER``: the move's own tunnel work goes first).  Only when
        this process drives both ends; a tunnel set or removed meanwhile is left alone.
        Best effort: a failure leaves the move to bring the tunnel up from nothing."""
        spec = action.spec
        ends = sorted(spec.ends(), key=lambda g: g == spec.initiator)   # responder first
        if any(g not in self.drivers for g in ends):
            return
        t0 = time.monotonic()
        await asyncio.sleep(settings.PREPARE_AFTER if delay is None else delay)
        # an end still live under this id (the old FA's, kept a while by smooth
        # handoff) would take the preparation with it when it goes: wait for that
        until = time.monotonic() + (settings.PREPARE_WAIT if wait is None else wait)
        while True:
            if any(self._added.get((g, spec.tunnel_id), -1.0) >= t0 for g in ends):
                return   # a registration set it meanwhile: it decides
            if action.remove or not any((g, spec.tunnel_id) in self.tunnel_log
                                        for g in ends):
                break
            if time.monotonic() >= until:
                return   # still live: the move back sets it up from nothing
            await asyncio.sleep(settings.PREPARE_POLL)
        # (a removal meanwhile is the move's teardown of the old FA's live tunnel: the
        # reason to wait; preparing it afterwards is what is wanted)
        if action.remove:
            keeping = self._keeping.get(spec.tunnel_id)
            if keeping is not None:      # a keep in progress: its ends stand after it
                await asyncio.shield(keeping)
            for g in [g for g in ends if (g, spec.tunnel_id) in self._prepared]:
                await self.remove_tunnel(RemoveTunnel(g, spec.tunnel_id))
            return
        for g in ends:
            side = spec.side_for(g)
            await self.in_order.after((g, spec.tunnel_id))
            self._prepared.add((g, spec.tunnel_id))
            try:
                took = await self.workers[g].run(partial(
                    self.drivers[g].prepare_tunnel, side, **(
                        {"child": True} if action.child else {})))
            except (TunnelError, OSError) as exc:
                self._prepared.discard((g, spec.tunnel_id))
                LOG.warning("preparing tunnel %s at %s failed: %s", log_text(spec.tunnel_id), g,
                            log_text(exc))
                return
            LOG.info("tunnel %s at %s prepared in %.1f ms", log_text(spec.tunnel_id), g,
                     took * 1000)
        if action.child:   # stood up anew before charon's own rekey could promote it
            self._stood_spec[spec.tunnel_id] = spec
            token = self._stood[spec.tunnel_id] = object()
            self._background(self._refresh_standing(action, token))

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def _rekey_at(self, gateway: str, side: TunnelSide,
                        timeout: float = 2.0) -> None:
        """The promotion's switch at ``gateway`` (the HA): a rekey of the standing
        CHILD_SA there, whose new SA becomes the newest of the reqid: the downlink.
        Issued on the gateway's worker, awaited off it (its CREATE_CHILD_SA round
        crosses the core, 20-60 ms at a move: issue 14, h14g), so what the move
        queued there meanwhile (the old FA's tunnel removal) is not held behind it.
        Its completion goes to ``on_rekeyed`` (the move's ``ha_rekey_done``)."""
        gw, tid = self.drivers[gateway], side.tunnel_id
        loop = asyncio.get_running_loop()
        try:
            def issue() -> bool | None:     # one worker call, as for any promotion:
                gw.promote_tunnel(side, timeout=timeout, rekey=True, wait=False)
                return gw.rekeyed(tid)       # None at once where nothing stood (a renewal)
            done = await self.workers[gateway].run(issue)
            deadline = time.monotonic() + timeout
            while not done:
                if done is None:
                    return      # nothing stood there to rekey: no switch to report
                if time.monotonic() >= deadline:
                    raise TunnelError(f"{gateway}: {tid}: not promoted in {timeout} s")
                await asyncio.sleep(REKEY_POLL)
                done = await loop.run_in_executor(None, gw.rekeyed, tid)
        except (TunnelError, OSError) as exc:
            LOG.warning("promoting tunnel %s at %s failed: %s", log_text(tid),
                        gateway, log_text(exc))
            return
        if self.on_rekeyed is not None:
            self.on_rekeyed(gateway, tid, time.monotonic())

    async def _refresh_standing(self, action: PrepareTunnel, token: object,
                                after: float | None = None) -> None:
        """After ``after`` (``STANDING_REFRESH``): a CHILD_SA still standing as this
        preparation left it (no move, removal or newer preparation since) is taken
        down and stood up again at both ends (one downlink blip of the live path, as
        at a preparation), with the key it stands with now."""
        await asyncio.sleep(settings.STANDING_REFRESH if after is None else after)
        tid, ends = action.spec.tunnel_id, action.spec.ends()
        action = replace(action, spec=self._stood_spec.get(tid, action.spec))
        started = time.monotonic()

        def used() -> bool:
            """A move set it meanwhile (between two of this refresh's steps), or the
            roles want it live (a move another home replica handled)."""
            return (any(self._added.get((g, tid), -1.0) >= started for g in ends)
                    or any(tid in self.tunnels_wanted(g) for g in ends))

        if self._stood.get(tid) is not token or not all(
                (g, tid) in self._prepared for g in ends) or used():
            return
        for g in sorted(ends, key=lambda g: g != action.spec.initiator):
            if used():
                return
            await self.remove_tunnel(RemoveTunnel(g, tid))
        if not used():
            await self.prepare_tunnel(action, delay=0)

    async def _qos(self, gateway: str, op: str, arg: Any) -> None:
        """QoS (claims 8, 9): ``GatewayQos.apply(side)`` / ``.remove(tunnel_id)`` on the
        gateway's worker, in order with its tunnel calls; a failure is logged, never
        fatal (the tunnel still comes up, unshaped).  Nothing to set or clear (no QoS
        in the side, none asked here before for the tunnel): no hop to the worker
        (issue 14: one thread hand-off less in a move's tunnel step)."""
        qos = self.qos.get(gateway)
        if qos is None:
            return
        if op == "apply":
            key, wanted = (gateway, arg.tunnel_id), arg.qos != QosSpec()
        else:
            key, wanted = (gateway, arg), False
        if not wanted and key not in self._shaped:
            return
        if wanted:
            self._shaped.add(key)
        else:
            self._shaped.discard(key)
        await self._on_worker(gateway, f"QoS {op}", getattr(qos, op), arg)

    async def _on_worker(self, gateway: str, what: str, fn: Callable[[Any], Any],
                         arg: Any) -> None:
        """``fn(arg)`` on the gateway's worker; a failure is logged, never fatal."""
        try:
            await self.workers[gateway].run(fn, arg)
        except Exception as exc:  # noqa: BLE001 - netlink, VICI errors of any kind
            LOG.error("%s at %s failed: %s", what, gateway, log_text(exc))

    async def warm_up(self, name: str) -> None:
        """Connect to a gateway's charon as soon as it answers (see ``warm_up``)."""
        gw = self.drivers[name]
        if not gw.warms_up:
            return
        while not await self.ready(name):
            await asyncio.sleep(0.1)
        try:
            await self.workers[name].run(gw.warm_up)
        except Exception as exc:  # reported, retried lazily at the first tunnel
            LOG.warning("gateway %s: warm-up failed: %s", name, log_text(exc))

    async def tunnels_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, gw in self.drivers.items():
            try:
                states = await self.workers[name].run(gw.tunnels)
                out[name] = [s.to_json() if hasattr(s, "to_json") else _state_json(s)
                             for s in states]
            except Exception as exc:  # charon down: reported, not fatal
                out[name] = {"error": str(exc)}
        return out

    async def tunnel_established(self, gateway: str, tunnel_id: str,
                                  timeout: float) -> bool:
        """Poll the gateway until ``tunnel_id`` has an installed CHILD_SA (bounded)."""
        gw = self.drivers.get(gateway)
        if gw is None or not gw.reports_tunnel_state:
            return True             # a driver that cannot tell (tests): assume up
        look = gw.tunnel
        deadline = time.monotonic() + timeout
        while True:
            try:
                state = await asyncio.get_running_loop().run_in_executor(None, look, tunnel_id)
            except (TunnelError, OSError):
                state = None
            if state is not None and state.established:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(settings.HOLD_POLL)

    def prune_reconcile_marks(self, now: float, keep: float = 300.0) -> None:
        """``_touched`` / ``_initiated`` only matter to a reconcile running now: drop
        marks older than ``keep`` seconds (no growth with every tunnel ever set).
        Kept oldest first (``marks.stamp``): a tick costs what it drops, not the
        number of tunnels."""
        for marks in (self._touched, self._initiated, self._added):
            if len(marks) > 1024:
                prune(marks, now, keep)


def mark_rekeyed(handovers: HandoverLog, gateway: str, tunnel_id: str, t: float) -> None:
    """``Gateways.on_rekeyed``: the HA's promotion rekey of ``tunnel_id`` completed at
    ``t`` (the downlink is on the new FA's SA by then): ``ha_rekey_done`` in the
    latest record of a move onto that tunnel (open or closed at the reply)."""
    for rec in reversed(handovers.records):
        if tunnel_id in (tunnel_name(owner_of(rec.nai), gateway, rec.foreign_agent),
                         tunnel_name(owner_of(rec.nai), rec.foreign_agent, gateway)):
            if rec.marks.get("rrq_at_fa", t) <= t:
                rec.marks.setdefault("ha_rekey_done", t)
            return


def _state_json(state: Any) -> dict[str, Any]:
    return {"tunnel_id": getattr(state, "tunnel_id", getattr(state, "name", "")),
            "state": getattr(state, "state", ""),
            "established": getattr(state, "established", False),
            "bytes_in": getattr(state, "bytes_in", 0), "bytes_out": getattr(state, "bytes_out", 0),
            "packets_in": getattr(state, "packets_in", 0),
            "packets_out": getattr(state, "packets_out", 0)}
