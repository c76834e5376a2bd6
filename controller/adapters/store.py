"""The VPN database (home network): users and their VPN profiles, in SQLite.

SQLite is the embedded default.  The file is created with mode 0600: it holds the
users' MN-AAA and MN-HA keys.  Older files are migrated in place (``ALTER TABLE ... ADD
COLUMN`` for columns added since: ``users.mn_ha_spi`` / ``users.mn_ha_key``; tables added
since, such as ``user_allowances``, by ``CREATE TABLE IF NOT EXISTS``).  Profiles are
seeded from the topology YAML on first start and never overwritten by a re-seed (a user's
own changes, claim 24, survive restarts).  So are the users' allowances (what a user may
change, ``controller.allowance``): seeded once per user from the YAML (or, absent there,
from the user's seeded profile: nothing beyond it), changed afterwards by the operator
through ``PUT /v1/users/{nai}/allowance``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from controller.allowance import (Allowance, allowance_from_json, allowance_to_json,
                                  resolve_allowance)
from controller.core.aaa_home import Destination, UserRecord, VpnProfile
from controller.core.vpn import QosSpec, SecuritySpec

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    nai TEXT PRIMARY KEY,
    home_address TEXT NOT NULL,
    home_agent TEXT NOT NULL,
    mn_aaa_spi INTEGER NOT NULL,
    mn_aaa_key BLOB NOT NULL,
    mn_ha_spi INTEGER NOT NULL DEFAULT 0,
    mn_ha_key BLOB NOT NULL DEFAULT x''
);
CREATE TABLE IF NOT EXISTS profiles (
    nai TEXT PRIMARY KEY REFERENCES users(nai),
    destinations TEXT NOT NULL,
    ike TEXT NOT NULL,
    esp TEXT NOT NULL,
    rate_kbps INTEGER NOT NULL,
    dscp INTEGER NOT NULL,
    updated REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS profile_options (
    nai TEXT PRIMARY KEY REFERENCES users(nai),
    smooth_handoff INTEGER NOT NULL DEFAULT 0,
    distribution TEXT NOT NULL DEFAULT 'registration'
);
CREATE TABLE IF NOT EXISTS user_allowances (
    nai TEXT PRIMARY KEY REFERENCES users(nai),
    allowance TEXT NOT NULL,
    updated REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS vpn_version (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    version INTEGER NOT NULL
);
INSERT OR IGNORE INTO vpn_version VALUES (0, 0);
""" + "".join(
    f"CREATE TRIGGER IF NOT EXISTS {table}_{verb.lower()}d AFTER {verb} ON {table} "
    "BEGIN UPDATE vpn_version SET version = version + 1 WHERE id = 0; END;\n"
    for table in ("users", "profiles", "profile_options")
    for verb in ("INSERT", "UPDATE", "DELETE"))

#: Columns added after the first release: (table, column, SQL type and default).
MIGRATIONS: tuple[tuple[str, str, str], ...] = (
    ("users", "mn_ha_spi", "INTEGER NOT NULL DEFAULT 0"),
    ("users", "mn_ha_key", "BLOB NOT NULL DEFAULT x''"),
    ("profile_options", "seamless_handover", "INTEGER NOT NULL DEFAULT 0"),
)

#: Profile options a user may set with the profile (claim 24), and their defaults.
DEFAULT_OPTIONS: dict[str, Any] = {"smooth_handoff": False, "distribution": "registration",
                                   "seamless_handover": False}


def private_db_file(path: str | Path) -> str:
    """Create the SQLite file (and its directory) readable by its owner only (0600: it
    holds keys), before sqlite3 opens it; ``:memory:`` passes through."""
    path = str(path)
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)
    return path


#: users and profiles held in the read cache, at most (cleared when full)
READ_CACHE_MAX = 65536


