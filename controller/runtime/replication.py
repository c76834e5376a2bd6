"""Replicas of the home domain (issue 17): what a controller process does with the
changes other replicas make in the shared state store (etcd).

- ``open_state(where)``: ``etcd://HOST:PORT[/PREFIX]`` -> the shared
  ``EtcdStateStore``; anything else is a SQLite file (the embedded default).
- A record another replica wrote (a binding, a cached VPN information, a session)
  is taken into the local role (``restore_state``; a delete: ``forget_state``) without
  being noted as a local change: the tunnels and flows this replica wants (computed
  from the roles' state: ``tunnels_wanted``) follow it.  Charon is driven by the
  record's owner, which already set what its registration needed.
- When a record's owner goes (its session lease expired: the replica died), the records
  this replica holds that nobody owns are claimed (``core.ownership``); each takeover is
  kept in ``takeovers`` (when, which record, from whom) and counted, and the gateways
  this process drives are reconciled with the roles' state (``recompute``, debounced:
  one reconcile for a burst of takeovers) - what the dead owner had not set yet is set.

The store calls in on its watch thread; everything that touches role state is posted to
the runtime's event loop (``post``), where the roles live.  Nothing here logs a record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Coroutine

from controller.adapters.etcd_client import EtcdError
from controller.adapters.etcd_state import EtcdStateStore
from controller.adapters.state import StateStore
from controller.core import persist
from controller.logtext import log_text

LOG = logging.getLogger("mipvpn.replication")


def debounced(spawn: Callable[[Coroutine[Any, Any, Any]], None],
              work: Callable[[], Awaitable[None]], delay: float) -> Callable[[], None]:
    """A callable (on the event loop) that runs ``work`` once, ``delay`` s after the
    first of a burst of calls."""
    pending = [False]

    async def run() -> None:
        await asyncio.sleep(delay)
        pending[0] = False
        await work()

    def call() -> None:
        if not pending[0]:
            pending[0] = True
            spawn(run())
    return call


def is_shared(where: str | Path | None) -> bool:
    return str(where or "").startswith("etcd://")


def open_state(where: str | Path) -> StateStore | EtcdStateStore:
    """The state store at ``where``: an etcd URL or a SQLite file."""
    if is_shared(where):
        return EtcdStateStore.from_url(str(where))
    return StateStore(where)


class Replication:
    def __init__(self, store: EtcdStateStore, roles: dict[str, Any],
                 counters: dict[str, int], post: Callable[[Callable[[], Any]], Any],
                 recompute: Callable[[], None],
                 clock: Callable[[], float] = time.time) -> None:
        """``post``: run a callable on the roles' event loop; ``recompute``: reconcile
        the gateways this process drives with the roles' state (after a takeover)."""
        self.store = store
        self.roles = roles
        self.counters = counters
        self.post = post
        self.recompute = recompute
        self.clock = clock
        self.takeovers: list[dict[str, Any]] = []
        # (role, key) -> (its last owner, when its owner key went): for the records
        self._orphaned: dict[tuple[str, str], tuple[str | None, float]] = {}
        for name in ("replica_records_applied", "replica_records_dropped",
                     "replica_takeovers"):
            counters.setdefault(name, 0)

    @property
    def replica(self) -> str:
        return self.store.replica

    def start(self) -> None:
        """Claim what nobody owns (a replica died while this one was down), then
        follow the other replicas' changes."""
        self.post(self.claim_orphans)
        self.store.start_watch(self)

    def summary(self) -> dict[str, Any]:
        """This replica, what it owns, its takeovers (REST, benchmarks)."""
        owned: dict[str, int] = {}
        for role_key, _key in self.store.owned():
            owned[role_key] = owned.get(role_key, 0) + 1
        return {"replica": self.replica, "owned": owned,
                "takeovers": list(self.takeovers[-100:]),
                "etcd_requests": getattr(self.store.client, "requests", None),
                "store_cpu_s": {k: round(v, 4) for k, v in self.store.cpu_s.items()},
                "counters": {**self.store.counters,
                             **{k: v for k, v in self.counters.items()
                                if k.startswith("replica_")}}}

    # ------------------------------------------------------------ from the watch thread

    def record_changed(self, role: str, key: str, data: dict[str, Any] | None,
                       by: str | None) -> None:
        if by == self.replica:
            return   # our own write coming back
        self.post(lambda: self._apply(role, key, data))

    def owner_changed(self, role: str, key: str, owner: str | None,
                      previous: str | None) -> None:
        if owner is None:
            self._orphaned[(role, key)] = (previous, self.clock())
            self.post(self.claim_orphans)

    # ------------------------------------------------------------ on the roles' loop

    def _apply(self, role_key: str, key: str, data: dict[str, Any] | None) -> None:
        role = self.roles.get(role_key)
        if role is None or not persist.persistable(role_key, role):
            return   # a role this process does not run
        was_on = role.changes.on
        role.changes.on = False    # not a change of ours: not written back
        try:
            if data is None:
                role.forget_state(key)
                self.counters["replica_records_dropped"] += 1
            else:
                role.restore_state(key, data)
                self.counters["replica_records_applied"] += 1
        except Exception as exc:  # noqa: BLE001 - a bad record must not stop the loop
            LOG.error("replica record %s/%s unreadable (%s): ignored", role_key,
                      log_text(key), type(exc).__name__)
            return
        finally:
            role.changes.on = was_on

    def held(self) -> list[tuple[str, str]]:
        """Every (role, key) record this process's persisted roles hold now."""
        return [(rk, k) for rk, role in self.roles.items()
                if persist.persistable(rk, role) for k in persist.state_keys(rk, role)]

    def claim_orphans(self) -> list[tuple[str, str]]:
        """Claim the records held here that no replica owns; returns those won."""
        won = []
        for role_key, key in self.store.to_claim(self.held()):
            previous, orphaned_at = self._orphaned.pop((role_key, key), (None, None))
            try:
                claimed = self.store.claim(role_key, key)
            except EtcdError as exc:   # our own session lost too: its keeper re-claims
                LOG.warning("replica %s: claiming records failed: %s", self.replica, exc)
                break
            if claimed:
                won.append((role_key, key))
                self.counters["replica_takeovers"] += 1
                self.takeovers.append({"at": self.clock(), "role": role_key, "key": key,
                                       "from": previous, "orphaned_at": orphaned_at})
        if won:
            del self.takeovers[:-1000]
            LOG.info("replica %s took over %d record(s) nobody owned", self.replica,
                     len(won))
            self.recompute()
        return won
