"""Watching each gateway's charon and reconciling its tunnels against what the roles
want (issue 5): health (``/v1/gateways``, metrics), the supervisor that notices a
charon lost or hung, and the reconcile that makes a charon back from an outage hold
exactly the wanted tunnels.  A part of ``Gateways`` (``gateways.py``), which holds the
drivers, workers and tunnel marks it uses."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import replace
from typing import Any

from controller.core.actions import AddTunnel, RemoveTunnel
from controller.core.dispatch import Dispatch
from controller.core.vpn import TunnelSide, TunnelSpec
from controller.logtext import log_text
from controller.runtime import settings
from controller.runtime.marks import stamp

LOG = logging.getLogger("mipvpn.runtime")


class GatewaySupervision:
    """Health, supervision and reconcile of the gateways ``Gateways`` drives: its
    attributes below, its tunnel calls (``add_tunnel``, ``remove_tunnel``, ``_qos``)."""

    drivers: dict[str, Any]
    dispatch: Dispatch
    static_tunnels: list[TunnelSpec]
    workers: dict[str, Any]
    health: dict[str, dict[str, Any]]
    tunnel_log: dict[tuple[str, str], dict[str, Any]]
    _gw_poke: dict[str, asyncio.Event]
    _touched: dict[tuple[str, str], float]
    _initiated: dict[str, float]
    _owned: set[str]

    async def ready(self, name: str) -> bool:
        gw = self.drivers[name]
        if not gw.dialable():
            return False
        try:
            # bounded: a hung charon (alive, socket open, not answering) is degraded too;
            # the bound is above the longest legitimate call queued before it (an
            # initiate: settings.TUNNEL_TRIES x its 5 s timeout)
            await asyncio.wait_for(self.workers[name].run(self.drivers[name].version),
                                   settings.HEALTH_TIMEOUT)
        except Exception:  # not up yet, gone, or hung
            return False
        return True

    def owned_gateways(self) -> set[str]:
        """Gateways whose tunnels this process's roles decide."""
        return self.dispatch.owned_gateways(self.static_tunnels) & set(self.drivers)

    def tunnels_wanted(self, gateway: str) -> dict[str, TunnelSpec]:
        """Tunnel id -> spec of every tunnel ``gateway`` should hold now, from the
        roles' state (what a restart restored) and the stationary tunnels."""
        return self.dispatch.tunnels_wanted(gateway, self.static_tunnels)

    def _wanted_side(self, gateway: str, spec: TunnelSpec) -> Any:
        """``gateway``'s side of ``spec`` as its role set it: a smooth-handoff
        forwarding tunnel at the new FA is a secondary side (docs/strongswan.md)."""
        side = spec.side_for(gateway)
        if spec.tunnel_id in self.dispatch.secondary_tunnels(gateway):
            side = replace(side, secondary=True)
        return side

    def _health_of(self, name: str) -> dict[str, Any]:
        return self.health.setdefault(name, {
            "state": "connecting", "since": time.time(), "error": "", "outages": 0,
            "reconciles": 0, "last_reconcile": None, "last_outage_s": None})

    def _set_health(self, name: str, state: str, error: str = "") -> None:
        h = self._health_of(name)
        if h["state"] != state:
            now = time.time()
            if state == "up" and h["state"] == "degraded":
                h["last_outage_s"] = round(now - h["since"], 3)
            if state == "degraded":
                h["outages"] += 1
            h["state"], h["since"] = state, now
        h["error"] = error

    def poke_gateway(self, name: str) -> None:
        """Something failed at ``name``: check its charon now, not at the next period."""
        ev = self._gw_poke.get(name)
        if ev is not None:
            ev.set()

    async def supervise(self, name: str) -> None:
        """One per gateway we drive: wait until its charon answers, reconcile its
        tunnels, then check it every ``settings.HEALTH_INTERVAL``; when it stops answering mark
        it ``degraded`` (REST /v1/gateways, /metrics) and keep trying; when it answers
        again, reconcile (every tunnel it should hold is set again)."""
        self._health_of(name)
        poke = self._gw_poke[name] = asyncio.Event()
        gw = self.drivers[name]
        while True:
            while not await self.ready(name):
                if self._health_of(name)["state"] == "up":
                    self._set_health(name, "degraded", "charon does not answer (VICI)")
                    LOG.error("gateway %s: charon unreachable; tunnels there are down "
                              "until it is back", name)
                await asyncio.sleep(settings.DEGRADED_POLL)
            if gw.warms_up:
                try:
                    await self.workers[name].run(gw.warm_up)
                except Exception as exc:  # noqa: BLE001 - retried lazily at the first tunnel
                    LOG.warning("gateway %s: warm-up failed: %s", name, log_text(exc))
            try:
                await self.reconcile(name)
            except Exception as exc:  # noqa: BLE001 - charon went away meanwhile: retry
                LOG.warning("gateway %s: reconcile failed: %s", name, log_text(exc))
                self._set_health(name, "degraded", f"reconcile failed: {exc}")
                await asyncio.sleep(settings.DEGRADED_POLL)
                continue
            # watch: a VICI connection charon closes when it dies (immediate), and
            # a version call every settings.HEALTH_INTERVAL (a hung charon, a lost socket)
            stop = threading.Event()
            watch: asyncio.Future[Any] | None = None
            if gw.watches_process:
                watch = asyncio.ensure_future(asyncio.get_running_loop().run_in_executor(
                    self.watchers, gw.wait_closed, stop))
            why = "charon does not answer (VICI)"
            try:
                while True:
                    poke.clear()
                    waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(poke.wait())}
                    if watch is not None:
                        waiters.add(watch)
                    try:
                        done, _ = await asyncio.wait(waiters, timeout=settings.HEALTH_INTERVAL,
                                                     return_when=asyncio.FIRST_COMPLETED)
                    finally:   # also when this task is cancelled (Runtime.stop)
                        for w in waiters:
                            if w is not watch:
                                w.cancel()
                    if watch is not None and watch in done:
                        if watch.exception() is not None or watch.result():
                            why = "charon closed its VICI connection (process gone)"
                            break
                        watch = None
                    if not await self.ready(name):
                        break
            finally:
                stop.set()
                if watch is not None:
                    watch.cancel()
            self._set_health(name, "degraded", why)
            LOG.error("gateway %s: %s; its tunnels are down until it is back", name, log_text(why))

    async def reconcile(self, name: str) -> dict[str, int]:
        """Make ``name``'s charon hold exactly the tunnels our roles want there:
        remove the stale ones, load what is missing, leave alone what is loaded and
        matches (no re-key); then have the initiator of every tunnel without an
        established SA here (re)initiate it, once the other end is reconciled too."""
        gw = self.drivers[name]
        run = self.workers[name]
        t0 = time.monotonic()
        loaded: dict[str, dict[str, Any]] = await run.run(gw.loaded_connections)
        sas = {s.tunnel_id: s for s in await run.run(gw.tunnels)}
        wanted = self.tunnels_wanted(name)
        stats = {"kept": 0, "added": 0, "removed": 0, "initiated": 0}
        def touched(tid: str) -> bool:   # set or removed by a registration meanwhile
            return self._touched.get((name, tid), -1.0) >= t0

        for tid in sorted((set(loaded) | set(sas)) - set(wanted)):
            if not touched(tid):
                await self.remove_tunnel(RemoveTunnel(name, tid))
                stats["removed"] += 1
        up_here: set[str] = set()
        for tid, spec in wanted.items():
            if touched(tid):
                up_here.add(tid)
                continue
            side = self._wanted_side(name, spec)
            sa = sas.get(tid)
            established = bool(sa is not None and getattr(sa, "established", False))
            if tid in loaded and _conn_matches(loaded[tid], side) and (
                    established or not side.initiator):
                await self._adopt_tunnel(name, side, established)
                stats["kept"] += 1
                if established:
                    up_here.add(tid)
                continue
            # load this end (an initiator initiates below, once its peer is loaded)
            await self.add_tunnel(AddTunnel(name, side), load_only=True)
            stats["added"] += 1
        self._set_health(name, "up")
        now_wanted = self.tunnels_wanted(name)   # as it is now, not at t0 (once: it
        for tid, then in wanted.items():           # walks every role's tunnels)
            spec = now_wanted.get(tid)
            if spec != then or tid in up_here:
                continue      # removed or re-keyed by a registration meanwhile
            peer = next(g for g in spec.ends() if g != name)
            if spec.initiator not in self._owned:
                continue      # the process that drives the initiator initiates
            if peer in self._owned and self._health_of(peer)["state"] != "up":
                continue      # the peer's own reconcile initiates when it is loaded
            if self._initiated.get(tid, -1.0) >= t0:
                continue      # the other end's reconcile just did
            stamp(self._initiated, tid, time.monotonic())
            await self.add_tunnel(AddTunnel(
                spec.initiator, self._wanted_side(spec.initiator, spec)))
            stats["initiated"] += 1
        h = self._health_of(name)
        h["reconciles"] += 1
        h["last_reconcile"] = {**stats, "ms": round((time.monotonic() - t0) * 1000, 1),
                               "at": time.time()}
        LOG.info("gateway %s reconciled in %.0f ms: %d kept, %d added, %d removed, "
                 "%d initiated", name, (time.monotonic() - t0) * 1000, stats["kept"],
                 stats["added"], stats["removed"], stats["initiated"])
        return stats

    async def _adopt_tunnel(self, name: str, side: TunnelSide, established: bool) -> None:
        """A tunnel charon already holds as we want it: record it (REST, metrics),
        take over its selector anchors and QoS; nothing is sent to the peer."""
        self.tunnel_log[(name, side.tunnel_id)] = {
            "gateway": name, "tunnel_id": side.tunnel_id, "local": side.local.address,
            "remote": side.remote.address, "remote_gateway": side.remote.gateway,
            "local_ts": list(side.local.selectors), "remote_ts": list(side.remote.selectors),
            "initiator": side.initiator,
            "state": "up" if side.initiator and established else "configured",
            "adopted": True}
        gw = self.drivers[name]
        try:
            await self.workers[name].run(gw.adopt, side)
        except Exception as exc:  # noqa: BLE001 - anchors are best effort here
            LOG.warning("gateway %s: adopting %s: %s", name, log_text(side.tunnel_id), log_text(exc))
        await self._qos(name, "apply", side)


def _conn_matches(conn: dict[str, Any], side: TunnelSide) -> bool:
    """A loaded connection (``StrongSwanGateway.loaded_connections``) is the one
    ``side`` describes: same peer, same traffic selectors.  (Its PSK cannot be read
    back from charon: a tunnel re-keyed under the same id is re-added by the
    registration that re-keyed it.)"""
    if not conn:
        return True   # a driver that cannot tell: trust the name
    return (list(conn.get("remote_addrs", [])) == [side.remote.address]
            and sorted(conn.get("local_ts", [])) == sorted(side.local.selectors)
            and sorted(conn.get("remote_ts", [])) == sorted(side.remote.selectors))
