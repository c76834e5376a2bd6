"""Scenario checks fail when their data is missing (issue 13): a gateway whose charon
answered with an error, a move without a probe, a route-optimised MN whose traffic the
HA's SA counters show.  Each check is fed the case it must refuse, and the case it
must accept (so that a refusal is not just a check that always fails)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mininet_scripts import scenario, scenario_checks as checks

ROOT = Path(__file__).resolve().parents[3]
TID = "alice_home.example/ha-fa1"


def sa(tid: str, packets_in: int = 0, packets_out: int = 0,
       established: bool = True) -> dict[str, Any]:
    return {"tunnel_id": tid, "state": "ESTABLISHED", "established": established,
            "bytes_in": 100 * packets_in, "bytes_out": 100 * packets_out,
            "packets_in": packets_in, "packets_out": packets_out}


ERROR = {"error": "[Errno 111] Connection refused"}

# ------------------------------------------------------------------ present / absent


def test_absent_fails_when_the_gateways_charon_answers_with_an_error() -> None:
    problems = checks.tunnel_problems({"ha": ERROR, "fa1": []}, [], [["ha", TID]])
    assert len(problems) == 1
    assert "ha's charon answered with an error" in problems[0]
    assert "Connection refused" in problems[0]


def test_absent_fails_for_a_gateway_missing_from_the_answer() -> None:
    problems = checks.tunnel_problems({"fa1": []}, [], [["ha", TID]])
    assert problems and "ha is not in GET /v1/tunnels" in problems[0]


def test_absent_passes_only_on_an_answer_without_the_tunnel() -> None:
    assert checks.tunnel_problems({"ha": [sa("static/x")]}, [], [["ha", TID]]) == []
    assert checks.tunnel_problems({"ha": [sa(TID)]}, [], [["ha", TID]]) == [
        f"tunnel {TID} still at ha"]
    # an SA not (yet / any more) established is not there
    assert checks.tunnel_problems({"ha": [sa(TID, established=False)]}, [],
                                  [["ha", TID]]) == []


def test_present_fails_on_an_error_and_names_it() -> None:
    problems = checks.tunnel_problems({"ha": ERROR}, [["ha", TID]], [])
    assert problems and "cannot tell whether tunnel" in problems[0]
    assert "error" in problems[0]
    assert checks.tunnel_problems({"ha": [sa(TID)]}, [["ha", TID]], []) == []


# ------------------------------------------------------------------ HA traffic counters


def _gws(ha: list[dict[str, Any]] | dict[str, Any],
         fa: list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
    return {"ha": ha, "fa1": fa}


RO = "bob_home.example/cngw2-fa1"
STATIC = "static/cngw-ha"


def test_ha_traffic_passes_when_only_the_fa_carries_the_probe() -> None:
    before = _gws([sa(STATIC, 3, 3)], [sa(RO, 1000, 1000)])
    after = _gws([sa(STATIC, 3, 3)], [sa(RO, 2000, 2000)])
    assert checks.ha_traffic_problems("mn2", "ha", "fa1", before, after, 1000, 1.0) == []


def test_ha_traffic_fails_when_the_has_counters_move() -> None:
    """The HA's SAs carried the MN's packets: whatever the tunnel's name (here a static
    one: names prove nothing), the counters show it."""
    before = _gws([sa(STATIC, 3, 3)], [sa(RO, 1000, 1000)])
    after = _gws([sa(STATIC, 1003, 1003)], [sa(RO, 2000, 2000)])
    problems = checks.ha_traffic_problems("mn2", "ha", "fa1", before, after, 1000, 1.0)
    assert len(problems) == 1 and "the HA (ha) carried 2000 ESP packets" in problems[0]


def test_ha_traffic_counts_an_sa_that_appeared_in_the_window() -> None:
    before = _gws([], [sa(RO, 1000, 1000)])
    after = _gws([sa("bob_home.example/ha-fa1", 600, 600)], [sa(RO, 2000, 2000)])
    assert checks.ha_traffic_problems("mn2", "ha", "fa1", before, after, 1000, 1.0)


def test_ha_traffic_fails_when_nothing_flowed() -> None:
    """No traffic anywhere proves nothing about where the traffic goes."""
    before = _gws([sa(STATIC)], [sa(RO, 10, 10)])
    after = _gws([sa(STATIC)], [sa(RO, 10, 10)])
    problems = checks.ha_traffic_problems("mn2", "ha", "fa1", before, after, 1000, 1.0)
    assert problems and "the probe's traffic is not flowing" in problems[0]


def test_ha_traffic_fails_without_a_probe() -> None:
    same = _gws([], [sa(RO, 10, 10)])
    problems = checks.ha_traffic_problems("mn2", "ha", "fa1", same, same, None, 1.0)
    assert problems and "no probe of mn2 is running" in problems[0]


@pytest.mark.parametrize("when", ["before", "after"])
def test_ha_traffic_fails_when_the_has_charon_answers_with_an_error(when: str) -> None:
    good = _gws([sa(STATIC)], [sa(RO, 1000, 1000)])
    bad = _gws(ERROR, [sa(RO, 2000, 2000)])
    before, after = (bad, good) if when == "before" else (good, bad)
    problems = checks.ha_traffic_problems("mn2", "ha", "fa1", before, after, 1000, 1.0)
    assert problems and "cannot read ha's SA counters" in problems[0]


def test_packets_carried_survives_a_replaced_sa() -> None:
    # counter went down: the SA was replaced in the window; its new count is all new
    assert checks.packets_carried([sa("t", 500, 500)], [sa("t", 5, 5)]) == 10
    assert checks.packets_carried([sa("t", 5, 5)], [sa("t", 8, 9)]) == 7


# ------------------------------------------------------------------ move bounds


MEASURED = {"mn": "mn1", "gap_ms": {"mn_to_cn": 40.0, "cn_to_mn": 45.0},
            "lost": {"mn_to_cn": 30, "cn_to_mn": 35}}
UNMEASURED = {"mn": "mn1"}


def test_max_gap_fails_for_a_move_without_a_probe() -> None:
    problems = checks.move_bound_problems(0, UNMEASURED, 1000, None)
    assert problems == ["move 0 (mn1): max_gap_ms 1000 set but the move was not "
                        "measured (no probe of mn1)"]


def test_max_lost_fails_for_a_move_without_a_probe() -> None:
    problems = checks.move_bound_problems(0, UNMEASURED, None, 1000)
    assert problems and "max_lost 1000 set but the move was not measured" in problems[0]


def test_move_bounds_on_measured_moves() -> None:
    assert checks.move_bound_problems(0, MEASURED, 1000, 1000) == []
    assert checks.move_bound_problems(0, MEASURED, 42, 32) == [
        "move 0: gap cn_to_mn 45.0 ms > 42 ms", "move 0: lost cn_to_mn 35 > 32"]
    assert checks.move_bound_problems(0, UNMEASURED, None, None) == []   # no bound


def test_lost_less_fails_for_an_unmeasured_or_absent_mover() -> None:
    moves = [MEASURED, {"mn": "mn2"}]
    assert checks.unmeasured_moves(moves, ["mn1", "mn2"]) == [
        "mn2 has a move without a probe measurement: its loss cannot be compared"]
    assert checks.unmeasured_moves([MEASURED], ["mn1", "mn3"]) == [
        "mn3 did not move: no move loss to compare"]
    assert checks.unmeasured_moves([MEASURED, dict(MEASURED, mn="mn2")],
                                   ["mn1", "mn2"]) == []


# ------------------------------------------------------------------ wired into the runner


def _run(spec: dict[str, Any]) -> scenario.ScenarioRun:
    """A ScenarioRun with nothing started: enough for _expect and _check_once."""
    run = scenario.ScenarioRun.__new__(scenario.ScenarioRun)
    run.spec = spec
    run.failed = []
    run.rates = {}
    run.probes = []
    run.demo = SimpleNamespace(rest="127.0.0.1:1")
    return run


def test_runner_fails_a_move_bound_without_a_probe() -> None:
    run = _run({"name": "x", "expect": {"max_gap_ms": 1000, "max_lost": 1000}})
    move = {"mn": "mn1", "from": "fa1", "to": "fa2", "kind": "intra-domain",
            "registered": True}
    run._expect({"moves": [move], "probes": []})
    assert len(run.failed) == 2 and all("not measured" in f for f in run.failed)


def test_runner_fails_lost_less_and_max_probe_lost_without_data() -> None:
    run = _run({"name": "x", "expect": {"lost_less": ["mn1", "mn2"], "max_probe_lost": 5}})
    move = {"mn": "mn1", "from": "fa1", "to": "fa2", "kind": "?", "registered": True}
    run._expect({"moves": [move, dict(move, mn="mn2")], "probes": []})
    assert "max_probe_lost: no probe ran, nothing was measured" in run.failed
    assert any(f.startswith("lost_less: mn1 has a move without") for f in run.failed)


def test_runner_absent_check_fails_on_a_charon_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scenario, "rest_get", lambda rest, path: {"gateways": {"ha": ERROR}})
    run = _run({"name": "x"})
    problems = run._check_once({"absent": [["ha", TID]]})
    assert problems and "ha's charon answered with an error" in problems[0]


def test_runner_ha_traffic_reads_the_counters_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    from controller.config import load_topology
    answers = iter([_gws([sa(STATIC)], [sa(RO, 0, 0)]),
                    _gws([sa(STATIC, 900, 900)], [sa(RO, 1000, 1000)])])
    monkeypatch.setattr(scenario, "rest_get",
                        lambda rest, path: {"gateways": next(answers)})
    monkeypatch.setattr(scenario.time, "sleep", lambda s: None)
    run = _run({"name": "x"})
    run.topo = load_topology(ROOT / "topology" / "two-domains.yaml")
    run.location = {"mn2": run.topo.mobile_nodes["mn2"].attach_switch}
    running = SimpleNamespace(poll=lambda: None)
    run.probes = [{"mn": "mn2", "rate": 1000, "mn_proc": running, "cn_proc": running}]
    problems = run._check_once({"ha_carries_no_traffic_of": "mn2"})
    assert len(problems) == 1 and "the HA (ha) carried 1800 ESP packets" in problems[0]


def _moves(mn: str, losses: list[int], d: str = "cn_to_mn") -> list[dict[str, Any]]:
    other = "mn_to_cn" if d == "cn_to_mn" else "cn_to_mn"
    return [{"mn": mn, "from": "fa1", "to": "fa2", "kind": "?", "registered": True,
             "lost": {d: n, other: 99}} for n in losses]


def test_lost_less_compares_median_moves_not_totals() -> None:
    # The flake: one of mn1's moves stalled by a loaded machine (330) outweighed mn2's
    # total (177); smooth handoff still saved every other move.
    moves = _moves("mn1", [0, 330, 0, 2]) + _moves("mn2", [45, 50, 40, 42])
    assert checks.lost_less_problems(moves, "mn1", "mn2", ("cn_to_mn",)) == []
    run = _run({"name": "x", "expect": {"lost_less": ["mn1", "mn2", "cn_to_mn"]}})
    run._expect({"moves": moves, "probes": []})
    assert run.failed == []
    assert run_lost(moves) == {"mn1": [0, 330, 0, 2], "mn2": [45, 50, 40, 42]}


def run_lost(moves: list[dict[str, Any]]) -> dict[str, list[int]]:
    run = _run({"name": "x", "expect": {"report_lost": ["mn1", "mn2", "cn_to_mn"]}})
    result: dict[str, Any] = {"moves": moves, "probes": []}
    run._expect(result)
    return result["lost_per_move"]


def test_lost_less_fails_when_the_mechanism_stops_working() -> None:
    # Smooth handoff off for mn1 as well: both lose the HA's re-pointing gap.
    broken = _moves("mn1", [44, 52, 38, 47]) + _moves("mn2", [45, 50, 40, 42])
    problems = checks.lost_less_problems(broken, "mn1", "mn2", ("cn_to_mn",))
    assert problems == ["mn1 lost 45.5 packets (cn_to_mn) in the median move, not at "
                        "most 0.5 x mn2's 43.5"]
    # ... even where mn1's median happens to be a little below mn2's
    assert checks.lost_less_problems(_moves("mn1", [40, 41, 39, 44]) +
                                     _moves("mn2", [45, 50, 40, 42]), "mn1", "mn2",
                                     ("cn_to_mn",))
    run = _run({"name": "x", "expect": {"lost_less": ["mn1", "mn2", "cn_to_mn"]}})
    run._expect({"moves": broken, "probes": []})
    assert run.failed and run.failed[0].startswith("lost_less: mn1 lost 45.5")


def test_lost_less_needs_a_loss_to_compare() -> None:
    moves = _moves("mn1", [0, 0]) + _moves("mn2", [0, 3, 0])
    assert checks.lost_less_problems(moves, "mn1", "mn2", ("cn_to_mn",)) == [
        "mn2 lost nothing (cn_to_mn) in the median move: no loss to compare"]
    # both directions: mn2's 99 uplink per move count, and mn1 lost as many
    assert checks.lost_less_problems(moves, "mn1", "mn2")[0].startswith("mn1 lost 99")


# ------------------------------------------------------------------ per-move bounds (issue 14)


def _walk(**points: float) -> dict[str, Any]:
    """A move's walk (``demo_results.move_walk``'s shape) from its points in ms."""
    tl = dict(sorted(points.items(), key=lambda kv: kv[1]))
    names = list(tl)
    return {"timeline_ms": tl,
            "segments": [{"from": a, "to": b, "ms": round(tl[b] - tl[a], 3)}
                         for a, b in zip(names, names[1:])]}


def _move(mn: str, gap: tuple[float, float], lost: tuple[int, int],
          tunnel_up: float = 40.0, first_down: float | None = None) -> dict[str, Any]:
    first = first_down if first_down is not None else tunnel_up + 8.0
    return {"mn": mn, "from": "fa1", "to": "fa2", "registered": True,
            "gap_ms": {"mn_to_cn": gap[0], "cn_to_mn": gap[1]},
            "lost": {"mn_to_cn": lost[0], "cn_to_mn": lost[1]},
            "walk": _walk(move_start=0.0, link_moved=15.0, rrq_at_fa=20.0,
                          tunnel_up=tunnel_up, first_packet_cn_to_mn=first,
                          first_packet_mn_to_cn=first + 2.0)}


def test_per_move_bound_per_direction_fails_and_names_the_move_and_segment() -> None:
    moves = [_move("mn1", (40, 45), (40, 44)), _move("mn1", (42, 44), (41, 43)),
             _move("mn1", (41, 400), (40, 390), tunnel_up=41.0, first_down=400.0)]
    gap = {"mn_to_cn": 100, "cn_to_mn": 100}
    problems = checks.per_move_problems(moves, gap, None)
    assert len(problems) == 1
    p = problems[0]
    assert p.startswith("move 2 (mn1 fa1 -> fa2): gap cn_to_mn 400.0 ms > 100 ms")
    # the segment that grew against the run's other moves: tunnel up -> first packet
    assert "tunnel_up -> first_packet_cn_to_mn" in p, p
    # within the bounds: no problem (the check can pass)
    assert checks.per_move_problems(moves[:2], gap, {"mn_to_cn": 50, "cn_to_mn": 50}) == []


def test_per_move_lost_bound_per_direction_only_the_named_direction() -> None:
    moves = [_move("mn1", (40, 45), (40, 3)), _move("mn1", (40, 45), (41, 0))]
    assert checks.per_move_problems(moves, None, {"cn_to_mn": 5}) == []
    problems = checks.per_move_problems(moves, None, {"cn_to_mn": 2})
    assert len(problems) == 1 and "move 0 (mn1 fa1 -> fa2): lost cn_to_mn 3 > 2" in problems[0]


def test_per_move_bounds_per_mobile_node() -> None:
    moves = [_move("mn1", (40, 45), (40, 0)), _move("mn2", (40, 45), (40, 44))]
    lost = {"mn1": {"cn_to_mn": 5}, "mn2": 100}
    assert checks.per_move_problems(moves, None, lost) == []
    problems = checks.per_move_problems(moves, None, {"mn1": 50, "mn2": {"cn_to_mn": 10}})
    assert len(problems) == 1 and problems[0].startswith(
        "move 1 (mn2 fa1 -> fa2): lost cn_to_mn 44 > 10")


def test_per_move_bound_on_an_unmeasured_move_is_a_problem() -> None:
    moves = [{"mn": "mn1", "from": "fa1", "to": "fa2", "registered": True}]
    problems = checks.per_move_problems(moves, {"mn_to_cn": 100}, None)
    assert problems == ["move 0 (mn1 fa1 -> fa2): move_max_gap_ms set but the move was "
                        "not measured (no probe of mn1)"]
    # an MN the bound does not name is not bounded
    assert checks.per_move_problems(moves, {"mn2": 100}, None) == []


def test_grown_segment_without_other_moves_is_the_longest() -> None:
    move = _move("mn1", (40, 300), (40, 290), tunnel_up=250.0)
    assert checks.grown_segment(move, []) == ("rrq_at_fa -> tunnel_up", 230.0, None)


def test_runner_checks_per_move_bounds() -> None:
    run = _run({"name": "x", "expect": {"move_max_gap_ms": {"cn_to_mn": 100}}})
    moves = [_move("mn1", (40, 45), (40, 44)), _move("mn1", (40, 450), (40, 44))]
    run._expect({"moves": moves, "probes": []})
    assert len(run.failed) == 1 and run.failed[0].startswith(
        "move 1 (mn1 fa1 -> fa2): gap cn_to_mn 450.0 ms > 100 ms")
