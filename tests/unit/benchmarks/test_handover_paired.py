"""bench.handover_paired without root: the scenario it builds (both MNs, turns A B B A,
the profiles), what it reads from charon's logs (did a move use the prepared IKE_SA?),
the verdict that makes a run INVALID, the ratios and the README row."""

from __future__ import annotations

from typing import Any

import pytest

from bench import handover_paired as hp
from bench import report

# charon's log of a new FA, as a seamless run writes it: alice's tunnel prepared
# (childless IKE_SA), then at her move a CREATE_CHILD_SA on it; bob's from nothing
LOG = """\
07:53:51.684 16[CFG] vici initiate IKE_SA 'alice_home.example/ha-fa2'
07:53:51.685 02[IKE] <alice_home.example/ha-fa2|1> initiating IKE_SA alice_home.example/ha-fa2[1] to 10.0.0.1
07:53:53.389 13[CFG] vici initiate CHILD_SA 'alice_home.example/ha-fa2'
07:53:53.389 01[ENC] <alice_home.example/ha-fa2|1> generating CREATE_CHILD_SA request 2 [ SA No KE TSi TSr ]
07:53:54.972 03[CFG] vici initiate CHILD_SA 'bob_home.example/ha-fa2'
07:53:54.972 01[IKE] <bob_home.example/ha-fa2|2> initiating IKE_SA bob_home.example/ha-fa2[2] to 10.0.0.1
07:53:55.100 01[ENC] <bob_home.example/ha-fa2|2> generating CREATE_CHILD_SA request 3 [ N(REKEY_SA) SA No KE TSi TSr ]
07:53:58.617 12[CFG] vici initiate CHILD_SA 'alice_home.example/ha-fa2'
07:53:58.617 14[IKE] <alice_home.example/ha-fa2|3> initiating IKE_SA alice_home.example/ha-fa2[3] to 10.0.0.1
"""


def test_child_sa_origins_tell_a_prepared_ike_sa_from_a_new_one() -> None:
    got = [(o["tunnel_id"], o["how"]) for o in hp.child_sa_origins(LOG)]
    assert got == [("alice_home.example/ha-fa2", "create_child_sa"),
                   ("bob_home.example/ha-fa2", "ike_sa_init"),
                   ("alice_home.example/ha-fa2", "ike_sa_init")]   # the fallback


STANDING_LOG = """\
10:00:00.099 11[CFG] loaded IKE shared key with id 'psk:alice_home.example/ha-fa2' for: 'a', 'b'
10:00:00.100 10[CFG] vici initiate CHILD_SA 'alice_home.example/ha-fa2'
10:00:00.101 10[IKE] initiating IKE_SA alice_home.example/ha-fa2[7] to 10.0.0.1
10:00:00.140 12[CFG] loaded IKE shared key with id 'psk:alice_home.example/ha-fa2' for: 'a', 'b'
10:00:01.000 10[CFG] vici initiate CHILD_SA 'alice_home.example/ha-fa3'
10:00:01.001 10[IKE] initiating IKE_SA alice_home.example/ha-fa3[8] to 10.0.0.1
10:00:02.500 12[CFG] loaded IKE shared key with id 'psk:alice_home.example/ha-fa3' for: 'a', 'b'
10:00:02.520 13[ENC] <alice_home.example/ha-fa3|8> parsed CREATE_CHILD_SA request 2 [ N(REKEY_SA) SA No KE TSi TSr ]
10:00:02.900 12[CFG] loaded IKE shared key with id 'psk:alice_home.example/ha-fa3' for: 'a', 'b'
10:00:03.000 10[CFG] loaded IKE shared key with id 'psk:bob_home.example/ha-fa2' for: 'a', 'b'
10:00:03.001 10[CFG] vici initiate CHILD_SA 'bob_home.example/ha-fa2'
10:00:03.002 10[IKE] initiating IKE_SA bob_home.example/ha-fa2[9] to 10.0.0.1
10:00:09.000 10[CFG] loaded IKE shared key with id 'psk:bob_home.example/ha-fa2' for: 'a', 'b'
10:00:09.001 10[CFG] vici initiate CHILD_SA 'bob_home.example/ha-fa2'
10:00:09.002 10[IKE] initiating IKE_SA bob_home.example/ha-fa2[10] to 10.0.0.1
"""


