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
