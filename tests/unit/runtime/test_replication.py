"""Issue 17: two replicas of the home domain share their roles' records through etcd
(a fake one here, on a clock the test moves; the real one: tests/unit/adapters/
test_etcd_client.py and tests/integration/test_replicas.py).

Each replica is a ``Walk`` (the real roles of the topology) whose home roles are
persisted by the runtime's ``Persistence`` into its own ``EtcdStateStore`` over the one
fake etcd, and followed by its own ``Replication`` (posting straight to the roles: the
fake delivers watch events on the caller's thread)."""

from __future__ import annotations

from typing import Any

import pytest

from controller.adapters.etcd_state import (LEASE_GRACE, LEASE_STEP, SESSION_TTL,
                                            EtcdStateStore, parse_etcd_url)
from controller.adapters.state import StateStore
from controller.runtime.persistence import Persistence
from controller.runtime.replication import Replication, is_shared, open_state
from controller.testing.etcd import FakeEtcd
from tests.unit.harness import MobileNode, Walk

NAI = "alice@home.example"
HOME = ("ha", "aaah")


class Replica:
    def __init__(self, fake: FakeEtcd, name: str) -> None:
        self.walk = Walk()
        self.walk.now = 1_700_000_000.0 + fake.now
        self.fake = fake
        self.store = EtcdStateStore(fake, "/t", replica=name,
                                    clock=lambda: self.walk.now, keepalive=False)
        self.roles = {k: self.walk.roles[k] for k in HOME}
        self.counters: dict[str, int] = {}
        self.persistence = Persistence(self.store, self.roles, self.counters)
        self.persistence.restore()
        self.recomputed = 0
        self.replication = Replication(self.store, self.roles, self.counters,
                                       post=lambda f: f(), recompute=self._recompute,
                                       clock=lambda: self.walk.now)
        self.replication.start()

    def _recompute(self) -> None:
        self.recomputed += 1

    def register(self, mn: MobileNode | None = None) -> Any:
        mn = mn or MobileNode(self.walk)
        reply = mn.register("fa1")
        self.persistence.flush()       # what the executor does before the reply leaves
        return reply

    def keepalive(self) -> None:
        self.fake.keepalive(self.store.session)

    def die(self) -> None:
        """The process is killed: no more watch events, no more keep-alives."""
        assert self.store._watch is not None
        self.store._watch.stop()


@pytest.fixture
def fake() -> FakeEtcd:
    return FakeEtcd()


def test_a_binding_made_on_one_replica_is_held_by_the_other(fake: FakeEtcd) -> None:
    a, b = Replica(fake, "a"), Replica(fake, "b")
    assert a.register().accepted
    assert NAI in b.walk.ha.bindings
    assert b.walk.ha.bindings[NAI] == a.walk.ha.bindings[NAI]
    assert b.walk.aaah.sessions[NAI] == a.walk.aaah.sessions[NAI]
    assert b.walk.ha.tunnels_wanted() == a.walk.ha.tunnels_wanted()   # b's view follows
    assert b.recomputed == 0                      # charon: set by the owner, a
    assert b.counters["replica_records_applied"] == 2
    # taken in without being noted as b's own change: b writes nothing back
    assert not b.persistence.dirty
    assert a.store.owner("ha", NAI) == "a" and b.store.owner("ha", NAI) == "a"


def test_a_replica_started_later_restores_every_record(fake: FakeEtcd) -> None:
    a = Replica(fake, "a")
    assert a.register().accepted
    b = Replica(fake, "b")
    assert b.walk.ha.bindings[NAI] == a.walk.ha.bindings[NAI]
    assert b.store.owner("ha", NAI) == "a"
    assert b.replication.takeovers == []          # a is alive: nothing claimed


def test_the_survivor_takes_over_when_the_owner_dies(fake: FakeEtcd) -> None:
    a, b = Replica(fake, "a"), Replica(fake, "b")
    mn = MobileNode(a.walk)
    assert a.register(mn).accepted
    a.die()
    b.keepalive()
    fake.advance(SESSION_TTL - 0.5)
    b.keepalive()                                 # a stopped keeping its session
    assert b.store.owner("ha", NAI) == "a"
    fake.advance(1.0)                             # a's session lease ran out
    assert b.store.owner("ha", NAI) == "b"
    assert {(t["role"], t["key"], t["from"]) for t in b.replication.takeovers} == {
        ("ha", NAI, "a"), ("aaah", NAI, "a")}
    assert NAI in b.walk.ha.bindings              # binding kept
    assert b.recomputed >= 1                      # its gateways reconciled (debounced)
    # the MN's renewal reaches the survivor: accepted against the shared binding
    # (its Identification must exceed the one a stored)
    b.walk.now = a.walk.now = a.walk.now + 60
    mn.walk = b.walk
    assert b.register(mn).accepted
    assert b.walk.ha.bindings[NAI].expires > a.walk.ha.bindings[NAI].expires
    assert b.store.owner("ha", NAI) == "b"


