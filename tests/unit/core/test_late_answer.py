"""Issue 5, "nothing half-installed": a registration the FA refused because its AMR
timed out, while the home side went on and bound the MN, is completed by the FA when the
late AMA arrives (both ends then hold it and expire together); a late answer for an MN
that has registered again since is dropped."""

from __future__ import annotations

from typing import Any

from controller.core.actions import AddTunnel, SendDiameter
from tests.unit.harness import MobileNode, Walk


def _lose_the_fa_amr(walk: Walk) -> list[Any]:
    """The AMR from FA1 reaches the AAA and the HA (who all act), but the answer is
    held back: the FA sees a timeout.  Returns the list the held answer goes into."""
    held: list[Any] = []
    original = walk._diameter

    def diameter(key: str, action: SendDiameter) -> Any:
        answer = original(key, action)
        if key == "fa:fa1" and not held:
            held.append(answer)
            return None
        return answer
    walk._diameter = diameter  # type: ignore[method-assign]
    return held


def test_late_ama_completes_what_the_home_side_set_up() -> None:
    walk = Walk()
    mn = MobileNode(walk)
    held = _lose_the_fa_amr(walk)
    reply = mn.register("fa1")
    assert reply is not None and reply.code != 0            # refused on the timeout
    nai = mn.conf.nai
    assert nai in walk.ha.bindings and nai not in walk.fa("fa1").visitors
    pos = walk.mark()
    walk.execute("fa:fa1", walk.fa("fa1").on_late_diameter_answer(walk.now, held[0]))
    fa = walk.fa("fa1")
    assert nai in fa.visitors and fa.counters["late_answer_completed"] == 1
    assert any(isinstance(a, AddTunnel) and a.gateway == "fa1" for _, a in walk.since(pos))
    assert [r.code for r in walk.replies_to_mn(pos)] == [0]   # the HA's own reply
    assert fa.visitors[nai].expires == walk.ha.bindings[nai].expires


def test_late_ama_after_a_newer_registration_is_dropped() -> None:
    walk = Walk()
    mn = MobileNode(walk)
    held = _lose_the_fa_amr(walk)
    mn.register("fa1")
    walk.now += 4.0                                          # past the retransmission hold
    assert mn.register("fa1").code == 0                      # the MN's next attempt
    fa = walk.fa("fa1")
    pos = walk.mark()
    assert fa.on_late_diameter_answer(walk.now, held[0]) == []
    assert fa.counters["late_answer_dropped"] == 1 and not walk.since(pos)


def test_timed_out_registrations_are_forgotten_after_the_wait() -> None:
    from controller.core.foreign_agent import LATE_ANSWER_WAIT
    walk = Walk()
    mn = MobileNode(walk)
    _lose_the_fa_amr(walk)
    mn.register("fa1")
    fa = walk.fa("fa1")
    assert len(fa.timed_out) == 1
    walk.now += LATE_ANSWER_WAIT + 1
    walk.tick()
    assert len(fa.timed_out) == 0


def test_each_hop_without_a_late_path_outwaits_the_next_one() -> None:
    """The FA takes late answers; the AAAF and AAAH do not, so the AAAF (waiting on
    the AAAH) must wait longer than the AAAH (waiting on the HA), and both longer than
    the FA: an inner hop still relays the answer its client gave up on."""
    from controller.runtime import REQUEST_TIMEOUT
    assert REQUEST_TIMEOUT["fa"] < REQUEST_TIMEOUT["aaah"] < REQUEST_TIMEOUT["aaaf"]


def test_runtime_drops_a_late_answer_when_the_mn_is_bound_elsewhere(tmp_path) -> None:
    """A late AMA at fa1 for an MN the HA now binds through fa2 (it registered again
    there) is not completed: completing it would tear down the live registration."""
    from types import SimpleNamespace

    from controller.config import load_topology
    from controller.runtime import Runtime
    from tests.unit.harness import DEFAULT_TOPOLOGY

    rt = Runtime(load_topology(DEFAULT_TOPOLOGY), tmp_path, ":memory:", rest=None,
                 gateway_factory=lambda name: object(), advertise=False,
                 flow_sink=lambda dpid, mods: None)
    nai = "alice@home.example"
    assert not rt._registered_elsewhere("fa:fa1", nai)
    rt.roles["ha"].bindings[nai] = SimpleNamespace(foreign_agent="fa2", expires=1e12)
    assert rt._registered_elsewhere("fa:fa1", nai)
    assert not rt._registered_elsewhere("fa:fa2", nai)
