"""Issue 5: lifetime expiry without renewal leaves nothing behind.  One test per state
map that used to outlive its registration (found by ``bench/leak.py``): the FA's
retransmission holds, the AAAF's and the AAAH's VPN session caches."""

from __future__ import annotations

import pytest

from controller.core import foreign_agent
from tests.unit.harness import MobileNode, Walk

NAI = "alice@home.example"


@pytest.fixture
def walk() -> Walk:
    return Walk()


@pytest.fixture
def mn(walk: Walk) -> MobileNode:
    node = MobileNode(walk)
    rrp = node.register("fa1", lifetime=10)
    assert rrp is not None and rrp.accepted
    return node


def test_everything_goes_when_the_lifetime_runs_out(walk: Walk, mn: MobileNode) -> None:
    assert NAI in walk.ha.bindings and NAI in walk.fa("fa1").visitors
    assert NAI in walk.aaah.sessions and NAI in walk.aaaf().sessions
    walk.now += 9.9
    walk.tick()
    assert NAI in walk.aaah.sessions and NAI in walk.aaaf().sessions   # not yet
    walk.now += 0.2
    walk.tick()
    fa = walk.fa("fa1")
    assert walk.ha.bindings == {} and fa.visitors == {}
    assert fa.in_progress == {} and fa.pending == {} and fa.departed == {}
    assert walk.aaah.sessions == {} and walk.aaah.session_expires == {}
    assert walk.aaah.pending == {}
    assert walk.aaaf().sessions == {} and walk.aaaf().pending == {}
    # static tunnels only, MN steering gone
    assert walk.gateways.ids("fa1") == set()
    assert all("alice" not in t for t in walk.gateways.ids("ha"))


def test_fa_retransmission_hold_is_released_after_the_hold(walk: Walk,
                                                          mn: MobileNode) -> None:
    fa = walk.fa("fa1")
    assert NAI in fa.in_progress
    walk.now += foreign_agent.IN_PROGRESS_HOLD - 0.1
    walk.tick()
    assert NAI in fa.in_progress          # still suppresses retransmissions
    walk.now += 0.2
    walk.tick()
    assert NAI not in fa.in_progress      # an MN that never comes back leaves nothing


def test_aaaf_cache_lives_as_long_as_the_registration(walk: Walk, mn: MobileNode) -> None:
    cached = walk.aaaf().sessions[NAI]
    assert cached.expires == pytest.approx(walk.now + 10)   # the granted lifetime
    walk.aaaf().session_lifetime = 5.0                       # capped by the session's
    walk.now += foreign_agent.IN_PROGRESS_HOLD + 1           # a renewal, not a retry
    rrp = mn.register("fa1", lifetime=10)
    assert rrp is not None and rrp.accepted
    assert walk.aaaf().sessions[NAI].expires == pytest.approx(walk.now + 5)


def test_aaaf_local_move_renews_the_cache_for_the_new_lifetime(walk: Walk,
                                                               mn: MobileNode) -> None:
    walk.now += 2
    rrp = mn.register("fa2", previous_fa="fa1", lifetime=20)
    assert rrp is not None and rrp.accepted
    assert walk.aaaf().counters["local"] == 1
    assert walk.aaaf().sessions[NAI].expires == pytest.approx(walk.now + 20)
    walk.now += 19.9
    walk.tick()
    assert NAI in walk.aaaf().sessions
    walk.now += 0.2
    walk.tick()
    assert walk.aaaf().sessions == {} and walk.ha.bindings == {}


def test_aaah_cache_renewed_by_each_registration(walk: Walk, mn: MobileNode) -> None:
    first = walk.aaah.session_expires[NAI]
    walk.now += 5
    rrp = mn.register("fa1", lifetime=10)
    assert rrp is not None and rrp.accepted
    assert walk.aaah.session_expires[NAI] == pytest.approx(first + 5)
    walk.now += 6          # past the first registration's lifetime, not the second's
    walk.tick()
    assert NAI in walk.aaah.sessions
