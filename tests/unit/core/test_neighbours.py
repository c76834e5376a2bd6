"""Issue 14: the FAs an MN can move to (from the topology graph) and what preparing
them costs in standing SAs; none without the profile's choice."""

from __future__ import annotations

import pytest

from controller.config import load_topology
from controller.core.neighbours import NeighbourMap, standing_sas
from tests.unit.harness import DEFAULT_TOPOLOGY, TWO_DOMAINS


def test_default_topology_fa1_and_fa2_are_each_others_neighbour() -> None:
    nm = NeighbourMap.from_topology(load_topology(DEFAULT_TOPOLOGY))
    assert nm.ranked == {"fa1": ("fa2",), "fa2": ("fa1",)}
    assert nm.hops[("fa1", "fa2")] == 4      # acc1 - fa1 - core2 - fa2 - acc2
    assert nm.plan("fa1", seamless=True) == ("fa2",)


def test_same_domain_first_then_hops() -> None:
    nm = NeighbourMap.from_topology(load_topology(TWO_DOMAINS))
    assert nm.ranked["fa1"][0] == "fa2"      # domain-a before fa3 of domain-b
    assert set(nm.ranked["fa1"]) == {"fa2", "fa3"}
    assert nm.ranked["fa3"] == tuple(sorted(nm.ranked["fa3"],
                                            key=lambda f: (nm.hops[("fa3", f)], f)))


def test_plan_is_bounded_by_profile_limit_and_hint() -> None:
    nm = NeighbourMap.build(
        ["a1", "a2", "a3", "a4", "c"], [],
        {f"fa{i}": ("c", f"a{i}", "foreign_agent", "d") for i in range(1, 5)}
        | {"ha": ("c", "h", "home_agent", "home")})
    assert nm.plan("fa1", seamless=False) == ()           # the profile says no
    assert nm.plan("fa1", seamless=True) == ("fa2", "fa3")   # DEFAULT_LIMIT nearest
    assert nm.plan("fa1", seamless=True, limit=1) == ("fa2",)
    assert nm.plan("fa1", seamless=True, limit=0) == ()
    assert nm.plan("fa1", seamless=True, hint=["fa4", "fa4", "ha", "fa1"]) == (
        "fa4", "fa2")                                    # hint first, only neighbours
    assert nm.plan("nowhere", seamless=True) == ()


def test_an_unreachable_fa_is_no_neighbour() -> None:
    nm = NeighbourMap.build(["a1", "a2", "c1", "c2"], [],
                            {"fa1": ("c1", "a1", "foreign_agent", "d"),
                             "fa2": ("c2", "a2", "foreign_agent", "d")})
    assert nm.ranked == {"fa1": (), "fa2": ()}


def test_standing_cost_per_mn_and_population() -> None:
    one = standing_sas(("fa2", "fa3"), {"fa2": 1, "fa3": 2}, {"fa2": 1, "fa3": 1})
    assert (one.tunnels, one.ike_sas, one.child_sas, one.kernel_sas, one.at_home_agent) \
        == (3, 3, 3, 12, 2)
    many = one.per(1000)
    assert many.child_sas == 3000 and many.kernel_sas == 12000
    assert many.at_home_agent == 2000
    assert standing_sas((), {"fa2": 1}).tunnels == 0


@pytest.mark.parametrize("limit", [1, 2])
def test_default_topology_cost_at_1000_mns(limit: int) -> None:
    """The figures docs/benchmarks.md quotes: an HA<->FA path, one tunnel per FA."""
    nm = NeighbourMap.from_topology(load_topology(TWO_DOMAINS))
    plan = nm.plan("fa1", seamless=True, limit=limit)
    cost = standing_sas(plan, {fa: 1 for fa in plan}).per(1000)
    assert cost.child_sas == 1000 * limit and cost.at_home_agent == 1000 * limit


# ------------------------------------------------------------ what preparing means


def _seamless_info(seamless: bool = True):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from tests.unit.core.test_ha_validation import ALICE, valid_info, walk_mixed
    walk = walk_mixed()
    prof = walk.store.profile(ALICE)
    assert prof is not None
    walk.store.put_profile(replace(prof, seamless_handover=seamless))
    addresses = {n: g.core.ip for n, g in walk.topo.gateways.items()
                 if g.kind == "foreign_agent"}
    return walk, valid_info(walk), addresses


def test_prepare_re_points_the_live_path_with_keys_of_its_own() -> None:
    from controller.core.neighbours import prepare, prepared_psk
    walk, info, addresses = _seamless_info()
    nm = NeighbourMap.from_topology(walk.topo)
    secret = b"s" * 32
    preps = prepare(info, nm, addresses, secret, limit=1)
    assert [p.foreign_agent for p in preps] == ["fa2"]
    live = {t.tunnel_id: t for t in info.tunnels_of("fa1")}
    got = {t.tunnel_id: t for t in preps[0].tunnels}
    assert set(got) == {tid.replace("fa1", "fa2") for tid in live}
    for tid, spec in got.items():
        old = live[tid.replace("fa2", "fa1")]
        fa_end = spec.a if spec.a.gateway == "fa2" else spec.b
        assert fa_end.address == addresses["fa2"]
        assert set(fa_end.selectors) == set((old.a if old.a.gateway == "fa1"
                                             else old.b).selectors)
        assert spec.psk == prepared_psk(secret, tid) and spec.psk != old.psk
    # every FA of the plan (limit 2 in two-domains: fa2, then fa3)
    assert [p.foreign_agent for p in prepare(info, nm, addresses, secret)] == ["fa2", "fa3"]
    # an FA without a care-of address is skipped, not guessed
    assert prepare(info, nm, {"fa3": addresses["fa3"]}, secret, limit=1) == ()


def test_prepare_nothing_without_the_option() -> None:
    from controller.core.neighbours import prepare
    walk, info, addresses = _seamless_info(seamless=False)
    assert info.seamless_handover is False
    assert prepare(info, NeighbourMap.from_topology(walk.topo), addresses, b"s" * 32) == ()


def test_preparation_changes() -> None:
    from dataclasses import replace

    from controller.core.neighbours import prepare, preparation_changes
    walk, info, addresses = _seamless_info()
    nm = NeighbourMap.from_topology(walk.topo)
    preps = prepare(info, nm, addresses, b"s" * 32, limit=1)
    wanted = {t.tunnel_id: t for t in preps[0].tunnels}
    assert preparation_changes(preps, {}) == (tuple(wanted[k] for k in sorted(wanted)), ())
    assert preparation_changes(preps, wanted) == ((), ())
    # a new session secret (full registration): the same tunnels, new keys
    rekeyed = prepare(info, nm, addresses, b"t" * 32, limit=1)
    up, drop = preparation_changes(rekeyed, wanted)
    assert {t.tunnel_id for t in up} == set(wanted) and drop == ()
    # switched off (or moved away): everything standing goes
    assert preparation_changes((), wanted) == ((), tuple(sorted(wanted)))
    stale = {"alice_home.example/ha-fa9": replace(next(iter(wanted.values())))}
    assert preparation_changes(preps, {**wanted, **stale})[1] == ("alice_home.example/ha-fa9",)
