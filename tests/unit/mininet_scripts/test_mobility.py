"""controller.mobility: seeded models repeat exactly, move only between adjacent cells,
keep their dwell bounds; Gauss-Markov's alpha is a memory; traces round-trip and a bad
trace is refused with the row named."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import networkx as nx
import pytest

from controller.mobility import (MobilityError, Step, check_trace, dump_trace, gauss_markov,
                                 make_trace, moves_of, parse_model, parse_trace, random_walk,
                                 random_waypoint)
from controller.topogen import cell_graph

GRID = cell_graph({"cells": "4x4", "mns": 0})
START = {f"mn{i}": f"acc{1 + i % 16}" for i in range(1, 21)}
MODELS: list[tuple[str, dict[str, Any]]] = [
    ("random_walk", {"dwell": [5, 20]}),
    ("random_waypoint", {"dwell": [5, 20], "pause": [0, 10]}),
    ("gauss_markov", {"dwell": [5, 20], "alpha": 0.8}),
]


def per_mn(trace: Sequence[Step]) -> dict[str, list[Step]]:
    out: dict[str, list[Step]] = defaultdict(list)
    for s in trace:
        out[s.mn].append(s)
    return out


@pytest.mark.parametrize("model, params", MODELS)
def test_same_seed_same_trace_other_seed_other_trace(model: str,
                                                     params: dict[str, Any]) -> None:
    a = make_trace({"model": model, "seed": 7, **params}, GRID, START, 300)
    b = make_trace({"model": model, "seed": 7, **params}, GRID, START, 300)
    c = make_trace({"model": model, "seed": 8, **params}, GRID, START, 300)
    assert a == b and a != c
    # one MN's moves do not depend on which other MNs exist
    alone = make_trace({"model": model, "seed": 7, **params}, GRID, {"mn3": START["mn3"]},
                       300)
    assert alone == [s for s in a if s.mn == "mn3"]


@pytest.mark.parametrize("model, params", MODELS)
def test_moves_between_adjacent_cells_within_dwell_bounds(model: str,
                                                          params: dict[str, Any]) -> None:
    trace = make_trace({"model": model, "seed": 1, **params}, GRID, START, 300)
    check_trace(trace, START, GRID)  # adjacency, known names, t=0 is the start
    assert [s.t for s in trace] == sorted(s.t for s in trace)
    assert len(moves_of(trace)) > 3 * len(START)
    lo, hi = params["dwell"]
    hi += params.get("pause", [0, 0])[1]
    for mn, steps in per_mn(trace).items():
        assert steps[0] == Step(0.0, mn, START[mn])
        for prev, nxt in zip(steps, steps[1:]):
            assert GRID.has_edge(prev.cell, nxt.cell)
            assert lo - 1e-3 <= nxt.t - prev.t <= hi + 1e-3
        assert steps[-1].t < 300


def _straightness(alpha: float) -> float:
    """Share of consecutive moves that keep their direction, on a 12x12 grid."""
    grid = cell_graph({"cells": "12x12", "mns": 0})
    start = {f"mn{i}": f"acc{(i * 37) % 144 + 1}" for i in range(40)}
    trace = gauss_markov(grid, start, 3000, seed=3, dwell=(1.0, 1.0), alpha=alpha)
    same = total = 0
    for steps in per_mn(trace).values():
        cells = [s.cell for s in steps]
        dirs = [tuple(b - a for a, b in zip(grid.nodes[x]["pos"], grid.nodes[y]["pos"]))
                for x, y in zip(cells, cells[1:])]
        same += sum(d1 == d2 for d1, d2 in zip(dirs, dirs[1:]))
        total += len(dirs) - 1
    return same / total


def test_gauss_markov_alpha_is_a_memory() -> None:
    free, some, strong, full = (_straightness(a) for a in (0.0, 0.5, 0.9, 1.0))
    assert free < some < strong < full
    assert free < 0.5 and full > 0.85


def test_random_waypoint_follows_shortest_paths_to_waypoints() -> None:
    line = nx.path_graph([f"acc{k}" for k in range(1, 9)])
    trace = random_waypoint(line, {"mn1": "acc1"}, 1000, seed=2, dwell=(1, 1), pause=(50, 50))
    # between pauses, the walk is monotone along the line (a shortest path)
    cells = [int(s.cell[3:]) for s in trace]
    times = [s.t for s in trace]
    legs, leg = [], [cells[0]]
    for (c, t), (c2, t2) in zip(zip(cells, times), zip(cells[1:], times[1:])):
        if t2 - t > 10:
            legs.append(leg)
            leg = [c]
        leg.append(c2)
    legs.append(leg)
    assert len(legs) > 3
    for leg in legs:
        steps = [b - a for a, b in zip(leg, leg[1:])]
        assert all(s == steps[0] for s in steps) and abs(steps[0]) == 1


def test_random_walk_stays_put_without_neighbours() -> None:
    lone = nx.Graph()
    lone.add_node("acc1")
    assert random_walk(lone, {"mn1": "acc1"}, 100, seed=1) == [Step(0.0, "mn1", "acc1")]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_trace_round_trip(fmt: str) -> None:
    trace = make_trace({"model": "random_walk", "seed": 4, "dwell": [3, 9]}, GRID, START, 120)
    assert parse_trace(dump_trace(trace, fmt), f"t.{fmt}") == trace


@pytest.mark.parametrize("text, where", [
    ("time,mn,cell\n0,mn1,acc1\n", "t.csv: line 1: expected the header t,mn,cell"),
    ("t,mn,cell\n0,mn1\n", "t.csv: line 2: expected 3 fields"),
    ("t,mn,cell\nsoon,mn1,acc1\n", "t.csv: line 2: time 'soon' is not seconds >= 0"),
    ("t,mn,cell\n-1,mn1,acc1\n", "t.csv: line 2: time -1.0 is not seconds >= 0"),
    ("t,mn,cell\n5,mn1,acc2\n4,mn1,acc1\n", "t.csv: line 3: time 4 is before"),
    ("t,mn,cell\n5,,acc2\n", "t.csv: line 2: mn '' is not a name"),
    ('{"steps": [{"t": 1, "mn": "mn1"}]}', "t.csv: steps[0]: expected {t, mn, cell}"),
    ('{"steps": [[1, "mn1", "acc2"], [0.5, "mn1", "acc1"]]}', "t.csv: steps[1]: time 0.5"),
    ("{nope", "t.csv: not valid JSON"),
])
def test_bad_trace_named(text: str, where: str) -> None:
    with pytest.raises(MobilityError) as err:
        parse_trace(text, "t.csv")
    assert str(err.value).startswith(where)


@pytest.mark.parametrize("steps, where", [
    ([Step(1, "mn99", "acc2")], "no mobile node 'mn99'"),
    ([Step(1, "mn1", "acc99")], "no cell 'acc99'"),
    ([Step(0, "mn1", "acc5")], "mn1 starts at 'acc2'"),
    ([Step(1, "mn1", "acc2")], "mn1 is already at 'acc2'"),
    ([Step(1, "mn1", "acc16")], "'acc16' is not adjacent to 'acc2'"),
])
def test_trace_checked_against_topology(steps: list[Step], where: str) -> None:
    with pytest.raises(MobilityError, match=where):
        check_trace(steps, START, GRID, "t.csv")
    if "adjacent" in where:
        check_trace(steps, START, GRID, "t.csv", adjacent=False)


@pytest.mark.parametrize("body, where", [
    ({"model": "teleport"}, "mobility.model: 'teleport' is not one of"),
    ({"model": "random_walk", "alpha": 0.5}, "mobility.alpha: unknown key for random_walk"),
    ({"model": "random_walk", "dwell": [9, 3]}, "mobility.dwell: expected [min, max]"),
    ({"model": "random_walk", "dwell": [0, 3]}, "the minimum dwell must be > 0"),
    ({"model": "gauss_markov", "alpha": 1.5}, "mobility.alpha: expected a number in 0..1"),
    ({"model": "random_walk", "seed": -1}, "mobility.seed: expected an integer >= 0"),
    ("random_walk", "mobility: expected a mapping"),
])
def test_bad_model_named(body: Any, where: str) -> None:
    with pytest.raises(MobilityError) as err:
        parse_model(body, "e.yaml")
    assert str(err.value).startswith("e.yaml: ") and where in str(err.value)


def test_defaults() -> None:
    name, seed, params = parse_model({"model": "gauss_markov"})
    assert (name, seed) == ("gauss_markov", 1)
    assert params == {"dwell": (10.0, 60.0), "alpha": 0.75, "sigma_heading": math.pi / 2}
