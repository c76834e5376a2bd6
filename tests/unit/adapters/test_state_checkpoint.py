"""Issue 15: the restart records' write-ahead log is checkpointed by a thread of its
own, not by the event loop's commits.

SQLite checkpoints a WAL file when a commit finds it longer than ``wal_autocheckpoint``
pages (1,000 by default): on the committing thread, copying the log into the database
and calling ``fdatasync`` twice.  The runtime commits on its event loop's thread, so
every few hundred registrations the loop stopped for the length of a checkpoint (a
registration's p99).  ``StateStore`` now leaves the writer's automatic checkpoint as a
backstop only and has its checkpoint thread do it after every ``checkpoint_rows``
records written."""

from __future__ import annotations

import sqlite3
import threading
import time

from controller.adapters.state import CHECKPOINT_BACKSTOP_PAGES, StateStore


def _write(store: StateStore, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        store.write([("ha", f"u{i}@home.example", {"blob": "x" * 900, "i": i})])


def test_the_writer_does_not_checkpoint_at_the_default_size(tmp_path) -> None:
    store = StateStore(tmp_path / "vpn.db")
    try:
        pages = store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert pages == CHECKPOINT_BACKSTOP_PAGES > 1000
    finally:
        store.close()


def test_the_checkpoint_thread_checkpoints_after_enough_records(tmp_path) -> None:
    store = StateStore(tmp_path / "vpn.db", checkpoint_rows=50)
    try:
        _write(store, 60)
        deadline = time.monotonic() + 5
        while store.checkpoints < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.checkpoints >= 1
        assert store.checkpoint_threads and threading.get_ident() not in \
            store.checkpoint_threads
        busy, log, moved = store.last_checkpoint      # SQLite's answer: frames moved
        assert busy == 0 and log > 0 and moved > 0
    finally:
        store.close()


def test_few_records_wake_no_thread(tmp_path) -> None:
    store = StateStore(tmp_path / "vpn.db", checkpoint_rows=1000)
    try:
        _write(store, 10)
        time.sleep(0.1)
        assert store.checkpoints == 0
    finally:
        store.close()


def test_close_stops_the_thread_and_loses_nothing(tmp_path) -> None:
    store = StateStore(tmp_path / "vpn.db", checkpoint_rows=50)
    _write(store, 60)
    thread = store._checkpointer
    store.close()
    assert thread is not None and not thread.is_alive()
    again = StateStore(tmp_path / "vpn.db")
    try:
        assert len(again.load("ha")["ha"]) == 60
    finally:
        again.close()


def test_an_in_memory_store_has_no_thread(tmp_path) -> None:
    store = StateStore(":memory:")
    try:
        _write(store, 5)
        assert store._checkpointer is None
    finally:
        store.close()


def test_checkpoints_beside_the_writer_keep_the_file_whole(tmp_path) -> None:
    store = StateStore(tmp_path / "vpn.db", checkpoint_rows=20)
    _write(store, 1500)
    store.write([("ha", f"u{i}@home.example", None) for i in range(0, 1500, 3)])
    assert store.checkpoints >= 1
    store.close()
    check = sqlite3.connect(tmp_path / "vpn.db")
    try:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert check.execute("SELECT COUNT(*) FROM role_state").fetchone()[0] == 1000
    finally:
        check.close()


def test_the_log_stays_bounded_under_continuous_writes(tmp_path, monkeypatch) -> None:
    """An earlier try at checkpointing from another thread was dropped because the log
    grew without bound under continuous writes (860 MB, docs/benchmarks.md § 7): a
    PASSIVE checkpoint never catches a writer that keeps appending, so SQLite never
    starts the log again.  The writer's own checkpoint past the backstop bounds it;
    here the backstop is made small so that a few thousand records cross it."""
    import controller.adapters.state as state

    monkeypatch.setattr(state, "CHECKPOINT_BACKSTOP_PAGES", 64)
    store = StateStore(tmp_path / "vpn.db", checkpoint_rows=10**9)   # no thread at all
    wal = tmp_path / "vpn.db-wal"
    biggest = 0
    try:
        for i in range(0, 3000, 10):
            store.write([("ha", f"u{j}@home.example", {"blob": "x" * 900, "i": j})
                         for j in range(i, i + 10)])
            biggest = max(biggest, wal.stat().st_size)
    finally:
        store.close()
    assert store.checkpoints == 0
    assert biggest < 2 * 64 * 4096     # one backstop's worth of log, and a commit's


def test_a_store_that_syncs_every_commit_checkpoints_as_before(tmp_path) -> None:
    """``synchronous=FULL`` (``MIPVPN_STATE_SYNC=full``): each commit waits for its own
    ``fdatasync`` anyway, and a checkpoint thread's syncs of the same file made those
    waits longer (median per registration 0.9 -> 1.8 ms, same-process A/B,
    bench/results/registration-checkpoint-2026-12-06/): no thread, SQLite's own
    checkpoint at its default size."""
    store = StateStore(tmp_path / "vpn.db", synchronous="full", checkpoint_rows=50)
    try:
        assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        _write(store, 200)
        assert store.checkpoints == 0 and store._checkpointer is None
    finally:
        store.close()
