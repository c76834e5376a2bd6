"""A small etcd v3 client over etcd's JSON gateway (``/v3/...`` over HTTP/1.1), with
the standard library's ``http.client`` (issue 17; why not a PyPI client:
docs/decisions.md 2026-12-04).

Only what the shared state store needs: ranges over a prefix, a transaction of puts
and deletes (optionally guarded by "this key does not exist"), leases (grant, keep
alive, revoke) and a watch on a prefix, which runs on its own thread and its own
connection.  Keys and values are bytes on the wire (base64 in the JSON); here keys are
``str`` and values ``bytes``.  Works with etcd 3.4 (Debian's ``etcd-server``) and later.

Nothing here logs a value: the state records hold tunnel PSKs.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable

LOG = logging.getLogger("mipvpn.etcd")


class EtcdError(Exception):
    """etcd did not answer, or answered with an error."""


@dataclass(frozen=True)
class WatchEvent:
    kind: str          # "put" or "delete"
    key: str
    value: bytes       # b"" for a delete
    revision: int


def _b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def prefix_end(prefix: str) -> str:
    """The ``range_end`` that makes a range over every key starting with ``prefix``."""
    raw = bytearray(prefix.encode())
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return "\0"
    raw[-1] += 1
    return raw.decode("latin-1")


def op_put(key: str, value: bytes, lease: int = 0) -> dict[str, Any]:
    put: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
    if lease:
        put["lease"] = str(lease)
    return {"request_put": put}


def op_delete(key: str) -> dict[str, Any]:
    return {"request_delete_range": {"key": _b64(key)}}


def absent(key: str) -> dict[str, Any]:
    """A transaction guard: ``key`` does not exist (its create revision is 0)."""
    return {"key": _b64(key), "target": "CREATE", "create_revision": "0"}


class Watch:
    """A running watch (``EtcdClient.watch_prefix``): ``stop()`` ends it."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None

    def stop(self) -> None:
        self.stopped.set()
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)   # wakes the blocked read
            except OSError:
                pass
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(2.0)


class EtcdClient:
    """One keep-alive HTTP connection to an etcd member (``host:port``, its client
    URL), shared by the calling threads under a lock; reopened after an error."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self.requests = 0

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body, separators=(",", ":"))
        with self._lock:
            for attempt in (1, 2):   # a kept-alive connection the server closed: once more
                if self._conn is None:
                    self._conn = http.client.HTTPConnection(self.host, self.port,
                                                            timeout=self.timeout)
                try:
                    self._conn.request("POST", path, data,
                                       {"Content-Type": "application/json"})
                    resp = self._conn.getresponse()
                    raw = resp.read()
                except (OSError, http.client.HTTPException) as exc:
                    self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise EtcdError(f"etcd {self.host}:{self.port}{path}: "
                                        f"{type(exc).__name__}: {exc}") from None
                    continue
                self.requests += 1
                break
        try:
            out: dict[str, Any] = json.loads(raw) if raw else {}
        except ValueError:
            raise EtcdError(f"etcd {path}: HTTP {resp.status}, not JSON") from None
        if resp.status != 200:
            raise EtcdError(f"etcd {path}: HTTP {resp.status}: "
                            f"{out.get('error') or out.get('message') or ''}")
        return out

    # ---------------------------------------------------------------- kv

    def get_prefix(self, prefix: str) -> tuple[list[tuple[str, bytes, int]], int]:
        """Every (key, value, lease) under ``prefix``, and the store's revision."""
        out = self._post("/v3/kv/range", {"key": _b64(prefix),
                                          "range_end": _b64(prefix_end(prefix))})
        kvs = [(_unb64(kv["key"]).decode(), _unb64(kv.get("value")),
                int(kv.get("lease", 0))) for kv in out.get("kvs", [])]
        return kvs, int(out["header"]["revision"])

    def txn(self, ops: list[dict[str, Any]],
            compare: list[dict[str, Any]] | None = None) -> int:
        """Apply ``ops`` (``op_put``/``op_delete``) atomically; with ``compare``, only
        if every guard holds.  The store's revision after it (its changes carry it as
        their ``mod_revision``) when applied, else 0."""
        out = self._post("/v3/kv/txn", {"compare": compare or [], "success": ops,
                                        "failure": []})
        return int(out["header"]["revision"]) if out.get("succeeded") else 0

    def put(self, key: str, value: bytes, lease: int = 0) -> None:
        self.txn([op_put(key, value, lease)])

    def delete(self, key: str) -> None:
        self.txn([op_delete(key)])

    # ---------------------------------------------------------------- leases

    def grant(self, ttl: int) -> int:
        out = self._post("/v3/lease/grant", {"TTL": str(int(ttl))})
        if out.get("error"):
            raise EtcdError(f"lease grant: {out['error']}")
        return int(out["ID"])

    def keepalive(self, lease: int) -> int:
        """Refresh ``lease``; its remaining TTL in seconds (0: it expired, gone)."""
        out = self._post("/v3/lease/keepalive", {"ID": str(lease)})
        return int(out.get("result", {}).get("TTL", 0))

    def revoke(self, lease: int) -> None:
        self._post("/v3/lease/revoke", {"ID": str(lease)})

    # ---------------------------------------------------------------- watch

    def watch_prefix(self, prefix: str, start_revision: int,
                     on_events: Callable[[list[WatchEvent]], None]) -> Watch:
        """Call ``on_events`` (on a new thread) with the changes under ``prefix`` from
        ``start_revision`` on, until the returned ``Watch`` is stopped.  A broken
        stream is reopened from the revision after the last one seen (nothing is missed
        while etcd keeps that revision)."""
        watch = Watch()

        def run() -> None:
            nxt = start_revision
            while not watch.stopped.is_set():
                conn = http.client.HTTPConnection(self.host, self.port,
                                                  timeout=self.timeout)
                try:
                    conn.connect()
                    assert conn.sock is not None
                    conn.sock.settimeout(None)   # events come when they come
                    watch.sock = conn.sock
                    conn.request("POST", "/v3/watch", json.dumps({"create_request": {
                        "key": _b64(prefix), "range_end": _b64(prefix_end(prefix)),
                        "start_revision": str(nxt)}}))
                    resp = conn.getresponse()
                    while not watch.stopped.is_set():
                        line = resp.readline()
                        if not line:
                            break
                        events = self._events(json.loads(line).get("result", {}))
                        if events:
                            nxt = events[-1].revision + 1
                            on_events(events)
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    if not watch.stopped.is_set():
                        LOG.warning("etcd watch on %s: %s; reopening", prefix,
                                    type(exc).__name__)
                finally:
                    watch.sock = None
                    conn.close()
                watch.stopped.wait(0.2)
        watch.thread = threading.Thread(target=run, name="mipvpn-etcd-watch", daemon=True)
        watch.thread.start()
        return watch

    @staticmethod
    def _events(result: dict[str, Any]) -> list[WatchEvent]:
        out = []
        for ev in result.get("events", []):
            kv = ev.get("kv", {})
            out.append(WatchEvent("delete" if ev.get("type") == "DELETE" else "put",
                                  _unb64(kv.get("key")).decode(), _unb64(kv.get("value")),
                                  int(kv.get("mod_revision", 0))))
        return out

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
