"""The controller's state in etcd, shared by the replicas of one home domain (issue 17).

The same interface as the SQLite ``StateStore`` (``write``, ``load``, ``count``,
``close``), so the runtime's persistence does not change, plus what replicas need:

- **Records** ``PREFIX/state/<role>/<key>``: ``{"by": replica, "data": record}`` (the
  role's ``export_state``).  A record with an absolute ``expires`` (a binding) is put on
  a lease ending ``LEASE_GRACE`` s after it (``core.ownership.lease_end``): the MIP
  lifetime is an etcd lease, the record is gone when it runs out even with no replica
  left.
- **Owners** ``PREFIX/owner/<role>/<key>``: the replica id, on the replica's session
  lease (``session_ttl`` s, kept alive every third of it).  Written with every record a
  replica writes (it accepted the registration); claimed with create-if-absent when the
  owner's session lease expired (``claim``).  Deletes follow ``core.ownership.may_delete``.
- **Watch** on ``PREFIX/``: every change another replica makes (and every lease
  expiry) goes to the listener (``start_watch``) on the watch thread.

A write is one etcd transaction (chunks of ``MAX_TXN_OPS``, etcd's default limit) after
at most one lease grant per ``LEASE_STEP`` s window.  Values hold tunnel PSKs: never
logged; etcd must be reachable only by the controllers (docs/security.md).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol
from urllib.parse import quote, unquote, urlsplit

from controller.adapters.etcd_client import (EtcdClient, EtcdError, Watch, WatchEvent,
                                             absent, op_delete, op_put)
from controller.core import ownership

LOG = logging.getLogger("mipvpn.state.etcd")

LEASE_GRACE = 5       # s a binding's record outlives its MIP lifetime in etcd
LEASE_STEP = 10       # s: records expiring in the same window share a lease
MAX_TXN_OPS = 128     # etcd's default --max-txn-ops
SESSION_TTL = 2       # s without keep-alive before a replica's records are orphans


@dataclass(frozen=True)
class EtcdUrl:
    host: str
    port: int
    prefix: str


def parse_etcd_url(url: str) -> EtcdUrl:
    """``etcd://HOST:PORT[/PREFIX]`` (default prefix ``/mipvpn``)."""
    parts = urlsplit(url)
    if parts.scheme != "etcd" or not parts.hostname or not parts.port:
        raise ValueError(f"--state {url!r}: expected etcd://HOST:PORT[/PREFIX]")
    return EtcdUrl(parts.hostname, parts.port, parts.path.rstrip("/") or "/mipvpn")


class ReplicaListener(Protocol):
    """What the runtime's replication hears from the watch thread."""

    def record_changed(self, role: str, key: str, data: dict[str, Any] | None,
                       by: str | None) -> None: ...

    def owner_changed(self, role: str, key: str, owner: str | None,
                      previous: str | None) -> None: ...


