"""The tunnel a seamless MN left, kept standing for the HA's preparation of that very
tunnel (issue 14, docs/decisions.md 2026-12-08), and a standing tunnel's new key.

After a move the HA prepares the tunnel to the FA the MN left (a neighbour of the new
one) under the id of the live tunnel the move retires.  Removing it and standing a new
CHILD_SA up made that SA the newest of the reqid it shares at the HA with the MN's live
tunnel: kernel-libipsec sent the MN's downlink on it until the live one was re-asserted.
Here the roles' removals keep the live CHILD_SA standing instead (``stand_live`` at both
ends).  A part of ``Gateways`` (``gateways.py``), which holds the drivers, workers and
tunnel marks it uses and decides, when a preparation is asked, that it waits for those
removals (``_keep``)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from controller.core.actions import PrepareTunnel, RemoveTunnel
from controller.core.vpn import QosSpec, TunnelSide, TunnelSpec
from controller.logtext import log_text
from controller.runtime import settings
from controller.runtime.workers import InOrder

LOG = logging.getLogger("mipvpn.runtime")

#: s between two looks at whether the HA's end of the tunnel the MN left is outranked
OUTRANK_POLL = 0.005


class KeepStanding:
    """Keeping the tunnel an MN left standing, for ``Gateways``."""

    drivers: dict[str, Any]
    workers: dict[str, Any]
    in_order: InOrder
    tunnel_log: dict[tuple[str, str], dict[str, Any]]
    _live: dict[tuple[str, str], TunnelSide]
    _prepared: set[tuple[str, str]]
    _added: dict[tuple[str, str], float]
    _stood: dict[str, object]
    _stood_spec: dict[str, TunnelSpec]
    _keep: dict[str, PrepareTunnel]
    _retired: set[tuple[str, str]]
    _keeping: dict[str, asyncio.Future[None]]

    if TYPE_CHECKING:
        async def remove_tunnel(self, action: RemoveTunnel) -> None: ...

        async def _prepare(self, action: PrepareTunnel, delay: float | None = None,
                           wait: float | None = None) -> None: ...

        async def _refresh_standing(self, action: PrepareTunnel, token: object,
                                    after: float | None = None) -> None: ...

        async def _qos(self, gateway: str, op: str, arg: Any) -> None: ...

        async def _on_worker(self, gateway: str, what: str, fn: Any, arg: Any) -> None: ...

        def _background(self, coro: Any) -> None: ...

    async def retire_tunnel(self, action: RemoveTunnel) -> None:
        """A role's removal (the executor's ``RemoveTunnel``): ``remove_tunnel``, unless
        a standing preparation waits for this very tunnel (``prepare_tunnel``): then
        the first removal keeps its live CHILD_SA standing at both ends
        (``_stand_live``) and the other end's removes nothing."""
        key = (action.gateway, action.tunnel_id)
        if key in self._retired:
            self._retired.discard(key)
            return
        keep = self._keep.pop(action.tunnel_id, None)
        if keep is not None and self._live_as(keep.spec):
            await self._stand_live(keep, action.gateway)
            return
        await self.remove_tunnel(action)
        if keep is not None:    # changed meanwhile: stood up anew once both ends went
            self._background(self._prepare(keep, delay=0))

    async def _stand_live(self, action: PrepareTunnel, first: str) -> None:
        """Keep the live tunnel of ``action`` standing at both ends (responder first,
        as a preparation), from the removal at ``first``.  If an end cannot
        (``_keep_ends``), both ends go and it is stood up anew; if a move set it again
        meanwhile, it is the roles' again.  Stood up anew before charon's own rekey of
        it (``_refresh_standing``).  A dropped preparation waits for this to end."""
        spec, tid = action.spec, action.spec.tunnel_id
        ends = sorted(spec.ends(), key=lambda g: g == spec.initiator)
        self._retired |= {(g, tid) for g in ends if g != first}
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._keeping[tid] = done
        try:
            rekeys_in = await self._keep_ends(spec, ends, time.monotonic())
        finally:
            if self._keeping.get(tid) is done:
                del self._keeping[tid]
            done.set_result(None)
        if rekeys_in is None:       # a move set it again: the roles' (their removal
            self._retired -= {(g, tid) for g in ends}   # of it will be a real one)
            return
        if not rekeys_in:
            LOG.info("tunnel %s not kept standing: removed, stood up anew", log_text(tid))
            for g in ends:
                await self.remove_tunnel(RemoveTunnel(g, tid))
            self._background(self._prepare(action, delay=0))
            return
        self._stood_spec[tid] = spec
        token = self._stood[tid] = object()
        refresh = min(settings.STANDING_REFRESH, min(rekeys_in) - settings.STANDING_MARGIN)
        self._background(self._refresh_standing(action, token, refresh))
        LOG.info("tunnel %s kept standing at %s (its live CHILD_SA; refreshed in %.0f s)",
                 log_text(tid), ", ".join(ends), refresh)

    async def _keep_ends(self, spec: TunnelSpec, ends: list[str],
                         t0: float) -> list[float] | None:
        """``stand_live`` at each end in its turn: the seconds until charon's rekey at
        each; [] as soon as an end cannot: its CHILD_SA gone or changed, a gateway
        error, charon's rekey due within ``STANDING_MARGIN`` + ``STANDING_MIN``, or, at
        the responder (the HA), its SA still the newest of its selectors after
        ``OUTRANK_WAIT`` (the new FA's promotion did not take the downlink: then the
        removal is what moves it).  None: an add of the tunnel came meanwhile."""
        tid = spec.tunnel_id
        rekeys_in: list[float] = []
        for g in ends:
            side = spec.side_for(g)
            if not side.initiator and not await self._outranked(g, side):
                return []
            async with self.in_order.turn((g, tid)):
                if any(self._added.get((e, tid), -1.0) >= t0 for e in ends):
                    return None
                try:
                    left = await self.workers[g].run(self.drivers[g].stand_live, side)
                except Exception as exc:  # noqa: BLE001 - VICI, OS: this end cannot
                    LOG.warning("keeping tunnel %s standing at %s failed: %s",
                                log_text(tid), g, log_text(exc))
                    left = None
                if any(self._added.get((e, tid), -1.0) >= t0 for e in ends):
                    return None     # (its add promotes what the driver marked standing)
                if left is None or left < settings.STANDING_MARGIN + settings.STANDING_MIN:
                    return []
                self._live.pop((g, tid), None)
                self.tunnel_log.pop((g, tid), None)
                self._prepared.add((g, tid))
            await self._qos(g, "remove", tid)    # never applied to a standing tunnel
            rekeys_in.append(left)
        return rekeys_in

    async def _outranked(self, gateway: str, side: TunnelSide) -> bool:
        """Whether ``side``'s SA at ``gateway`` is, or within ``OUTRANK_WAIT`` becomes,
        older than another installed with its selectors (the new FA's promotion rekey
        runs in the background).  Asked off the gateway's worker, which that rekey
        needs."""
        gw = self.drivers[gateway]
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + settings.OUTRANK_WAIT
        while True:
            try:
                if await loop.run_in_executor(None, gw.outranked, side):
                    return True
            except Exception as exc:  # noqa: BLE001 - VICI, OS: not known, not kept
                LOG.warning("tunnel %s at %s: %s", log_text(side.tunnel_id), gateway,
                            log_text(exc))
                return False
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(OUTRANK_POLL)

    def _live_as(self, spec: TunnelSpec) -> bool:
        """``spec``'s tunnel is live at both ends, both driven here, as a preparation
        of ``spec`` would stand it: the key, QoS (not applied to a standing tunnel)
        and the HA's secondary flag aside."""
        for g in spec.ends():
            live = self._live.get((g, spec.tunnel_id))
            if live is None or _bare(live) != _bare(spec.side_for(g)):
                return False
        return True

    def _stands_as(self, spec: TunnelSpec) -> bool:
        """``spec``'s tunnel stands at both ends (a preparation, or kept), as ``spec``
        wants it but for the key (and QoS)."""
        stood = self._stood_spec.get(spec.tunnel_id)
        return (stood is not None and spec.tunnel_id in self._stood
                and all((g, spec.tunnel_id) in self._prepared for g in spec.ends())
                and replace(stood, psk=b"", qos=QosSpec()) == replace(spec, psk=b"",
                                                                       qos=QosSpec()))

    async def _new_key(self, action: PrepareTunnel) -> None:
        """A standing tunnel's new key, loaded at both ends (for any later IKE_SA: the
        one that stands was authenticated by the gateways that still end it)."""
        spec = action.spec
        self._stood_spec[spec.tunnel_id] = spec
        for g in spec.ends():
            async with self.in_order.turn((g, spec.tunnel_id)):
                await self._on_worker(g, "loading a standing tunnel's key",
                                      self.drivers[g].load_key, spec.side_for(g))


async def nothing() -> None:
    """A preparation with nothing to do now (``Gateways.prepare_tunnel``)."""


def _bare(side: TunnelSide) -> TunnelSide:
    """A side without what a standing tunnel does not depend on (``_live_as``)."""
    return replace(side, psk=b"", qos=QosSpec(), secondary=False)