class VpnStore:
    """Implements ``controller.core.aaa_home.VpnDatabase`` over SQLite.

    Reads of users and profiles are cached (issue 15: one registration reads the user
    four times and the profile twice, from the AAAH and the HA).  The cache holds as
    long as no other connection changed a user or a profile (an operator's ``sqlite3``
    session, another process), and a write through this store drops the entries of its
    NAI.  Each read asks SQLite's ``data_version`` (changed by any other connection's
    commit); only when it changed does it read ``vpn_version``, a counter the tables'
    triggers raise on every change of ``users``, ``profiles`` or ``profile_options``, so
    the controller's own restart records (``controller.adapters.state``, by default in
    this file, one commit per batch of registrations) leave the cache alone."""

    def __init__(self, path: str | Path) -> None:
        self.path = private_db_file(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.executescript(SCHEMA)
        self._migrate()
        self._db.commit()
        self._users: dict[str, UserRecord | None] = {}
        self._profiles: dict[str, VpnProfile | None] = {}
        self._version = self._data_version()
        self._vpn_version = self._read_vpn_version()
        # ``snapshot``: the thread reading one state of the database, and whether that
        # state was checked already
        self._snapshot_thread: int | None = None
        self._snapshot_checked = False

    def snapshot(self) -> _Snapshot:
        """``with store.snapshot(): ...``: the reads of this thread inside look for
        another connection's commits once, at the first read, instead of at every read
        (each look is a ``PRAGMA data_version``, a read transaction: 12-17 µs here).  The
        runtime holds one around each role's handling of a message (issue 15): a
        registration read the user and the profile six times, and each role now
        decides on one state of the database.  Other threads read as before."""
        return _Snapshot(self)

    def _data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _read_vpn_version(self) -> int:
        return int(self._db.execute("SELECT version FROM vpn_version").fetchone()[0])

    def _cache_fresh(self) -> None:
        """Drop the read cache if another connection changed a user or a profile since
        (lock held)."""
        if self._snapshot_thread is not None and self._snapshot_thread == threading.get_ident():
            if self._snapshot_checked:
                return
            self._snapshot_checked = True
        version = self._data_version()
        if version != self._version:
            self._version = version
            vpn_version = self._read_vpn_version()
            if vpn_version != self._vpn_version:
                self._vpn_version = vpn_version
                self._users.clear()
                self._profiles.clear()
        if len(self._users) + len(self._profiles) >= READ_CACHE_MAX:
            self._users.clear()
            self._profiles.clear()

    def _forget(self, nai: str) -> None:
        """A write through this store changed ``nai``'s rows (lock held)."""
        self._users.pop(nai, None)
        self._profiles.pop(nai, None)

    def _migrate(self) -> None:
        for table, column, decl in MIGRATIONS:
            have = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ----------------------------------------------------------- VpnDatabase

    def user(self, nai: str) -> UserRecord | None:
        with self._lock:
            self._cache_fresh()
            if nai in self._users:
                return self._users[nai]
            row = self._db.execute(
                "SELECT nai, home_address, home_agent, mn_aaa_spi, mn_aaa_key, mn_ha_spi,"
                " mn_ha_key FROM users WHERE nai = ?", (nai,)).fetchone()
            user = None if row is None else UserRecord(
                row[0], row[1], row[2], int(row[3]), bytes(row[4]), int(row[5]),
                bytes(row[6]))
            self._users[nai] = user
            return user

    def profile(self, nai: str) -> VpnProfile | None:
        with self._lock:
            self._cache_fresh()
            if nai in self._profiles:
                return self._profiles[nai]
            row = self._db.execute(
                "SELECT destinations, ike, esp, rate_kbps, dscp FROM profiles WHERE nai = ?",
                (nai,)).fetchone()
            prof = None
            if row is not None:
                dests = tuple(Destination(d["prefix"], d["gateway"])
                              for d in json.loads(row[0]))
                options = self._options(nai)
                prof = VpnProfile(nai, dests, SecuritySpec(row[1], row[2]),
                                  QosSpec(int(row[3]), int(row[4])),
                                  smooth_handoff=bool(options["smooth_handoff"]),
                                  distribution=str(options["distribution"]),
                                  seamless_handover=bool(options["seamless_handover"]))
            self._profiles[nai] = prof
            return prof

    # ----------------------------------------------------------- writes

    def put_user(self, user: UserRecord) -> None:
        with self._lock, self._db:
            self._put_user(user)

    def put_profile(self, profile: VpnProfile, now: float = 0.0,
                    overwrite: bool = True) -> bool:
        with self._lock, self._db:
            return self._put_profile(profile, now, overwrite)

    def put_many(self, users: list[UserRecord], profiles: list[VpnProfile]) -> None:
        """Users and profiles in one transaction (provisioning many at once: one
        commit, not one per record)."""
        with self._lock, self._db:
            for user in users:
                self._put_user(user)
            for profile in profiles:
                self._put_profile(profile, 0.0, True)

    def _put_user(self, user: UserRecord) -> None:
        """(lock held, inside a transaction)"""
        self._forget(user.nai)
        self._db.execute(
            "INSERT INTO users (nai, home_address, home_agent, mn_aaa_spi, mn_aaa_key,"
            " mn_ha_spi, mn_ha_key) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(nai) DO"
            " UPDATE SET home_address=excluded.home_address,"
            " home_agent=excluded.home_agent, mn_aaa_spi=excluded.mn_aaa_spi,"
            " mn_aaa_key=excluded.mn_aaa_key, mn_ha_spi=excluded.mn_ha_spi,"
            " mn_ha_key=excluded.mn_ha_key",
            (user.nai, user.home_address, user.home_agent, user.mn_aaa_spi,
             user.mn_aaa_key, user.mn_ha_spi, user.mn_ha_key))

    def _put_profile(self, profile: VpnProfile, now: float, overwrite: bool) -> bool:
        """(lock held, inside a transaction)"""
        dests = json.dumps([{"prefix": d.prefix, "gateway": d.gateway}
                            for d in profile.destinations])
        verb = "INSERT OR REPLACE" if overwrite else "INSERT OR IGNORE"
        self._forget(profile.nai)
        cur = self._db.execute(
            f"{verb} INTO profiles VALUES (?, ?, ?, ?, ?, ?, ?)",
            (profile.nai, dests, profile.security.ike, profile.security.esp,
             profile.qos.rate_kbps, profile.qos.dscp, now))
        written = cur.rowcount > 0
        if written:   # the options travel with the profile (claims 5, 22-24)
            self._db.execute(
                "INSERT OR REPLACE INTO profile_options (nai, smooth_handoff, "
                "distribution, seamless_handover) VALUES (?, ?, ?, ?)",
                (profile.nai, int(profile.smooth_handoff), profile.distribution,
                 int(profile.seamless_handover)))
        return written

    def options(self, nai: str) -> dict[str, Any]:
        """The profile's options (``DEFAULT_OPTIONS`` when none were set)."""
        with self._lock:
            return self._options(nai)

    def _options(self, nai: str) -> dict[str, Any]:
        row = self._db.execute("SELECT smooth_handoff, distribution, seamless_handover"
                               " FROM profile_options WHERE nai = ?", (nai,)).fetchone()
        if row is None:
            return dict(DEFAULT_OPTIONS)
        return {"smooth_handoff": bool(row[0]), "distribution": str(row[1]),
                "seamless_handover": bool(row[2])}

    def put_options(self, nai: str, smooth_handoff: bool, distribution: str) -> None:
        with self._lock, self._db:
            self._forget(nai)
            self._db.execute("INSERT INTO profile_options (nai, smooth_handoff, distribution)"
                             " VALUES (?, ?, ?) ON CONFLICT(nai) DO UPDATE SET smooth_handoff"
                             " = excluded.smooth_handoff, distribution = excluded.distribution",
                             (nai, int(smooth_handoff), distribution))

    def allowance(self, nai: str) -> Allowance | None:
        """What ``nai`` may change in their own profile (``None``: none stored)."""
        with self._lock:
            row = self._db.execute("SELECT allowance FROM user_allowances WHERE nai = ?",
                                   (nai,)).fetchone()
        return None if row is None else allowance_from_json(json.loads(row[0]))

    def put_allowance(self, nai: str, allowance: Allowance, now: float = 0.0,
                      overwrite: bool = True) -> bool:
        verb = "INSERT OR REPLACE" if overwrite else "INSERT OR IGNORE"
        with self._lock, self._db:
            return self._db.execute(
                f"{verb} INTO user_allowances VALUES (?, ?, ?)",
                (nai, json.dumps(allowance_to_json(allowance)), now)).rowcount > 0

    def users(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT nai FROM users ORDER BY nai")]

    def seed(self, topo: Any) -> None:
        """Users from ``mobile_nodes`` (always refreshed: keys come from config),
        profiles from ``vpn_profiles`` and allowances (only when the user has none yet:
        the profile's ``allowance``, then ``user_allowance``, then nothing beyond the
        profile of the YAML, never beyond one the user changed already)."""
        for mn in topo.mobile_nodes.values():
            self.put_user(UserRecord(mn.nai, mn.home_address, mn.home_agent,
                                     mn.mn_aaa_spi, mn.mn_aaa_key,
                                     getattr(mn, "mn_ha_spi", 0),
                                     getattr(mn, "mn_ha_key", b"")))
        for nai, prof in topo.vpn_profiles.items():
            self.put_profile(profile_from_conf(nai, prof), overwrite=False)
        default = getattr(topo, "user_allowance", None)
        nais = {mn.nai for mn in topo.mobile_nodes.values()} | set(topo.vpn_profiles)
        for nai in sorted(nais):
            prof = topo.vpn_profiles.get(nai)
            seeded = None if prof is None else profile_from_conf(nai, prof)
            self.put_allowance(nai, resolve_allowance(
                seeded, getattr(prof, "allowance", None), default), overwrite=False)


class _Snapshot:
    """``VpnStore.snapshot``'s context (nested ones keep the outermost)."""

    __slots__ = ("store", "outer")

    def __init__(self, store: VpnStore) -> None:
        self.store = store
        self.outer = True

    def __enter__(self) -> None:
        store = self.store
        with store._lock:
            self.outer = store._snapshot_thread is None
            if self.outer:
                store._snapshot_thread = threading.get_ident()
                store._snapshot_checked = False

    def __exit__(self, *exc: object) -> None:
        if self.outer:
            with self.store._lock:
                self.store._snapshot_thread = None


def profile_from_conf(nai: str, prof: Any) -> VpnProfile:
    return VpnProfile(
        nai,
        tuple(Destination(d.prefix, d.gateway) for d in prof.destinations),
        SecuritySpec(prof.security.ike, prof.security.esp),
        QosSpec(prof.qos.rate_kbps, prof.qos.dscp),
        smooth_handoff=bool(getattr(prof, "smooth_handoff", False)),
        distribution=str(getattr(prof, "distribution", "registration")),
        seamless_handover=bool(getattr(prof, "seamless_handover", False)))


def profile_to_json(profile: VpnProfile) -> dict[str, Any]:
    return {"nai": profile.nai,
            "destinations": [{"prefix": d.prefix, "gateway": d.gateway}
                             for d in profile.destinations],
            "security": {"ike": profile.security.ike, "esp": profile.security.esp},
            "qos": {"rate_kbps": profile.qos.rate_kbps, "dscp": profile.qos.dscp},
            "smooth_handoff": profile.smooth_handoff, "distribution": profile.distribution,
            "seamless_handover": profile.seamless_handover}