class EtcdStateStore:
    def __init__(self, client: Any, prefix: str = "/mipvpn", replica: str | None = None,
                 session_ttl: int = SESSION_TTL, clock: Callable[[], float] = time.time,
                 keepalive: bool = True) -> None:
        """``client``: an ``EtcdClient`` (or the tests' fake); ``replica``: this
        store's id in owner keys (default ``host:pid:random``)."""
        self.client = client
        self.prefix = prefix.rstrip("/")
        self.replica = replica or \
            f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.session_ttl = session_ttl
        self.clock = clock
        self._lock = threading.Lock()
        self.owners: dict[str, str] = {}          # record path -> owner replica
        self._leases: dict[int, int] = {}         # lease end (abs s) -> lease id
        self.listener: ReplicaListener | None = None
        self.revision = 0
        self._own_revisions: set[int] = set()     # our writes, skipped by the watch
        self._watch: Watch | None = None
        self._stop = threading.Event()
        self.commits = 0
        self.rows_written = 0
        # CPU seconds this store spent writing (the caller's thread) and in its watch
        # thread (parsing what others wrote): what etcd costs this process
        self.cpu_s = {"write": 0.0, "watch": 0.0}
        self.counters = {"lease_grants": 0, "deletes_skipped_not_owner": 0,
                         "claims": 0, "claims_lost": 0, "session_lost": 0,
                         "watch_events": 0, "records_unreadable": 0}
        self.session = client.grant(session_ttl)
        self._keeper: threading.Thread | None = None
        if keepalive:
            self._keeper = threading.Thread(target=self._keep_session,
                                            name="mipvpn-etcd-session", daemon=True)
            self._keeper.start()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> EtcdStateStore:
        where = parse_etcd_url(url)
        return cls(EtcdClient(where.host, where.port), where.prefix, **kwargs)

    # ------------------------------------------------------------ names

    def _state_key(self, path: str) -> str:
        return f"{self.prefix}/state/{path}"

    def _owner_key(self, path: str) -> str:
        return f"{self.prefix}/owner/{path}"

    @staticmethod
    def _path(role: str, key: str) -> str:
        return ownership.record_path(quote(role, safe=":"), quote(key, safe="@:.-_"))

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        role, _sep, key = path.partition("/")
        return unquote(role), unquote(key)

    # ------------------------------------------------------------ StateStore

    def write(self, changes: Iterable[tuple[str, str, dict[str, Any] | None]]) -> int:
        """Apply ``(role, key, record or None)`` changes in one transaction; None
        deletes (only a record this replica owns, or nobody does).  Returns the number
        of records touched."""
        t0 = time.thread_time()
        ops: list[dict[str, Any]] = []
        touched = 0
        now = self.clock()
        with self._lock:
            for role, key, data in changes:
                path = self._path(role, key)
                if data is None:
                    owner = self.owners.get(path)
                    if not ownership.may_delete(self.replica, owner):
                        self.counters["deletes_skipped_not_owner"] += 1
                        continue
                    ops.append(op_delete(self._state_key(path)))
                    if owner == self.replica:
                        ops.append(op_delete(self._owner_key(path)))
                        self.owners.pop(path, None)
                else:
                    end = ownership.lease_end(data, LEASE_GRACE, LEASE_STEP)
                    lease = self._lease(end, now) if end is not None else 0
                    value = json.dumps({"by": self.replica, "data": data},
                                       separators=(",", ":")).encode()
                    ops.append(op_put(self._state_key(path), value, lease))
                    if self.owners.get(path) != self.replica:
                        ops.append(op_put(self._owner_key(path), self.replica.encode(),
                                          self.session))
                        self.owners[path] = self.replica
                touched += 1
        for i in range(0, len(ops), MAX_TXN_OPS):
            self._own_revisions.add(self.client.txn(ops[i:i + MAX_TXN_OPS]))
            self.commits += 1
        self.rows_written += touched
        self.cpu_s["write"] += time.thread_time() - t0
        return touched

    def _lease(self, end: int, now: float) -> int:
        lease = self._leases.get(end)
        if lease is None:
            for old in [e for e in self._leases if e <= now]:
                del self._leases[old]
            lease = self._leases[end] = self.client.grant(ownership.lease_ttl(end, now))
            self.counters["lease_grants"] += 1
        return lease

    def load(self, role: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
        """role -> key -> record (every role, or only ``role``); also reads the owner
        keys (``owners``) and the revision a watch starts after."""
        kvs, rev = self.client.get_prefix(f"{self.prefix}/")
        out: dict[str, dict[str, dict[str, Any]]] = {}
        owners: dict[str, str] = {}
        state, owner = f"{self.prefix}/state/", f"{self.prefix}/owner/"
        for k, value, _lease in kvs:
            if k.startswith(owner):
                owners[k[len(owner):]] = value.decode()
            elif k.startswith(state):
                r, key = self._split(k[len(state):])
                if role is None or r == role:
                    out.setdefault(r, {})[key] = json.loads(value)["data"]
        with self._lock:
            self.owners = owners
            self.revision = rev
        return out

    def count(self) -> int:
        kvs, _rev = self.client.get_prefix(f"{self.prefix}/state/")
        return len(kvs)

    def close(self) -> None:
        """Stop watching and keeping the session; revoke it, so that the other replicas
        take this one's records over at once (not after the session TTL)."""
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        try:
            self.client.revoke(self.session)
        except EtcdError:
            pass
        closer = getattr(self.client, "close", None)
        if closer is not None:
            closer()

    # ------------------------------------------------------------ replicas

    def owner(self, role: str, key: str) -> str | None:
        return self.owners.get(self._path(role, key))

    def owned(self) -> list[tuple[str, str]]:
        with self._lock:
            return [self._split(p) for p, o in self.owners.items() if o == self.replica]

    def to_claim(self, held: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Of the ``(role, key)`` records this replica holds, those nobody owns."""
        with self._lock:
            paths = ownership.to_claim((self._path(r, k) for r, k in held), self.owners)
        return [self._split(p) for p in paths]

    def claim(self, role: str, key: str) -> bool:
        """Become the owner of a record nobody owns (create-if-absent); False when
        another replica was first."""
        path = self._path(role, key)
        okey = self._owner_key(path)
        rev = self.client.txn([op_put(okey, self.replica.encode(), self.session)],
                              compare=[absent(okey)])
        won = bool(rev)
        self.counters["claims" if won else "claims_lost"] += 1
        with self._lock:
            # lost: someone else's (the watch brings its name) - not tried again
            self.owners.setdefault(path, self.replica if won else "?")
            if won:
                self.owners[path] = self.replica
        return won

    def start_watch(self, listener: ReplicaListener) -> None:
        """Hear every change after the last ``load`` (on the watch thread)."""
        self.listener = listener
        self._watch = self.client.watch_prefix(f"{self.prefix}/", self.revision + 1,
                                               self._on_events)

    def _on_events(self, events: list[WatchEvent]) -> None:
        t0 = time.thread_time()
        try:
            self._hear(events)
        finally:
            self.cpu_s["watch"] += time.thread_time() - t0

    def _hear(self, events: list[WatchEvent]) -> None:
        state, owner = f"{self.prefix}/state/", f"{self.prefix}/owner/"
        for ev in events:
            self.counters["watch_events"] += 1
            if ev.revision in self._own_revisions:
                continue   # our own write (not parsed again)
            if ev.key.startswith(owner):
                path = ev.key[len(owner):]
                with self._lock:
                    previous = self.owners.get(path)
                    if ev.kind == "put":
                        self.owners[path] = ev.value.decode()
                    else:
                        self.owners.pop(path, None)
                    now_owner = self.owners.get(path)
                if self.listener is not None and now_owner != previous:
                    self.listener.owner_changed(*self._split(path), now_owner, previous)
            elif ev.key.startswith(state) and self.listener is not None:
                role, key = self._split(ev.key[len(state):])
                if ev.kind == "put":
                    try:
                        rec = json.loads(ev.value)
                        data, by = rec["data"], rec.get("by")
                    except (ValueError, KeyError, TypeError):
                        self.counters["records_unreadable"] += 1
                        LOG.error("etcd record %s/%s unreadable: ignored", role, key)
                        continue
                    self.listener.record_changed(role, key, data, by)
                else:
                    self.listener.record_changed(role, key, None, None)
        if events:   # revisions are heard in order: ours up to here are done
            last = events[-1].revision
            with self._lock:
                self._own_revisions = {r for r in self._own_revisions if r > last}

    def _keep_session(self) -> None:
        """Keep the session lease alive; when it was lost (etcd unreachable longer than
        its TTL), take a new one and claim this replica's records again."""
        while not self._stop.wait(self.session_ttl / 3):
            try:
                if self.client.keepalive(self.session) > 0:
                    continue
                self.counters["session_lost"] += 1
                LOG.warning("etcd session of replica %s expired: renewing, re-claiming",
                            self.replica)
                self.session = self.client.grant(self.session_ttl)
                for role, key in self.owned():
                    with self._lock:
                        self.owners.pop(self._path(role, key), None)
                    self.claim(role, key)
            except EtcdError as exc:
                LOG.warning("etcd session keep-alive: %s", exc)
