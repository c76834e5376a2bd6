"""etcd for tests and benchmarks (issue 17).

- ``FakeEtcd``: the part of ``EtcdClient`` the shared state store uses, in memory, on a
  clock the test moves (``advance``): leases expire, their keys go, watchers hear it,
  synchronously (on the caller's thread).
- ``EtcdProcess``: a real ``etcd`` (Debian's ``etcd-server``) on free loopback ports in
  a temporary data directory, started and stopped by its PID.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

from controller.adapters.etcd_client import WatchEvent, prefix_end


class _FakeWatch:
    def __init__(self, fake: FakeEtcd, prefix: str,
                 on_events: Callable[[list[WatchEvent]], None]) -> None:
        self.fake, self.prefix, self.on_events = fake, prefix, on_events

    def stop(self) -> None:
        if self in self.fake.watches:
            self.fake.watches.remove(self)


class FakeEtcd:
    def __init__(self) -> None:
        self.now = 0.0
        self.kv: dict[str, tuple[bytes, int, int]] = {}   # key -> (value, lease, created)
        self.leases: dict[int, float] = {}                 # id -> expiry
        self.ttls: dict[int, int] = {}
        self.revision = 1
        self.watches: list[_FakeWatch] = []
        self._next_lease = 100
        self.requests = 0
        self.down = False     # True: every call fails as an unreachable etcd would
        self._queue: list[list[WatchEvent]] = []
        self._delivering = False

    def _call(self) -> None:
        from controller.adapters.etcd_client import EtcdError
        if self.down:
            raise EtcdError("fake etcd: down")
        self.requests += 1

    def _emit(self, events: list[WatchEvent]) -> None:
        """Deliver in revision order, as etcd does: a change a watcher makes while it
        hears one is delivered after the one being heard, not inside it."""
        self._queue.append(events)
        if self._delivering:
            return
        self._delivering = True
        try:
            while self._queue:
                batch = self._queue.pop(0)
                for w in list(self.watches):
                    mine = [e for e in batch if e.key.startswith(w.prefix)]
                    if mine:
                        w.on_events(mine)
        finally:
            self._delivering = False

    def get_prefix(self, prefix: str) -> tuple[list[tuple[str, bytes, int]], int]:
        self._call()
        end = prefix_end(prefix)
        return ([(k, v, lease) for k, (v, lease, _c) in sorted(self.kv.items())
                 if prefix <= k < end], self.revision)

    def txn(self, ops: list[dict[str, Any]],
            compare: list[dict[str, Any]] | None = None) -> int:
        import base64
        self._call()
        for c in compare or []:
            key = base64.b64decode(c["key"]).decode()
            if c["target"] == "CREATE" and c["create_revision"] == "0" and key in self.kv:
                return 0
        self.revision += 1
        events = []
        for op in ops:
            if "request_put" in op:
                p = op["request_put"]
                key = base64.b64decode(p["key"]).decode()
                value = base64.b64decode(p["value"])
                lease = int(p.get("lease", 0))
                if lease and lease not in self.leases:
                    from controller.adapters.etcd_client import EtcdError
                    self.revision -= 1
                    raise EtcdError("etcdserver: requested lease not found")
                created = self.kv[key][2] if key in self.kv else self.revision
                self.kv[key] = (value, lease, created)
                events.append(WatchEvent("put", key, value, self.revision))
            else:
                key = base64.b64decode(op["request_delete_range"]["key"]).decode()
                if self.kv.pop(key, None) is not None:
                    events.append(WatchEvent("delete", key, b"", self.revision))
        rev = self.revision
        self._emit(events)
        return rev

    def grant(self, ttl: int) -> int:
        self._call()
        self._next_lease += 1
        self.leases[self._next_lease] = self.now + ttl
        self.ttls[self._next_lease] = ttl
        return self._next_lease

    def keepalive(self, lease: int) -> int:
        self._call()
        if lease not in self.leases:
            return 0
        self.leases[lease] = self.now + self.ttls[lease]
        return self.ttls[lease]

    def revoke(self, lease: int) -> None:
        self._call()
        self._expire([lease])

    def advance(self, seconds: float) -> None:
        """Move the clock; expire the leases whose time is up (their keys deleted)."""
        self.now += seconds
        self._expire([lease for lease, t in self.leases.items() if t <= self.now])

    def _expire(self, leases: list[int]) -> None:
        gone = set(leases)
        for lease in gone:
            self.leases.pop(lease, None)
        keys = [k for k, (_v, lease, _c) in self.kv.items() if lease in gone]
        if not keys:
            return
        self.revision += 1
        for k in keys:
            del self.kv[k]
        self._emit([WatchEvent("delete", k, b"", self.revision) for k in keys])

    def watch_prefix(self, prefix: str, start_revision: int,
                     on_events: Callable[[list[WatchEvent]], None]) -> _FakeWatch:
        w = _FakeWatch(self, prefix, on_events)
        self.watches.append(w)
        return w


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EtcdProcess:
    """``etcd`` on loopback (client and peer ports free now), data in a temporary
    directory; ``url`` is what ``--state`` takes.  Stopped by its PID."""

    def __init__(self, binary: str = "etcd") -> None:
        path = shutil.which(binary)
        if path is None:
            raise FileNotFoundError("etcd not installed (Debian package etcd-server)")
        self.dir = Path(tempfile.mkdtemp(prefix="mipvpn-etcd-"))
        self.port, peer = _free_port(), _free_port()
        client = f"http://127.0.0.1:{self.port}"
        self.log = open(self.dir / "etcd.log", "wb")
        self.proc = subprocess.Popen(
            [path, "--name", "mipvpn-test", "--data-dir", str(self.dir / "data"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"mipvpn-test=http://127.0.0.1:{peer}",
             "--log-level", "warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self.url = f"etcd://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{client}/health", timeout=1) as r:
                    if b'"true"' in r.read():
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"etcd did not become healthy: {self.tail()}")

    def tail(self) -> str:
        try:
            return (self.dir / "etcd.log").read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> EtcdProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
