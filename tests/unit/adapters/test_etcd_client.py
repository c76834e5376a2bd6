"""Issue 17: the etcd client and the shared state store against a real etcd (Debian's
``etcd-server``, started here on loopback ports in a temporary directory and stopped
by its PID; skipped where it is not installed)."""

from __future__ import annotations

import shutil
import threading
import time
from typing import Any, Iterator

import pytest

from controller.adapters.etcd_client import EtcdClient, absent, op_put
from controller.adapters.etcd_state import EtcdStateStore
from controller.testing.etcd import EtcdProcess

pytestmark = pytest.mark.skipif(shutil.which("etcd") is None,
                                reason="etcd not installed (Debian package etcd-server)")


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdProcess]:
    with EtcdProcess() as proc:
        yield proc


def _until(check: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_kv_txn_lease_and_watch(etcd: EtcdProcess) -> None:
    c = EtcdClient("127.0.0.1", etcd.port)
    seen: list[Any] = []
    got = threading.Event()

    def on_events(events: list[Any]) -> None:
        seen.extend(events)
        got.set()
    _kvs, rev = c.get_prefix("/kv/")
    watch = c.watch_prefix("/kv/", rev + 1, on_events)
    try:
        c.put("/kv/a", b"1")
        assert c.txn([op_put("/kv/b", b"2")], compare=[absent("/kv/b")])
        assert not c.txn([op_put("/kv/b", b"3")], compare=[absent("/kv/b")])
        lease = c.grant(1)
        c.put("/kv/l", b"x", lease)
        kvs, _rev = c.get_prefix("/kv/")
        assert [(k, v) for k, v, _l in kvs] == [("/kv/a", b"1"), ("/kv/b", b"2"),
                                                ("/kv/l", b"x")]
        assert c.keepalive(lease) >= 1           # etcd rounds a TTL up to its minimum (2 s)
        c.delete("/kv/a")
        assert _until(lambda: any(e.key == "/kv/l" and e.kind == "delete" for e in seen))
        assert c.keepalive(lease) == 0                 # expired: gone
        kinds = [(e.kind, e.key) for e in seen]
        assert kinds[:3] == [("put", "/kv/a"), ("put", "/kv/b"), ("put", "/kv/l")]
        assert ("delete", "/kv/a") in kinds
    finally:
        watch.stop()
        c.close()
    assert watch.thread is not None and not watch.thread.is_alive()


def test_two_stores_share_records_and_hand_over(etcd: EtcdProcess) -> None:
    heard: list[tuple[str, ...]] = []

    class Listener:
        def record_changed(self, role: str, key: str, data: Any, by: Any) -> None:
            heard.append(("record", role, key, by))

        def owner_changed(self, role: str, key: str, owner: Any, previous: Any) -> None:
            heard.append(("owner", role, key, owner, previous))

    a = EtcdStateStore.from_url(f"{etcd.url}/share", replica="a", session_ttl=2)
    b = EtcdStateStore.from_url(f"{etcd.url}/share", replica="b", session_ttl=2)
    try:
        b.load()
        b.start_watch(Listener())
        now = time.time()
        assert a.write([("ha", "x@h", {"expires": now + 30, "k": 1}),
                        ("aaah", "x@h", {"v": 2})]) == 2
        assert _until(lambda: ("record", "ha", "x@h", "a") in heard)
        assert b.load() == {"ha": {"x@h": {"expires": now + 30, "k": 1}},
                            "aaah": {"x@h": {"v": 2}}}
        assert b.owner("ha", "x@h") == "a"
        time.sleep(2.5)                # longer than the session TTL: kept alive
        assert b.owner("ha", "x@h") == "a" and b.count() == 2
        a.close()                      # revoked: b hears the owner go and may claim
        assert _until(lambda: ("owner", "ha", "x@h", None, "a") in heard)
        assert b.to_claim([("ha", "x@h"), ("aaah", "x@h")]) == [("aaah", "x@h"),
                                                                ("ha", "x@h")]
        assert b.claim("ha", "x@h") and b.owner("ha", "x@h") == "b"
        assert b.write([("ha", "x@h", None)]) == 1
        assert b.load().get("ha", {}) == {}
    finally:
        b.close()
