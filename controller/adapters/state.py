"""Controller state that survives a restart (issue 5): one SQLite table of per-key
records, in the VPN database file (mode 0600: the records hold tunnel PSKs).

``role_state(role, key, data)``: ``role`` is a role key (``"ha"``, ``"fa:fa1"``, ...)
or ``"runtime:static"`` (the stationary tunnels, claim 16 step 1, with their keys);
``key`` a NAI (a home address for a CN-GW); ``data`` the JSON of the role's
``export_state(key)``.  The runtime writes the records of the keys an event changed,
in one transaction, before the reply of that event leaves (``Runtime.execute``).

The connection runs in WAL mode with ``synchronous=NORMAL``: a commit is an append to
the write-ahead log, no fsync; a controller crash (the process dies) loses nothing, a
power cut may lose the last commits before a checkpoint (``synchronous=FULL`` with
``MIPVPN_STATE_SYNC=full`` fsyncs each commit; cost in docs/benchmarks.md).  Nothing
here logs a record.

Checkpoints (copying the log into the database, two ``fdatasync``) are made by a
thread of the store's own, with its own connection, after every ``checkpoint_rows``
records written (issue 15): the writer is the runtime's event loop, which SQLite's
automatic checkpoint stopped for the length of one every few hundred registrations.
The writer's automatic checkpoint stays as a backstop, at a longer log
(``CHECKPOINT_BACKSTOP_PAGES``), should the thread fall behind; under continuous writes
the log stays near that size (SQLite starts it again only when a write begins after a
complete checkpoint).  With ``synchronous=FULL`` there is no thread: SQLite's own
checkpoint, as before (each commit waits for an ``fdatasync`` anyway).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable

import orjson

from controller.adapters.store import private_db_file

CHECKPOINT_ROWS = 512                 # records written between two checkpoints
CHECKPOINT_BACKSTOP_PAGES = 8192      # the writer checkpoints itself past this log (32 MB)

SCHEMA = """
CREATE TABLE IF NOT EXISTS role_state (
    role TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (role, key)
);
"""


def encode_record(data: dict[str, Any]) -> str:
    """A record as compact JSON text (what ``json.dumps(data, separators=(",", ":"))``
    made, read back the same; orjson: issue 15, several times cheaper).  Keys that are
    not strings are written as strings, as ``json`` did; what JSON cannot hold raises
    ``TypeError``."""
    try:
        return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError as exc:       # a TypeError, as json's
        raise TypeError(str(exc)) from exc


class StateStore:
    def __init__(self, path: str | Path, synchronous: str | None = None,
                 checkpoint_rows: int = CHECKPOINT_ROWS) -> None:
        self.path = private_db_file(path)
        sync = (synchronous or os.environ.get("MIPVPN_STATE_SYNC", "normal")).upper()
        if sync not in ("OFF", "NORMAL", "FULL"):
            raise ValueError(f"MIPVPN_STATE_SYNC: {sync!r} is not off, normal or full")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False,
                                   isolation_level=None)   # explicit BEGIN / COMMIT
        self.threaded_checkpoints = False
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: every commit waits for its own fdatasync anyway, and a thread's
            # checkpoint syncs of the same file made those waits longer: SQLite's own
            # checkpoint, as before (docs/decisions.md 2026-12-06)
            self.threaded_checkpoints = sync != "FULL"
            if self.threaded_checkpoints:
                self._db.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_BACKSTOP_PAGES}")
        self._db.execute(f"PRAGMA synchronous={sync}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA journal_size_limit=16777216")   # WAL back to 16 MB
        self._db.executescript(SCHEMA)
        if self.path != ":memory:":
            for suffix in ("-wal", "-shm"):   # the log holds the same secrets
                side = Path(self.path + suffix)
                if side.exists():
                    os.chmod(side, 0o600)
        self.commits = 0
        self.rows_written = 0
        self.checkpoint_rows = checkpoint_rows
        self.checkpoints = 0                    # made by the checkpoint thread
        self.checkpoint_threads: set[int] = set()   # the threads that made them
        self.last_checkpoint: tuple[int, ...] = ()
        self._unchecked = 0                     # records written since the last signal
        self._checkpointer: threading.Thread | None = None
        self._checkpoint_due = threading.Event()
        self._closing = False

    def write(self, changes: Iterable[tuple[str, str, dict[str, Any] | None]]) -> int:
        """Apply ``(role, key, record or None)`` changes in one transaction; None
        deletes.  Returns the number of rows touched."""
        upserts: list[tuple[str, str, str]] = []
        deletes: list[tuple[str, str]] = []
        for role, key, data in changes:
            if data is None:
                deletes.append((role, key))
            else:
                upserts.append((role, key, encode_record(data)))
        if not upserts and not deletes:
            return 0
        with self._lock:
            self._db.execute("BEGIN")
            try:
                if upserts:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO role_state (role, key, data) VALUES (?, ?, ?)",
                        upserts)
                if deletes:
                    self._db.executemany("DELETE FROM role_state WHERE role = ? AND key = ?",
                                         deletes)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self.commits += 1
        rows = len(upserts) + len(deletes)
        self.rows_written += rows
        self._unchecked += rows
        if self._unchecked >= self.checkpoint_rows and self.threaded_checkpoints:
            self._unchecked = 0
            self._checkpoint_soon()
        return rows

    def _checkpoint_soon(self) -> None:
        if self._checkpointer is None:
            self._checkpointer = threading.Thread(target=self._checkpoint_loop,
                                                  name="mipvpn-checkpoint", daemon=True)
            self._checkpointer.start()
        self._checkpoint_due.set()

    def _checkpoint_loop(self) -> None:
        """The checkpoint thread: a PASSIVE checkpoint (never waits for the writer or
        a reader) each time the writer asks, on a connection of its own."""
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=5000")
            while True:
                self._checkpoint_due.wait()
                self._checkpoint_due.clear()
                if self._closing:
                    return
                try:
                    row = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:     # busy, disk: the next one (or the backstop)
                    continue
                self.last_checkpoint = tuple(row)   # (busy, log frames, checkpointed)
                self.checkpoints += 1
                self.checkpoint_threads.add(threading.get_ident())
        finally:
            db.close()

    def load(self, role: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
        """role -> key -> record (every role, or only ``role``)."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        with self._lock:
            if role is None:
                rows = self._db.execute("SELECT role, key, data FROM role_state").fetchall()
            else:
                rows = self._db.execute("SELECT role, key, data FROM role_state WHERE role = ?",
                                        (role,)).fetchall()
        for r, k, data in rows:
            out.setdefault(r, {})[k] = json.loads(data)
        return out

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM role_state").fetchone()[0])

    def close(self) -> None:
        if self._checkpointer is not None:
            self._closing = True
            self._checkpoint_due.set()
            self._checkpointer.join()
        with self._lock:
            self._db.close()
