"""Restart persistence (issue 5): the keys each role changed (its ``changes`` log),
flushed in one transaction before anyone hears of the decision; every role's records
read back at start.  Each role says what it saves and restores (``core.role.Role``).

Group commit (issue 15): the executor awaits ``commit()``, which flushes once at the
next turn of the event loop for every caller that asked in the meantime, so the
registrations in flight at one moment share one transaction instead of one each."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from controller.adapters.etcd_state import EtcdStateStore
from controller.adapters.state import StateStore
from controller.core import persist
from controller.core.records import tunnel_from_dict, tunnel_to_dict
from controller.core.aaa_home import HomeAaa
from controller.core.vpn import TunnelSpec
from controller.runtime import settings

LOG = logging.getLogger("mipvpn.runtime")


class Persistence:
    """Flush and restore of the roles' state in ``state`` (None: not persisted; the
    roles then note no changes)."""

    def __init__(self, state: StateStore | EtcdStateStore | None, roles: dict[str, Any],
                 counters: dict[str, int],
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.state = state
        #: the runtime's loop, given: ``get_running_loop`` makes a getpid system call
        #: in CPython 3.11, and ``commit`` runs once per registration (issue 15)
        self.loop = loop
        self.roles = roles
        self.counters = counters
        # role key -> its changes log (the persisted roles; set up by ``restore``)
        self.logs: dict[str, persist.Changes] = {}
        self.retry: dict[str, set[str]] = {}   # keys whose write failed: retried
        self.restored_static: list[TunnelSpec] = []
        self._batch: asyncio.Future[None] | None = None   # the commit callers await

    @property
    def dirty(self) -> bool:
        """Some role changed a key not written yet."""
        if self.retry:
            return True
        for log in self.logs.values():   # a loop, not any(): asked before every visible action
            if log.keys:
                return True
        return False

    def mark_dirty(self, role_key: str, key: str) -> None:
        self.retry.setdefault(role_key, set()).add(key)

    async def commit(self) -> None:
        """``flush`` once for every caller of this turn of the event loop: returns when
        the records changed before the call are written (or their write failed: logged,
        counted and retried with the next change, as ``flush``)."""
        if self._batch is None:
            loop = self.loop or asyncio.get_running_loop()
            self._batch = loop.create_future()
            loop.call_soon(self._commit_batch)
        await asyncio.shield(self._batch)   # a cancelled caller leaves it to the others

    def _commit_batch(self) -> None:
        batch, self._batch = self._batch, None
        try:
            self.flush()
        finally:
            if batch is not None and not batch.done():
                batch.set_result(None)

    def flush(self) -> None:
        """Write the records of every key changed since the last flush, in one
        transaction (``StateStore.write``).  A failed write is logged and counted; the
        controller keeps serving (the records are retried with the next change)."""
        dirty, self.retry = self.retry, {}
        for role_key, log in self.logs.items():
            if log.keys:
                dirty.setdefault(role_key, set()).update(log.take())
        if self.state is None:
            return
        changes = []
        for role_key, keys in dirty.items():
            role = self.roles.get(role_key)
            if role is None:
                continue
            for k in keys:
                try:
                    changes.append((role_key, k, role.export_state(k)))
                except Exception as exc:  # noqa: BLE001 - never stops the controller
                    self.counters["state_write_errors"] = self.counters.get(
                        "state_write_errors", 0) + 1
                    LOG.error("state store: %s/%s not exportable: %s", role_key, k,
                              type(exc).__name__)
        try:
            self.state.write(changes)
        except Exception as exc:  # noqa: BLE001 - sqlite3 errors, disk full, ...
            self.counters["state_write_errors"] = self.counters.get(
                "state_write_errors", 0) + 1
            LOG.error("state store: writing %d records failed: %s", len(changes),
                      type(exc).__name__)
            for role_key, keys in dirty.items():   # retried with the next change
                self.retry.setdefault(role_key, set()).update(keys)

    def restore(self) -> dict[str, int]:
        """Read every role's records back (bindings, cached VPN information, visitors,
        CN-GW bindings), then track changes.  Returns role key -> records restored."""
        restored: dict[str, int] = {}
        records = self.state.load() if self.state is not None else {}
        for role_key, recs in records.items():
            role = self.roles.get(role_key)
            if role is None or not persist.persistable(role_key, role):
                continue
            for k, data in recs.items():
                try:
                    role.restore_state(k, data)
                except Exception as exc:  # noqa: BLE001 - a bad record must not stop start-up
                    # the record's content is not logged: it may hold keys
                    LOG.error("state record %s/%s unreadable (%s): dropped", role_key, k,
                              type(exc).__name__)
                    continue
                restored[role_key] = restored.get(role_key, 0) + 1
        self.restored_static = [tunnel_from_dict(d) for _k, d in
                                sorted(records.get(settings.STATIC_STATE, {}).items())]
        for role_key, role in self.roles.items():   # from now on, note what changes
            if persist.persistable(role_key, role):
                role.changes.take()
                role.changes.on = self.state is not None
                if self.state is not None:
                    self.logs[role_key] = role.changes
        if restored:
            LOG.info("restored from the state store: %s", ", ".join(
                f"{k} {n}" for k, n in sorted(restored.items())))
        return restored

    def load_static_specs(self, aaah: HomeAaa) -> list[TunnelSpec]:
        """The stationary HA<->CN-GW tunnels (claim 16 step 1): the stored ones (same
        keys as before a restart: charon still holds them), else new ones, stored."""
        fresh = aaah.static_tunnels()
        stored = {t.tunnel_id: t for t in self.restored_static}
        specs = [stored.get(t.tunnel_id, t) for t in fresh]
        if self.state is not None:
            new = [t for t in specs if t.tunnel_id not in stored]
            gone = [tid for tid in stored if tid not in {t.tunnel_id for t in specs}]
            self.state.write([(settings.STATIC_STATE, t.tunnel_id, tunnel_to_dict(t))
                              for t in new] + [(settings.STATIC_STATE, tid, None)
                                               for tid in gone])
        return specs

    def close(self) -> None:
        if self.state is not None:
            self.state.close()