def test_a_takeover_claim_is_won_once(fake: FakeEtcd) -> None:
    a, b, c = Replica(fake, "a"), Replica(fake, "b"), Replica(fake, "c")
    assert a.register().accepted
    a.die()
    for r in (b, c):
        r.keepalive()
    fake.advance(SESSION_TTL - 0.5)
    for r in (b, c):
        r.keepalive()
    fake.advance(1.0)
    owners = {b.store.owner("ha", NAI), c.store.owner("ha", NAI)}
    assert len(owners) == 1 and owners <= {"b", "c"}
    assert b.store.counters["claims"] + c.store.counters["claims"] == 2   # ha, aaah
    assert b.store.counters["claims_lost"] + c.store.counters["claims_lost"] == 2


def test_a_clean_stop_hands_over_at_once(fake: FakeEtcd) -> None:
    a, b = Replica(fake, "a"), Replica(fake, "b")
    assert a.register().accepted
    a.store.close()                               # revokes a's session
    assert b.store.owner("ha", NAI) == "b"


def test_a_non_owner_does_not_delete_the_owners_record(fake: FakeEtcd) -> None:
    a, b = Replica(fake, "a"), Replica(fake, "b")
    assert a.register().accepted
    # b's copy expires (its clock runs ahead); a is alive and owns the record
    b.walk.now += 10_000
    b.walk.tick()
    assert NAI not in b.walk.ha.bindings
    b.persistence.flush()
    assert b.store.counters["deletes_skipped_not_owner"] >= 1
    assert NAI in a.walk.ha.bindings
    assert any(k.endswith(f"/state/ha/{NAI}") for k in fake.kv)


def test_the_mip_lifetime_is_an_etcd_lease(fake: FakeEtcd) -> None:
    a, b = Replica(fake, "a"), Replica(fake, "b")
    assert a.register().accepted
    binding = a.walk.ha.bindings[NAI]
    state_key = f"/t/state/ha/{NAI}"
    _value, lease, _created = fake.kv[state_key]
    assert lease and lease != a.store.session
    left = binding.expires - a.walk.now
    # nobody left to expire it: etcd does, once the lifetime (+ grace) is over
    a.die()
    fake.advance(left)
    assert state_key in fake.kv
    fake.advance(LEASE_GRACE + LEASE_STEP + 1)
    assert state_key not in fake.kv
    assert NAI not in b.walk.ha.bindings          # the other replica dropped it too


def test_records_written_together_share_a_lease(fake: FakeEtcd) -> None:
    a = Replica(fake, "a")
    assert a.register().accepted                  # ha + aaah records, one window
    leases = {lease for k, (_v, lease, _c) in fake.kv.items() if "/state/" in k}
    assert len(leases) == 1
    assert a.store.counters["lease_grants"] == 1


def test_a_deregistration_deletes_record_and_owner_key(fake: FakeEtcd) -> None:
    a, b = Replica(fake, "a"), Replica(fake, "b")
    mn = MobileNode(a.walk)
    assert a.register(mn).accepted
    assert a.walk.ha.on_tick(a.walk.ha.bindings[NAI].expires + 1)   # lifetime over
    a.persistence.flush()
    assert not [k for k in fake.kv if k.endswith(f"ha/{NAI}")]
    assert NAI not in b.walk.ha.bindings
    assert b.counters["replica_records_dropped"] >= 1


def test_state_urls() -> None:
    assert parse_etcd_url("etcd://127.0.0.1:2379") == parse_etcd_url(
        "etcd://127.0.0.1:2379/mipvpn")
    where = parse_etcd_url("etcd://10.0.0.5:2379/home-a/")
    assert (where.host, where.port, where.prefix) == ("10.0.0.5", 2379, "/home-a")
    with pytest.raises(ValueError):
        parse_etcd_url("etcd://nohost")
    assert is_shared("etcd://h:1") and not is_shared("/run/mipvpn/vpn.db")
    assert not is_shared(None)


def test_a_path_still_opens_sqlite(tmp_path: Any) -> None:
    store = open_state(tmp_path / "vpn.db")
    assert isinstance(store, StateStore)
    store.close()


def test_a_burst_of_takeovers_reconciles_once() -> None:
    import asyncio

    from controller.runtime.replication import debounced
    runs: list[int] = []

    async def work() -> None:
        runs.append(1)

    async def main() -> None:
        tasks: list[Any] = []
        call = debounced(lambda c: tasks.append(asyncio.ensure_future(c)), work, 0.01)
        for _ in range(50):
            call()
        await asyncio.gather(*tasks)
        assert runs == [1]
        call()                                    # a later burst: once more
        await asyncio.gather(*tasks)
        assert runs == [1, 1]
    asyncio.run(main())


def test_an_unreadable_record_is_ignored_without_logging_it(
        fake: FakeEtcd, caplog: Any) -> None:
    a, b = Replica(fake, "a"), Replica(fake, "b")
    fake.txn([{"request_put": {"key": "L3Qvc3RhdGUvaGEvZXZlQGg=",       # /t/state/ha/eve@h
                               "value": "c2VjcmV0LXBzaw=="}}])         # b"secret-psk"
    assert a.register().accepted                  # the watch goes on after it
    assert NAI in b.walk.ha.bindings
    assert b.store.counters["records_unreadable"] == 1
    assert "secret-psk" not in caplog.text and "eve@h" in caplog.text
