"""Issue 5, controller restart: every role's per-user state survives as JSON records.

A restart here is: export every record of every role (``persist.state_keys`` +
``export_state``), push it through JSON, build the roles afresh from the topology (as a
new controller process does) and ``restore_state`` each record; the gateways keep
their tunnels (charon outlives the controller).  The restored roles must hold the same
state and carry on: a move answered locally by the AAAF, lifetime expiry at the
stored wall-clock time, the CN-GW's Binding Request (claim 25)."""

from __future__ import annotations

import json
import os
import stat
from typing import Any
from types import SimpleNamespace

import pytest

from controller.adapters.state import StateStore
from controller.core import persist
from controller.core.actions import RemoveTunnel
from tests.unit.harness import MobileNode, Walk, topology

NAI = "alice@home.example"
HA_FA1 = "alice_home.example/ha-fa1"
HA_FA2 = "alice_home.example/ha-fa2"
RO = "alice_home.example/cngw2-fa1"


def export_all(walk: Walk) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, role in walk.roles.items():
        if not persist.persistable(key, role):
            continue
        for k in persist.state_keys(key, role):
            data = role.export_state(k)
            if data is not None:
                out.setdefault(key, {})[k] = json.loads(json.dumps(data))
    return out


def restart(walk: Walk) -> Walk:
    """A new controller over the same topology, the same charons and the records."""
    records = export_all(walk)
    new = Walk(walk.topo, now=walk.now)
    for key, recs in records.items():
        for k, data in recs.items():
            new.roles[key].restore_state(k, data)
    new.gateways = walk.gateways          # charon kept its tunnels
    new.tables = walk.tables              # and OVS its flows
    new.gateways.history.clear()
    return new


@pytest.fixture
def walk() -> Walk:
    return Walk()


def test_every_role_round_trips_through_json(walk: Walk) -> None:
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    before = export_all(walk)
    assert set(before) == {"ha", "aaah", "aaaf:domain-a", "fa:fa1"}
    assert before["ha"][NAI]["vpn_info"]["tunnels"][0]["psk"]   # keys are kept (0600 DB)
    after = restart(walk)
    assert export_all(after) == before
    ha_old, ha_new = walk.ha.bindings[NAI], after.ha.bindings[NAI]
    assert ha_new == ha_old                                     # dataclass equality
    assert after.fa("fa1").visitors[NAI] == walk.fa("fa1").visitors[NAI]
    assert after.aaah.sessions[NAI] == walk.aaah.sessions[NAI]
    assert after.aaaf().sessions[NAI] == walk.aaaf().sessions[NAI]


def test_nothing_held_exports_none(walk: Walk) -> None:
    for key, role in walk.roles.items():
        if persist.persistable(key, role):
            assert role.export_state(NAI) is None, key


def test_intra_domain_move_after_restart_is_answered_locally(walk: Walk) -> None:
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    walk.now += 5.0
    after = restart(walk)
    mn.walk = after
    pos = after.mark()
    rrp = mn.register("fa2", "fa1")
    assert rrp is not None and rrp.accepted
    trace = after.trace(pos)
    assert "aaaf:domain-a -> aaah AMR" not in trace       # the AAAF's cache survived
    assert "fa:fa2 RelayToHomeAgent" in trace
    assert f"ha RemoveTunnel ha {HA_FA1}" in trace         # the HA's binding survived
    assert f"fa:fa1 RemoveTunnel fa1 {HA_FA1}" in trace   # FA1's visitor survived
    assert after.gateways.ids("fa1") == set()
    assert HA_FA2 in after.gateways.ids("ha") and HA_FA2 in after.gateways.ids("fa2")
    assert after.gateways.errors == []


def test_renewal_after_restart_keeps_replay_protection(walk: Walk) -> None:
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    ident = walk.ha.bindings[NAI].identification
    after = restart(walk)
    mn.walk = after
    rrp = mn.register("fa2", "fa1", identification=ident)   # replayed identification
    assert rrp is not None and rrp.code == 133


def test_expiry_survives_a_restart(walk: Walk) -> None:
    mn = MobileNode(walk)
    assert mn.register("fa1", lifetime=60).accepted
    expires = walk.ha.bindings[NAI].expires
    walk.now += 30
    after = restart(walk)
    after.now = expires - 0.5
    after.tick()
    assert NAI in after.ha.bindings and NAI in after.fa("fa1").visitors
    after.now = expires + 0.1
    pos = after.mark()
    after.tick()
    assert NAI not in after.ha.bindings and NAI not in after.fa("fa1").visitors
    removed = {(i.gateway, i.tunnel_id) for _r, i in after.of_type(RemoveTunnel, pos)}
    assert removed == {("ha", HA_FA1), ("fa1", HA_FA1)}
    assert after.gateways.ids("fa1") == set() and after.gateways.errors == []


