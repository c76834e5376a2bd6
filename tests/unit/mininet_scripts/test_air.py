"""The carrier link model's pure parts: which cell links a network gets at build time,
their names (Linux's 15 characters), and a move's carrier flips in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.config import load_topology
from mininet_scripts.air import (AirError, AirSegments, Cell, air_bridge, mn_side, ovs_end,
                                 plan_cells)

ROOT = Path(__file__).resolve().parents[3]


def test_plan_two_domains_every_access_switch_at_the_attach_port() -> None:
    topo = load_topology(ROOT / "topology" / "two-domains.yaml")
    plan = plan_cells(topo)
    # mn1 attach acc1:2, mn2 acc1:3, mn3 acc2:2: mn1's cell on acc2 would be mn3's port
    assert plan["mn1"] == [("acc1", 2), ("acc3", 2)]
    assert plan["mn2"] == [("acc1", 3), ("acc2", 3), ("acc3", 3)]
    assert plan["mn3"] == [("acc2", 2)]     # acc1:2 and acc3:2 went to mn1
    cells = [c for cs in plan.values() for c in cs]
    assert len(cells) == len(set(cells))


def test_plan_extra_cells_first_and_never_a_used_port() -> None:
    topo = load_topology(ROOT / "topology" / "two-domains.yaml")
    fa1_inside = (topo.gateways["fa1"].inside.switch, topo.gateways["fa1"].inside.port)
    plan = plan_cells(topo, {"mn1": [("acc2", 3), fa1_inside, ("nosuch", 4)],
                             "mn2": [("acc2", 3), ("acc2", 4)]})
    assert plan["mn1"][:2] == [("acc1", 2), ("acc2", 3)]
    assert fa1_inside not in plan["mn1"]
    assert ("acc2", 3) not in plan["mn2"] and ("acc2", 4) in plan["mn2"]


def test_plan_bounded_on_big_grids() -> None:
    topo = load_topology(ROOT / "topology" / "two-domains.yaml")
    plan = plan_cells(topo, {"mn2": [("acc2", 4)]}, max_eager=8)   # 3 MNs x 3 cells = 9
    assert plan == {"mn1": [("acc1", 2)], "mn2": [("acc1", 3), ("acc2", 4)],
                    "mn3": [("acc2", 2)]}


def test_names_fit_linux() -> None:
    br = air_bridge("abcd", 99)
    assert br == "abcdm99"
    for name in (mn_side(br), f"{br}-c99", ovs_end("abca9", 65279)):
        assert len(name) <= 15


class _Carrier:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def set_up(self, name: str, up: bool) -> None:
        self.calls.append((name, up))

    def close(self) -> None:
        pass


def test_flip_old_down_then_new_up() -> None:
    air = AirSegments("mv")
    fake = _Carrier()
    air.carrier = fake  # type: ignore[assignment]
    air.cells = {("acc1", 2): Cell("mn1", "acc1", 2, "mva1-eth2", "mvm1-c1"),
                 ("acc2", 3): Cell("mn1", "acc2", 3, "mva2-eth3", "mvm1-c2"),
                 ("acc2", 4): Cell("mn2", "acc2", 4, "mva2-eth4", "mvm2-c2")}
    air.current = {"mn1": ("acc1", 2)}
    air.flip("mn1", ("acc2", 3))
    assert fake.calls == [("mvm1-c1", False), ("mvm1-c2", True)]
    assert air.current["mn1"] == ("acc2", 3)
    with pytest.raises(AirError, match="mn2's"):
        air.flip("mn1", ("acc2", 4))
    assert air.current["mn1"] == ("acc2", 3)


def test_name_pattern_is_ours_only() -> None:
    pat = AirSegments("mv").name_re()
    assert all(pat.match(n) for n in ("mvm1", "mvm12-mn", "mvm1-c3"))
    assert not any(pat.match(n) for n in ("mvmc1", "mva1-eth2", "mvm", "xmvm1"))


def test_scenario_move_cells_from_the_timeline() -> None:
    from mininet_scripts.scenario import move_cells
    topo = load_topology(ROOT / "topology" / "two-domains.yaml")
    spec = {"timeline": [{"sleep": 1}, {"move": "mn1", "to": "acc2", "port": 3},
                         {"move": "mn1", "to": "acc1", "port": 2},
                         {"move": "mn1", "to": "acc2", "port": 3},
                         {"move": "mn2", "to": "acc3"}, {"move": "nobody", "to": "acc3"}]}
    assert move_cells(spec, topo) == {"mn1": [("acc2", 3), ("acc1", 2)],
                                      "mn2": [("acc3", 3)]}