def test_a_standing_child_sa_promoted_at_the_move_counts_as_prepared() -> None:
    """A CHILD_SA initiated ahead whose tunnel gets a key over 0.3 s later was promoted
    at the move; a key loaded within ms of the initiation (after a CREATE_CHILD_SA) is
    not a promotion."""
    got = [(o["tunnel_id"], o["how"]) for o in hp.child_sa_origins(STANDING_LOG)]
    assert got == [("alice_home.example/ha-fa2", "ike_sa_init"),
                   ("alice_home.example/ha-fa3", "standing"),
                   # the next move's add loads the key, then initiates: not a promotion
                   ("bob_home.example/ha-fa2", "ike_sa_init"),
                   ("bob_home.example/ha-fa2", "ike_sa_init")]
    moves = [{"mn": "mn1", "to": "fa3"}]
    chk = hp.prepared_check(moves, {"fa3": hp.child_sa_origins(STANDING_LOG)[1:]},
                            "alice_home.example/ha-")
    assert chk["valid"] and chk["standing_child_sa"] == 1


def _moves(n: int) -> list[dict[str, Any]]:
    return [{"mn": "mn1", "to": "fa2" if k % 2 == 0 else "fa1"} for k in range(n)]


def test_prepared_check_is_invalid_under_90_percent() -> None:
    moves = _moves(2)
    fa1_first = {"tunnel_id": "alice_home.example/ha-fa1", "how": "ike_sa_init"}
    prepared = {"fa1": [fa1_first, {"tunnel_id": "alice_home.example/ha-fa1",
                                    "how": "create_child_sa"}],
                "fa2": [{"tunnel_id": "alice_home.example/ha-fa2", "how": "create_child_sa"}]}
    ok = hp.prepared_check(moves, prepared, "alice_home.example/ha-")
    assert ok["valid"] and ok["on_prepared_ike_sa"] == 2 and ok["share"] == 1.0
    fallback = {"fa1": prepared["fa1"],
                "fa2": [{"tunnel_id": "alice_home.example/ha-fa2", "how": "ike_sa_init"}]}
    bad = hp.prepared_check(moves, fallback, "alice_home.example/ha-")
    assert not bad["valid"] and bad["share"] == 0.5 and bad["new_ike_sa"] == 1
    # a move whose initiation is not in the log counts against the run, not for it
    gone = hp.prepared_check(moves, {"fa1": prepared["fa1"]}, "alice_home.example/ha-")
    assert not gone["valid"] and gone["not_found"] == 1
    assert not hp.prepared_check([], prepared, "alice_home.example/ha-")["valid"]


def test_paired_spec_alternates_turns_and_sets_the_profiles() -> None:
    spec = hp.paired_spec("seamless-smooth", 3, 1.5)
    movers = [s["move"] for s in spec["timeline"] if "move" in s]
    assert movers == ["mn1", "mn2", "mn2", "mn1", "mn1", "mn2"]
    moves = [s for s in spec["timeline"] if "move" in s]
    assert [(m["to"], m["port"]) for m in moves if m["move"] == "mn1"] == [
        ("acc2", 3), ("acc1", 2), ("acc2", 3)]
    profiles = spec["overrides"]["vpn_profiles"]
    alice, bob = profiles["alice@home.example"], profiles["bob@home.example"]
    assert alice["seamless_handover"] and alice["smooth_handoff"]
    assert not bob["seamless_handover"] and not bob["smooth_handoff"]
    # the same profile otherwise (bob's own topology profile has other proposals)
    assert alice["security"] == bob["security"] and alice["destinations"] == bob["destinations"]


@pytest.mark.parametrize("kind", sorted(hp.KINDS))
def test_every_kind_builds_a_valid_scenario(kind: str, tmp_path: Any) -> None:
    from mininet_scripts.scenario_spec import scenario_topology
    spec = hp.paired_spec(kind, 2, 1.0)
    topo, _ = scenario_topology(spec, tmp_path)
    for p in spec["probes"]:
        assert p["cn"] in topo.hosts and p["mn"] in topo.mobile_nodes


def _summary(median: float) -> dict[str, Any]:
    return {"n": 20, "median": median, "p95": median * 2, "max": median * 3}


