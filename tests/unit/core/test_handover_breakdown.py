"""Issue 14: where a move's milliseconds go.  The handover record takes the link events
the switches reported before it existed (old port gone, new port up, advertisement
sent) and gives the walk of the move (``breakdown``: each point's ms since the first,
the segments between consecutive points), in its JSON (REST ``/v1/handovers``)."""

from __future__ import annotations

import pytest

from controller.core.handover import LINK_WINDOW, HandoverLog, breakdown

NAI = "alice@home.example"


def _move(log: HandoverLog, t: float, port: int = 2, fa: str = "fa2") -> None:
    log.mark(NAI, "rrq_at_fa", t, {"fa": fa, "port": port, "previous_fa": "fa1"})
    log.mark(NAI, "ama_at_fa", t + 0.001, {})
    log.mark(NAI, "tunnel_up", t + 0.010, {})
    log.mark(NAI, "rrp_sent", t + 0.011, {"accepted": True, "code": 0})


def test_breakdown_orders_points_and_gives_segments() -> None:
    out = breakdown({"b": 1.010, "a": 1.000, "missing": None, "c": 1.0125})
    assert out["timeline_ms"] == {"a": 0.0, "b": 10.0, "c": 12.5}
    assert out["segments"] == [{"from": "a", "to": "b", "ms": 10.0},
                               {"from": "b", "to": "c", "ms": 2.5}]
    assert breakdown({}) == {"timeline_ms": {}, "segments": []}
    assert breakdown({"b": 1.010, "a": 1.000}, origin="b")["timeline_ms"] == {
        "a": -10.0, "b": 0.0}


def test_the_record_starts_with_the_link_events_of_its_move() -> None:
    log = HandoverLog()
    log.link_down(NAI, 10.000)
    log.link_up("fa2", 2, 10.013)
    log.link_up("fa2", 2, 10.014, "advertisement_sent")
    log.link_up("fa2", 3, 10.015)            # another port: not this move
    _move(log, 10.020)
    rec = log.records[-1].to_json()
    assert rec["marks"]["link_down"] == 10.0 and rec["marks"]["link_up"] == 10.013
    assert rec["marks"]["advertisement_sent"] == 10.014
    assert rec["phases_ms"]["link_down_to_up"] == pytest.approx(13.0)
    assert rec["phases_ms"]["link_up_to_rrq_at_fa"] == pytest.approx(7.0)
    walk = rec["breakdown"]
    assert list(walk["timeline_ms"]) == ["link_down", "link_up", "advertisement_sent",
                                         "rrq_at_fa", "ama_at_fa", "tunnel_up", "rrp_sent"]
    assert walk["timeline_ms"]["rrp_sent"] == pytest.approx(31.0)
    assert walk["segments"][0] == {"from": "link_down", "to": "link_up", "ms": 13.0}
    # taken once: the next registration on that port has no link events of its own
    _move(log, 12.0)
    assert "link_up" not in log.records[-1].marks
    assert "link_down" not in log.records[-1].marks


def test_stale_or_foreign_link_events_are_not_taken() -> None:
    log = HandoverLog()
    log.link_down(NAI, 1.0)
    log.link_up("fa2", 2, 1.0)
    _move(log, 1.0 + LINK_WINDOW + 0.5)       # a renewal long after: no link events
    assert not {"link_down", "link_up"} & set(log.records[-1].marks)
    log.link_up("fa1", 2, 20.0)               # the port of another FA
    _move(log, 20.01)
    assert "link_up" not in log.records[-1].marks
    log.link_up("fa2", 2, 30.0)               # no port in the mark: nothing taken
    log.mark(NAI, "rrq_at_fa", 30.01, {"fa": "fa2", "previous_fa": "fa1"})
    assert "link_up" not in log.records[-1].marks
    with pytest.raises(ValueError):
        log.link_up("fa2", 2, 1.0, "rrq_at_fa")


def test_old_port_events_are_forgotten() -> None:
    log = HandoverLog()
    log.link_down("bob@home.example", 1.0)
    log.link_up("fa2", 5, 1.0)
    log.link_up("fa2", 2, 1.0 + LINK_WINDOW + 1)
    assert ("fa2", 5) not in log.ports_up and "bob@home.example" not in log.links_down
    log.link_up("fa2", 6, 100.0)
    log.link_down(NAI, 100.0 + LINK_WINDOW + 1)      # a port going also forgets
    assert ("fa2", 6) not in log.ports_up


def test_the_fa_says_which_port_the_request_came_in_on() -> None:
    """The link-up of that port (at that FA) is what the record takes."""
    from controller.core.actions import Mark
    from tests.unit.harness import MobileNode, Walk

    walk = Walk()
    mn = MobileNode(walk)
    pos = walk.mark()
    assert mn.register("fa1").accepted
    marks = [a for _role, a in walk.of_type(Mark, pos) if a.phase == "rrq_at_fa"]
    assert [m.extra["port"] for m in marks] == [mn.port]