def test_cn_gateway_binding_and_claim25_refresh_survive() -> None:
    walk = Walk(topology(destinations={NAI: [("10.32.0.0/24", "cngw2")]}))
    mn = MobileNode(walk)
    walk.cngw().max_lifetime = 60
    assert mn.register("fa1").accepted
    hoa = mn.conf.home_address
    records = export_all(walk)
    assert hoa in records["cngw:cngw2"]
    after = restart(walk)
    after.cngw().max_lifetime = 60
    b = after.cngw().bindings[hoa]
    assert b == walk.cngw().bindings[hoa]
    assert set(after.cngw().tunnels_wanted()) == {s for s in walk.cngw().tunnels_wanted()}
    after.now = walk.now + 48.5                      # below 20 % of 60 s: Binding Request
    pos = after.mark()
    after.tick()
    names = [i.name for _r, i in after.log[pos:] if hasattr(i, "name")]
    assert names[:3] == ["BReq", "BU", "BAck 0"]


def test_tunnels_wanted_is_what_the_gateways_hold(walk: Walk) -> None:
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    assert {t.tunnel_id for t in walk.ha.tunnels_wanted()} == {HA_FA1}
    assert {t.tunnel_id for t in walk.fa("fa1").tunnels_wanted()} == {HA_FA1}
    assert walk.fa("fa2").tunnels_wanted() == []


# ------------------------------------------------------------------ change tracking


def test_tracked_dict_reports_every_entry_set_or_removed(walk: Walk) -> None:
    """Each role notes in its own ``changes`` log the key of every entry it sets or
    removes (its state dicts are built tracked: no class swapping at run time)."""
    def taken() -> set[tuple[str, str]]:
        return {(rk, k) for rk, role in walk.roles.items()
                if persist.persistable(rk, role) for k in role.changes.take()}

    for role in walk.roles.values():
        role.changes.on = True
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    assert {("ha", NAI), ("aaah", NAI), ("aaaf:domain-a", NAI), ("fa:fa1", NAI)} <= taken()
    walk.now += 2
    assert mn.register("fa2", "fa1").accepted
    seen = taken()
    assert {("ha", NAI), ("aaaf:domain-a", NAI), ("fa:fa2", NAI), ("fa:fa1", NAI)} <= seen
    assert ("aaah", NAI) not in seen                 # the AAAH was not involved

    class Sink:
        def __init__(self) -> None:
            self.seen: list[tuple[str, str]] = []

        def note(self, k: str) -> None:
            self.seen.append(("d", k))

    sink = Sink()
    d = persist.TrackedDict(sink)
    seen = sink.seen  # type: ignore[assignment]
    d["a"] = 1
    d.setdefault("b", 2)
    d.pop("a")
    d.pop("zz", None)
    del d["b"]
    d.update(c=3)
    d.clear()
    assert seen == [("d", "a"), ("d", "b"), ("d", "a"), ("d", "b"), ("d", "c"), ("d", "c")]


# ------------------------------------------------------------------ the store


def test_state_store_file_is_0600_in_wal_mode_and_round_trips(tmp_path) -> None:
    path = tmp_path / "vpn.db"
    store = StateStore(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.write([("ha", NAI, {"x": 1}), ("fa:fa1", NAI, {"y": [1, 2]})]) == 2
    assert store.commits == 1
    store.write([("ha", NAI, {"x": 2}), ("fa:fa1", NAI, None)])
    store.close()
    again = StateStore(path)
    assert again.load() == {"ha": {NAI: {"x": 2}}}
    assert again.count() == 1
    for side in (tmp_path / "vpn.db-wal", tmp_path / "vpn.db-shm"):
        if side.exists():
            assert stat.S_IMODE(os.stat(side).st_mode) == 0o600
    assert again.write([]) == 0 and again.commits == 0
    again.close()


def test_state_store_rejects_unknown_sync_mode(tmp_path) -> None:
    with pytest.raises(ValueError):
        StateStore(tmp_path / "x.db", synchronous="sometimes")


def test_tracking_keeps_the_roles_indexes_and_expiry_heap() -> None:
    """Change tracking is mixed into the FA's VisitorTable and the HA's ExpiryDict
    (classes built so, not swapped): the MAC index and ``due`` keep working, and
    every change is reported."""
    from controller.core.visitors import TrackedVisitorTable, Visitor, VisitorTable
    from controller.core.vpn import VpnInfo

    class Sink:
        def __init__(self) -> None:
            self.on = False
            self.seen: list[str] = []

        def note(self, k: str) -> None:
            if self.on:
                self.seen.append(k)

    sink = Sink()
    seen = sink.seen
    table = TrackedVisitorTable(sink)
    info = VpnInfo("a@x", "10.1.0.5", "ha", "fa1", ())
    table["a@x"] = Visitor("a@x", "10.1.0.5", "10.1.0.1", "02:00:00:00:00:01", 3, info,
                           30, 30.0)
    sink.on = True
    assert isinstance(table, VisitorTable) and seen == []
    assert table.by_mac("02:00:00:00:00:01") is not None          # existing entry kept
    table["b@x"] = Visitor("b@x", "10.1.0.6", "10.1.0.1", "02:00:00:00:00:02", 4, info,
                           30, 10.0)
    assert table.by_mac("02:00:00:00:00:02") is not None and seen == ["b@x"]
    assert table.due(20.0) == ["b@x"]
    table.pop("b@x")
    assert table.by_mac("02:00:00:00:00:02") is None and seen == ["b@x", "b@x"]

    bindings = persist.TrackedExpiryDict(sink)
    bindings["c@x"] = SimpleNamespace(expires=5.0)
    del bindings["c@x"]
    assert bindings.due(10.0) == [] and seen[-2:] == ["c@x", "c@x"]
