"""Issue 14: each move down to the first packet through in each direction: the
emulation's link move, the controller's marks, the MN's events and the probes' last /
first packet around the gap on one clock, in the demo's and the scenario's results."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mininet_scripts.demo_results import move_walk, print_results, walk_lines

T0 = 100.0
#: the MN's events: an RRQ of the move before (not this move's) and this move's
EVENTS = [{"event": "rrq_sent", "t": T0 - 1.5}, {"event": "rrq_sent", "t": T0 + 0.018},
          {"event": "registered", "t": T0 + 0.038}]


def window(gap_ms: float, last: float, first: float) -> SimpleNamespace:
    return SimpleNamespace(gap_ms=gap_ms, gap_start_ns=int(last * 1e9),
                           gap_end_ns=int(first * 1e9), lost=int(gap_ms) - 1)


def a_move() -> tuple[dict, dict]:
    move = {"t_move": T0, "link_move_ms": 15.0, "from": "fa1", "to": "fa2"}
    marks = {"link_down": T0 + 0.002, "link_up": T0 + 0.014, "rrq_at_fa": T0 + 0.020,
             "ama_at_fa": T0 + 0.021, "tunnel_up": T0 + 0.035, "rrp_sent": T0 + 0.036}
    return move, marks


def test_walk_reaches_the_first_packet_each_way() -> None:
    move, marks = a_move()
    w = move_walk(move, marks, EVENTS, {"t": T0 + 0.038},
                  window(40.0, T0 - 0.001, T0 + 0.039),      # what the CN received
                  window(45.0, T0 - 0.0005, T0 + 0.0445))    # what the MN received
    t = w["timeline_ms"]
    assert list(t)[:4] == ["last_packet_mn_to_cn", "last_packet_cn_to_mn", "move_start",
                           "link_down"]
    assert list(t)[-1] == "first_packet_cn_to_mn"
    assert t["move_start"] == 0.0 and t["last_packet_mn_to_cn"] == pytest.approx(-1.0)
    assert t["first_packet_mn_to_cn"] == pytest.approx(39.0)
    assert w["first_packet_ms"] == pytest.approx({"mn_to_cn": 39.0, "cn_to_mn": 44.5})
    assert w["tunnel_up_to_first_packet_ms"] == pytest.approx(
        {"mn_to_cn": 4.0, "cn_to_mn": 9.5})
    assert w["protocol_added_ms"] == {"mn_to_cn": 25.0, "cn_to_mn": 30.0}
    seg = {(s["from"], s["to"]): s["ms"] for s in w["segments"]}
    assert seg[("rrp_sent", "mn_registered")] == pytest.approx(2.0)
    assert sum(s["ms"] for s in w["segments"]) == pytest.approx(
        t["first_packet_cn_to_mn"] - t["last_packet_mn_to_cn"])


def test_walk_without_probe_or_registration_keeps_what_it_has() -> None:
    move, marks = a_move()
    nothing = SimpleNamespace(gap_ms=0.0, gap_start_ns=None, gap_end_ns=None, lost=0)
    w = move_walk(move, marks, [], None, nothing, nothing)
    assert "mn_registered" not in w["timeline_ms"] and w["rrq_tries"] == 0
    assert w["first_packet_ms"] == {"mn_to_cn": None, "cn_to_mn": None}
    assert "- ms after tunnel_up" in "\n".join(walk_lines(w))


def test_demo_prints_the_walk(capsys: pytest.CaptureFixture[str]) -> None:
    move, marks = a_move()
    w = move_walk(move, marks, EVENTS, {"t": T0 + 0.038},
                  window(40.0, T0 - 0.001, T0 + 0.039), window(45.0, T0, T0 + 0.0445))
    res = {"registration_ms": 12.0, "probe": {"rate_pps": 1000,
                                              "mn_to_cn": {"sent": 1, "lost": 0},
                                              "cn_to_mn": {"sent": 1, "lost": 0}},
           "moves": [{"from": "fa1", "to": "fa2", "kind": "intra-domain",
                      "gap_ms": {"mn_to_cn": 40.0, "cn_to_mn": 45.0},
                      "lost": {"mn_to_cn": 39, "cn_to_mn": 44}, "phases_ms": {},
                      "walk": w}]}
    print_results(res)
    out = capsys.readouterr().out
    assert "walk (ms since the move started" in out
    assert "first packet CN->MN: 44.5 ms after the move started, 9.5 ms after tunnel_up" \
        in out
    line = next(x for x in out.splitlines() if x.endswith(" tunnel_up"))
    assert line.split()[:2] == ["35.00", "+14.00"]   # since the move; after ama_at_fa


def test_a_lost_first_rrq_shows_in_the_walk() -> None:
    """The MN's retransmission timer in the gap: both RRQs on the walk, counted."""
    move, marks = a_move()
    events = [{"event": "rrq_sent", "t": T0 + 0.016}, {"event": "rrq_sent", "t": T0 + 1.016},
              {"event": "registered", "t": T0 + 1.04}]
    w = move_walk(move, marks, events, events[-1], window(1040.0, T0, T0 + 1.05),
                  window(1041.0, T0, T0 + 1.051))
    assert w["rrq_tries"] == 2
    assert w["timeline_ms"]["mn_first_rrq_sent"] == pytest.approx(16.0)
    assert w["timeline_ms"]["mn_rrq_sent"] == pytest.approx(1016.0)
    assert "the MN sent 2 Registration Requests" in "\n".join(walk_lines(w))


def test_the_loss_is_split_at_the_emulated_link_move() -> None:
    """Issue 14: of each direction's loss, what was sent during the emulated link move
    (the probes' span) and what was lost beyond it, in the walk and printed."""
    move, marks = a_move()
    w_cn = SimpleNamespace(**vars(window(40.0, T0 - 0.001, T0 + 0.039)), lost_in_span=14)
    w_mn = SimpleNamespace(**vars(window(45.0, T0, T0 + 0.0445)), lost_in_span=0)
    w = move_walk(move, marks, EVENTS, {"t": T0 + 0.038}, w_cn, w_mn)
    assert w["lost_in_link_move"] == {"mn_to_cn": 14, "cn_to_mn": 0}
    assert w["lost_beyond_link_move"] == {"mn_to_cn": 39 - 14, "cn_to_mn": 44}
    text = "\n".join(walk_lines(w))
    assert "lost MN->CN: 39, of which 14 sent during the emulated link move, 25 beyond it" \
        in text


def test_link_move_spans_follow_the_moves() -> None:
    from mininet_scripts.demo_results import link_move_spans
    moves = [{"t_move": 10.0, "link_move_ms": 15.0}, {"t_move": 12.5, "link_move_ms": 20.0}]
    assert link_move_spans(moves) == {"move0": (10_000_000_000, 10_015_000_000),
                                      "move1": (12_500_000_000, 12_520_000_000)}
