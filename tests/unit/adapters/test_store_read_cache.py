"""Issue 15: the VPN store caches users and profiles between writes; a write through
the store, or a commit by another connection to the same file, is seen at once."""

from __future__ import annotations

import sqlite3

from controller.adapters.store import VpnStore
from controller.core.aaa_home import Destination, UserRecord, VpnProfile
from controller.core.vpn import QosSpec, SecuritySpec

NAI = "u1@home.example"


def _store(path: str) -> VpnStore:
    store = VpnStore(path)
    store.put_user(UserRecord(NAI, "10.64.0.1", "ha", 300, b"k" * 16))
    store.put_profile(VpnProfile(NAI, (Destination("10.1.0.0/16", "cngw1"),),
                                 SecuritySpec(), QosSpec()))
    return store


def test_a_second_read_runs_no_query(tmp_path) -> None:
    store = _store(str(tmp_path / "vpn.db"))
    assert store.user(NAI) is not None and store.profile(NAI) is not None
    sql: list[str] = []
    store._db.set_trace_callback(sql.append)
    assert store.user(NAI) == store.user(NAI)
    assert store.profile(NAI) is not None
    assert store.user("nobody@home.example") is None
    assert store.user("nobody@home.example") is None
    selects = [q for q in sql if q.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, sql     # only the unknown user's first read


def test_writes_through_the_store_are_read_back(tmp_path) -> None:
    store = _store(str(tmp_path / "vpn.db"))
    assert store.user(NAI).mn_aaa_spi == 300          # type: ignore[union-attr]
    assert store.profile(NAI).smooth_handoff is False  # type: ignore[union-attr]
    store.put_user(UserRecord(NAI, "10.64.0.1", "ha", 301, b"j" * 16))
    assert store.user(NAI).mn_aaa_spi == 301          # type: ignore[union-attr]
    store.put_options(NAI, True, "registration")
    assert store.profile(NAI).smooth_handoff is True   # type: ignore[union-attr]
    store.put_profile(VpnProfile(NAI, (), SecuritySpec(), QosSpec(500, 10)))
    assert store.profile(NAI).qos == QosSpec(500, 10)  # type: ignore[union-attr]
    assert store.user("new@home.example") is None
    store.put_user(UserRecord("new@home.example", "10.64.0.2", "ha", 300, b"k" * 16))
    assert store.user("new@home.example") is not None


def test_a_commit_by_another_connection_is_read_back(tmp_path) -> None:
    path = str(tmp_path / "vpn.db")
    store = _store(path)
    assert store.user(NAI).mn_aaa_spi == 300           # type: ignore[union-attr]
    other = sqlite3.connect(path)
    with other:
        other.execute("UPDATE users SET mn_aaa_spi = 999 WHERE nai = ?", (NAI,))
        other.execute("UPDATE profiles SET rate_kbps = 64 WHERE nai = ?", (NAI,))
    other.close()
    assert store.user(NAI).mn_aaa_spi == 999           # type: ignore[union-attr]
    assert store.profile(NAI).qos.rate_kbps == 64      # type: ignore[union-attr]


def test_the_controllers_own_state_commits_keep_the_cache(tmp_path) -> None:
    """`mipvpn controller` keeps its restart records in the VPN database file by
    default (``StateStore``, its own connection): its commits, one per batch of
    registrations, change no user or profile and must not drop the cache."""
    from controller.adapters.state import StateStore
    path = str(tmp_path / "vpn.db")
    store = _store(path)
    state = StateStore(path)
    assert store.user(NAI) is not None and store.profile(NAI) is not None
    sql: list[str] = []
    store._db.set_trace_callback(sql.append)
    for i in range(3):
        state.write([("ha", NAI, {"expires": i})])
        assert store.user(NAI) is not None and store.profile(NAI) is not None
    read = [q for q in sql if "FROM users" in q or "FROM profiles" in q
            or "FROM profile_options" in q]
    assert read == [], sql
    state.close()


def test_an_options_change_by_another_connection_is_read_back(tmp_path) -> None:
    path = str(tmp_path / "vpn.db")
    store = _store(path)
    assert store.profile(NAI).smooth_handoff is False  # type: ignore[union-attr]
    other = sqlite3.connect(path)
    with other:
        other.execute("UPDATE profile_options SET smooth_handoff = 1 WHERE nai = ?", (NAI,))
    other.close()
    assert store.profile(NAI).smooth_handoff is True   # type: ignore[union-attr]


def test_put_many_writes_in_one_commit(tmp_path) -> None:
    store = VpnStore(str(tmp_path / "vpn.db"))
    users = [UserRecord(f"u{i}@home.example", f"10.64.0.{i}", "ha", 300, b"k" * 16)
             for i in range(1, 4)]
    profiles = [VpnProfile(u.nai, (), SecuritySpec(), QosSpec(64, 0)) for u in users]
    sql: list[str] = []
    store._db.set_trace_callback(sql.append)
    store.put_many(users, profiles)
    assert [q for q in sql if q.strip().upper() == "COMMIT"] == ["COMMIT"], sql
    assert store.user("u2@home.example") == users[1]
    assert store.profile("u3@home.example").qos == QosSpec(64, 0)  # type: ignore[union-attr]


def _pragmas(sql: list[str]) -> int:
    return sum("data_version" in q for q in sql)


def test_a_snapshot_looks_for_other_commits_once(tmp_path) -> None:
    """``VpnStore.snapshot``: one role's reads check the database's version once, at the
    first read; a commit by another connection before it is seen, and after it the
    reads check again (issue 15)."""
    path = str(tmp_path / "vpn.db")
    store = _store(path)
    assert store.user(NAI) is not None
    other = sqlite3.connect(path)
    with other:
        other.execute("UPDATE users SET mn_aaa_spi = 999 WHERE nai = ?", (NAI,))
    sql: list[str] = []
    store._db.set_trace_callback(sql.append)
    with store.snapshot():
        assert store.user(NAI).mn_aaa_spi == 999       # type: ignore[union-attr]
        for _ in range(3):
            assert store.user(NAI) is not None and store.profile(NAI) is not None
        with store.snapshot():                          # nested: the outer one holds
            assert store.profile(NAI) is not None
    assert _pragmas(sql) == 1, sql
    with other:
        other.execute("UPDATE users SET mn_aaa_spi = 998 WHERE nai = ?", (NAI,))
    other.close()
    assert store.user(NAI).mn_aaa_spi == 998           # type: ignore[union-attr]
    assert store.user(NAI) is not None
    assert _pragmas(sql) == 3, sql


def test_another_threads_reads_check_during_a_snapshot(tmp_path) -> None:
    import threading
    store = _store(str(tmp_path / "vpn.db"))
    assert store.user(NAI) is not None
    sql: list[str] = []
    store._db.set_trace_callback(sql.append)
    with store.snapshot():
        assert store.user(NAI) is not None
        reader = threading.Thread(target=lambda: [store.user(NAI) for _ in range(3)])
        reader.start()
        reader.join()
    assert _pragmas(sql) == 4, sql
