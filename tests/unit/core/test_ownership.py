"""Issue 17: who owns a replicated record (pure decisions over observed owner keys)."""

from __future__ import annotations

from controller.core import ownership


def test_unowned_held_records_are_claimed_in_one_order() -> None:
    held = ["ha/bob@h", "ha/alice@h", "aaah/alice@h"]
    owners = {"ha/bob@h": "r1"}
    assert ownership.to_claim(held, owners) == ["aaah/alice@h", "ha/alice@h"]
    assert ownership.to_claim(held, {p: "r2" for p in held}) == []


def test_only_the_owner_or_nobody_deletes() -> None:
    assert ownership.may_delete("r1", "r1")
    assert ownership.may_delete("r1", None)
    assert not ownership.may_delete("r1", "r2")


def test_lease_ends_after_the_lifetime_in_shared_windows() -> None:
    now = 1000.0
    # a binding expiring at 1600.2 lives until 1606 -> rounded up to 1610
    assert ownership.lease_end({"expires": 1600.2}, grace=5, step=10) == 1610
    # two bindings registered a few seconds apart share the window's lease
    assert ownership.lease_end({"expires": 1601.0}, 5, 10) == \
        ownership.lease_end({"expires": 1604.9}, 5, 10)
    assert ownership.lease_ttl(1610, now) == 610
    assert ownership.lease_ttl(1000, now + 3) == 1       # never 0 (etcd: no lease)
    assert ownership.lease_end({"vpn_info": {}}, 5, 10) is None
    assert ownership.lease_end({"expires": None}, 5, 10) is None
    assert ownership.lease_end({"expires": True}, 5, 10) is None


def test_record_path() -> None:
    assert ownership.record_path("ha", "alice@home.example") == "ha/alice@home.example"