def _side(gap: float, lost: float, zero: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {"moves": 20, "registered": 20, "zero_lost_both_ways": zero}
    for d in ("mn_to_cn", "cn_to_mn"):
        out[f"gap_ms_{d}"] = _summary(gap)
        out[f"protocol_added_ms_{d}"] = _summary(gap - 20)
        out[f"lost_{d}"] = _summary(lost)
    return out


def test_ratios_and_the_readme_row() -> None:
    on, off = _side(30.0, 0.0, zero=20), _side(60.0, 40.0)
    r = hp.ratios(on, off)
    assert r["gap_ms_mn_to_cn"] == 0.5 and r["lost_cn_to_mn"] == 0.0
    assert hp.ratios(off, on)["lost_cn_to_mn"] is None      # nothing to divide by
    res = {"benchmark": "handover-paired", "kind": "seamless", "between": ["acc1", "acc2"],
           "moves_per_mn": 20, "mechanism": on, "baseline": off, "ratio": r,
           "profile_on": {"seamless_handover": True},
           "profile_off": {"seamless_handover": False},
           "prepared_check": {"on_prepared_ike_sa": 20, "moves": 20}, "valid": True}
    (what, figure, target), = report.ROWS["handover-paired"](res)
    assert "seamless" in what and "MN→CN gap 30 vs 60 ms (**0.50×**)" in figure
    assert "prepared IKE_SA used in 20 of 20 moves" in figure and "INVALID" not in figure
    assert "0 lost both ways in ≥ 95 % of moves: met" in target
    assert "whole run" not in figure                         # files before 2026-12-08
    whole = {"mechanism": {"lost_mn_to_cn": 2, "lost_outside_moves_mn_to_cn": 0,
                           "lost_cn_to_mn": 30, "lost_outside_moves_cn_to_mn": 21},
             "baseline": {"lost_mn_to_cn": 900, "lost_outside_moves_mn_to_cn": 0,
                          "lost_cn_to_mn": 800, "lost_outside_moves_cn_to_mn": 0}}
    (_, figure, _), = report.ROWS["handover-paired"]({**res, "whole_run": whole})
    assert ("whole run lost MN→CN 2 vs 900 (outside every move's window 0 vs 0), "
            "CN→MN 30 vs 800 (outside every move's window 21 vs 0)") in figure
    (_, figure, target), = report.ROWS["handover-paired"](
        {**res, "valid": False, "mechanism": _side(30.0, 5.0)})
    assert "**INVALID**" in figure and "≥ 95 % of moves: **not met**" in target


def test_per_mn_splits_the_loss_at_the_link_move() -> None:
    """Issue 14: the loss beyond the emulated link move (the protocol's) is summarised
    per direction and compared on/off; a result of before the split still compares."""
    def move(lost: int, in_move: int) -> dict[str, Any]:
        walk = {"protocol_added_ms": {"mn_to_cn": 10.0, "cn_to_mn": 10.0},
                "lost_in_link_move": {"mn_to_cn": in_move, "cn_to_mn": 0},
                "lost_beyond_link_move": {"mn_to_cn": lost - in_move, "cn_to_mn": 0}}
        return {"registered": True, "gap_ms": {"mn_to_cn": 40.0, "cn_to_mn": 30.0},
                "lost": {"mn_to_cn": lost, "cn_to_mn": 0}, "walk": walk,
                "phases_ms": {"link_move (emulation)": 20.0}}
    on = hp.per_mn([move(30, 20), move(24, 20), move(21, 21)])
    off = hp.per_mn([move(80, 20), move(70, 20), move(90, 20)])
    assert on["lost_beyond_link_move_mn_to_cn"]["median"] == 4
    assert off["lost_beyond_link_move_mn_to_cn"]["median"] == 60
    assert hp.ratios(on, off)["lost_beyond_link_move_mn_to_cn"] == pytest.approx(0.067,
                                                                                 abs=1e-3)
    old = {k: v for k, v in on.items() if not k.startswith("lost_beyond")}
    assert "lost_beyond_link_move_mn_to_cn" not in hp.ratios(old, off)


def test_the_readme_row_names_the_loss_beyond_the_link_move() -> None:
    on, off = _side(30.0, 10.0), _side(60.0, 40.0)
    on["lost_beyond_link_move_mn_to_cn"] = {"median": 4}
    off["lost_beyond_link_move_mn_to_cn"] = {"median": 38}
    res = {"kind": "seamless", "between": ["acc1", "acc2"], "moves_per_mn": 20,
           "mechanism": on, "baseline": off, "ratio": hp.ratios(on, off),
           "profile_on": {"seamless_handover": True},
           "profile_off": {"seamless_handover": False}}
    (_, figure, _), = report.ROWS["handover-paired"](res)
    assert "(4 vs 38 beyond the emulated link move)" in figure
    (_, figure, _), = report.ROWS["handover-paired"]({**res, "mechanism": _side(30.0, 10.0)})
    assert "beyond the emulated link move" not in figure


def test_rrq_at_fa_to_tunnel_up_is_summarised_and_judged() -> None:
    """Issue 14's third target: registration (the RRQ at the new FA) -> tunnel ready
    <= 15 ms, per move from the walk, in the summary and the README row."""
    def move(rrq: float, up: float) -> dict[str, Any]:
        walk = {"timeline_ms": {"move_start": 0.0, "rrq_at_fa": rrq, "tunnel_up": up},
                "protocol_added_ms": {"mn_to_cn": 10.0, "cn_to_mn": 10.0}}
        return {"registered": True, "gap_ms": {"mn_to_cn": 40.0, "cn_to_mn": 30.0},
                "lost": {"mn_to_cn": 1, "cn_to_mn": 0}, "walk": walk,
                "phases_ms": {"link_move (emulation)": 20.0}}
    on = hp.per_mn([move(40.0, 44.5), move(41.0, 46.0), move(40.0, 70.0)])
    off = hp.per_mn([move(40.0, 75.0), move(40.0, 80.0), move(40.0, 76.0)])
    assert on["rrq_at_fa_to_tunnel_up_ms"]["median"] == 5.0
    assert off["rrq_at_fa_to_tunnel_up_ms"]["median"] == 36.0
    res = {"kind": "seamless", "between": ["acc1", "acc2"], "moves_per_mn": 3,
           "mechanism": on, "baseline": off, "ratio": hp.ratios(on, off),
           "profile_on": {"seamless_handover": True},
           "profile_off": {"seamless_handover": False}}
    (_, figure, target), = report.ROWS["handover-paired"](res)
    assert "RRQ at the new FA → tunnel up 5 vs 36 ms" in figure
    assert "RRQ at FA → tunnel up ≤ 15 ms median: met" in target
    (_, _, target), = report.ROWS["handover-paired"]({**res, "mechanism": off})
    assert "RRQ at FA → tunnel up ≤ 15 ms median: **not met**" in target


def test_the_has_rekey_after_the_tunnel_is_summarised_and_printed(capsys: Any) -> None:
    """h14g: a promoted move's ``ha_rekey_done`` (the HA's rekey completed: the downlink
    is on the new FA by then at the latest), per move after the new FA's tunnel was up,
    summarised per MN and printed beside the first packets."""
    def move(up: float, done: float | None) -> dict[str, Any]:
        tl = {"move_start": 0.0, "rrq_at_fa": 40.0, "tunnel_up": up}
        if done is not None:
            tl["ha_rekey_done"] = done
        walk = {"timeline_ms": tl, "protocol_added_ms": {"mn_to_cn": 10.0, "cn_to_mn": 10.0},
                "tunnel_up_to_first_packet_ms": {"mn_to_cn": 30.0, "cn_to_mn": 40.0}}
        return {"registered": True, "gap_ms": {"mn_to_cn": 40.0, "cn_to_mn": 30.0},
                "lost": {"mn_to_cn": 1, "cn_to_mn": 0}, "walk": walk,
                "phases_ms": {"link_move (emulation)": 20.0}}
    on = hp.per_mn([move(50.0, 80.0), move(50.0, 75.0), move(52.0, 90.0)])
    off = hp.per_mn([move(80.0, None), move(85.0, None)])
    assert on["tunnel_up_to_ha_rekey_done_ms"]["median"] == 30.0
    assert off["tunnel_up_to_ha_rekey_done_ms"]["median"] is None
    hp.print_paired("seamless", {"mechanism": on, "baseline": off,
                                 "ratio": hp.ratios(on, off)})
    out = capsys.readouterr().out
    assert ("after the new FA's tunnel up, median: HA's rekey done on 30.0 ms; first "
            "packet MN->CN on 30.0 / off 30.0 ms, CN->MN on 40.0 / off 40.0 ms") in out


# a seamless-smooth walk's quick move back (issue 14): alice is at fa2 from 10:00:00,
# leaves at 10:00:01 and is back at 10:00:03, within the old FA's retire: the move back
# promotes the CHILD_SA still installed (a key, no initiation); a later move to fa2 on
# a standing CHILD_SA; bob's moves start from nothing
LIVE_LOG = """\
10:00:00.050 10[CFG] vici initiate CHILD_SA 'alice_home.example/ha-fa2'
10:00:00.051 10[IKE] initiating IKE_SA alice_home.example/ha-fa2[7] to 10.0.0.1
10:00:00.090 12[CFG] loaded IKE shared key with id 'psk:alice_home.example/ha-fa2' for: 'a', 'b'
10:00:03.040 12[CFG] loaded IKE shared key with id 'psk:alice_home.example/ha-fa2' for: 'a', 'b'
10:00:03.500 10[CFG] vici initiate CHILD_SA 'bob_home.example/ha-fa2'
10:00:03.501 10[IKE] initiating IKE_SA bob_home.example/ha-fa2[9] to 10.0.0.1
10:00:07.000 10[CFG] vici initiate CHILD_SA 'alice_home.example/ha-fa2'
10:00:07.001 10[IKE] initiating IKE_SA alice_home.example/ha-fa2[11] to 10.0.0.1
10:00:09.030 12[CFG] loaded IKE shared key with id 'psk:alice_home.example/ha-fa2' for: 'a', 'b'
"""


def test_moves_are_matched_to_their_initiation_or_promotion_by_time() -> None:
    """With the moves' wall-clock times (``t_move_wall``, seconds of the day as in
    charon's log) each move takes what happened at its new FA in its own window: an
    initiation (its kind as initiated), else a promotion of a CHILD_SA that stood
    (standing, or still live after a quick move back), else nothing; the order of
    initiations no longer has to match the order of moves."""
    t0 = 10 * 3600.0
    moves = [{"mn": "mn1", "to": "fa2", "t_move_wall": t0 + 0.0},
             {"mn": "mn1", "to": "fa1", "t_move_wall": t0 + 1.0},
             {"mn": "mn1", "to": "fa2", "t_move_wall": t0 + 3.0},
             {"mn": "mn1", "to": "fa1", "t_move_wall": t0 + 5.0},
             {"mn": "mn1", "to": "fa2", "t_move_wall": t0 + 9.0}]
    fa1 = [{"tunnel_id": "alice_home.example/ha-fa1", "how": "create_child_sa",
            "at": t0 + s} for s in (1.03, 5.03)]
    origins = {"fa1": fa1, "fa2": hp.child_sa_origins(LIVE_LOG)}
    keys = {"fa2": hp.key_loads(LIVE_LOG)}
    chk = hp.prepared_check(moves, origins, "alice_home.example/ha-", keys=keys)
    assert chk["per_move"] == ["ike_sa_init", "create_child_sa", "live",
                               "create_child_sa", "standing"]
    assert chk["on_prepared_ike_sa"] == 4 and chk["live_child_sa"] == 1
    assert chk["standing_child_sa"] == 1 and chk["new_ike_sa"] == 1


def test_the_whole_runs_loss_outside_the_moves_windows_is_counted_and_printed(
        capsys: Any) -> None:
    """A blip on the live path seconds after a move (a preparation's new CHILD_SA,
    session 20) falls in no move's window: the probe's whole-run loss minus what the
    moves counted shows it, per MN and direction."""
    moves = [{"registered": True, "lost": {"mn_to_cn": 2, "cn_to_mn": 3}},
             {"registered": True, "lost": {"mn_to_cn": 0, "cn_to_mn": 1}}, {"registered": False}]
    probes = [{"mn": "mn1", "mn_to_cn_sent": 9000, "mn_to_cn_lost": 2,
               "cn_to_mn_sent": 9000, "cn_to_mn_lost": 15},
              {"mn": "mn2", "mn_to_cn_lost": 40, "cn_to_mn_lost": 44}]
    on = hp.whole_run(probes, "mn1", moves)
    assert on == {"lost_mn_to_cn": 2, "lost_outside_moves_mn_to_cn": 0,
                  "lost_cn_to_mn": 15, "lost_outside_moves_cn_to_mn": 11}
    assert hp.whole_run(probes, "mn3", moves) is None and hp.whole_run(None, "mn1", []) is None
    s = hp.per_mn([])
    hp.print_paired("seamless", {"mechanism": s, "baseline": s, "ratio": hp.ratios(s, s),
                                 "whole_run": {"mechanism": on, "baseline": None}})
    assert ("whole run, probe lost (of it outside every move's window): MN->CN on 2 (0), "
            "off None (None); CN->MN on 15 (11), off None (None)") in capsys.readouterr().out
