"""Issue 14, review of the standing CHILD_SA: a move onto it (``promote_tunnel``)
only loads the move's key when the CHILD_SA still stands as it was stood up; one that
is gone (DPD, the peer's delete, a charon restart) or whose tunnel changed since (the
profile: selectors, proposals) is set up as a new tunnel instead, so the MN is never
told "up" on nothing nor left on stale selectors.  VICI errors are ``TunnelError``s,
and a responder's settle thread does not re-assert the primaries over a CHILD_SA that
was promoted meanwhile.  VICI is a fake session recording the commands."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest
from vici.exception import CommandException

from controller.adapters.strongswan import StrongSwanGateway, TunnelError
from tests.unit.adapters.test_strongswan_loaded_ahead import MOVE_PSK, SPEC, TID, FakeSession


class StandingSession(FakeSession):
    """Lists the tunnel's CHILD_SA as INSTALLED while ``installed``; rekeys it."""

    def __init__(self) -> None:
        super().__init__()
        self.installed = True
        self.fail_rekey = False
        self.uid = 7

    def list_sas(self, msg: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        self.calls.append("list_sas")
        if not self.installed:
            return iter(())
        child = {"name": TID, "state": "INSTALLED", "uniqueid": str(self.uid)}
        return iter([{TID: {"state": "ESTABLISHED", "child-sas": {"c": child}}}])

    def rekey(self, msg: dict[str, Any]) -> None:
        self.calls.append("rekey")
        if self.fail_rekey:
            raise CommandException("no such CHILD_SA")
        self.uid += 1


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[tuple[StrongSwanGateway, StandingSession]]:
    driver = StrongSwanGateway("fa2", tmp_path / "charon.vici")
    session = StandingSession()
    driver._session = session    # type: ignore[assignment]
    driver._libipsec = True
    yield driver, session


def _the_moves_side(session: StandingSession, end: str) -> Any:
    """``end``'s side with the move's key, the commands so far forgotten."""
    session.calls.clear()
    return replace(SPEC, psk=MOVE_PSK).side_for(end)


def stood(driver: StrongSwanGateway, session: StandingSession, end: str) -> Any:
    driver.prepare_tunnel(SPEC.side_for(end), child=True)
    assert TID in driver._standing
    return _the_moves_side(session, end)


def test_a_standing_child_sa_is_promoted_by_the_key_alone(gw: Any) -> None:
    driver, session = gw
    side = stood(driver, session, "fa2")
    driver.promote_tunnel(side)
    assert "initiate child" not in session.calls and "load_conn" not in session.calls
    assert "load_shared m" in session.calls and TID not in driver._standing


def test_a_gone_standing_child_sa_is_set_up_anew(gw: Any) -> None:
    driver, session = gw
    side = stood(driver, session, "fa2")
    session.installed = False            # DPD, the peer's delete, a restart
    driver.promote_tunnel(side)
    assert "initiate child" in session.calls and TID not in driver._standing


def test_a_changed_tunnel_is_set_up_anew_at_either_end(gw: Any) -> None:
    driver, session = gw
    for end in ("fa2", "ha"):
        side = stood(driver, session, end)
        other = replace(side, remote=replace(side.remote, selectors=("10.31.0.0/24",)))
        driver.promote_tunnel(other)
        assert "load_conn" in session.calls, (end, session.calls)
        assert TID not in driver._standing


def test_the_has_promotion_rekeys_and_its_vici_errors_are_tunnel_errors(gw: Any) -> None:
    driver, session = gw
    side = stood(driver, session, "ha")
    driver.promote_tunnel(side)                  # the HA's own move call: the key
    assert TID in driver._standing               # still standing until the rekey
    session.fail_rekey = True
    with pytest.raises(TunnelError, match="promot"):
        driver.promote_tunnel(side, rekey=True)


def test_the_has_rekey_can_be_issued_without_waiting_for_it(gw: Any) -> None:
    """h14g: ``wait=False`` issues the rekey and returns (no polling on the HA's
    worker while the CREATE_CHILD_SA round crosses the core); ``rekeyed`` tells when
    its new CHILD_SA is installed."""
    driver, session = gw
    side = stood(driver, session, "ha")
    driver.promote_tunnel(side)
    session.calls.clear()
    real_rekey = session.rekey
    session.rekey = lambda msg: session.calls.append("rekey")  # type: ignore[method-assign]
    driver.promote_tunnel(side, rekey=True, wait=False)
    assert session.calls == ["list_sas", "rekey"] and TID not in driver._standing
    assert TID in driver._promoted                # re-assertions stop (primaries.py)
    assert not driver.rekeyed(TID)                # in flight: the old CHILD_SA only
    session.rekey = real_rekey                    # type: ignore[method-assign]
    session.rekey({})                             # the new CHILD_SA is installed
    assert driver.rekeyed(TID) is True
    assert driver.rekeyed("another/tunnel") is None   # none issued there


def test_nothing_to_rekey_is_no_promotion(gw: Any) -> None:
    driver, session = gw
    side = stood(driver, session, "ha")
    session.installed = False
    with pytest.raises(TunnelError, match="no CHILD_SA"):
        driver.promote_tunnel(side, rekey=True)


def test_the_settle_thread_leaves_a_promoted_child_sa_alone(gw: Any) -> None:
    driver, session = gw
    stood(driver, session, "ha")
    time.sleep(0.1)                              # its own settle thread has run
    reasserted: list[str] = []
    driver._reassert_primaries = lambda tid, timeout=2.0: reasserted.append(tid) or []  # type: ignore[method-assign]
    anchors = driver._anchored.get(TID, [])
    driver._standing.discard(TID)                # promoted (or given up) meanwhile
    driver._settle_when_up(TID, anchors, 0.05, secondary=True, standing=True)
    assert reasserted == []
    driver._standing.add(TID)                    # still standing: re-asserted
    driver._settle_when_up(TID, anchors, 0.05, secondary=True, standing=True)
    assert reasserted == [TID]


def _states(*tunnels: tuple[str, str]) -> list[Any]:
    """(tunnel id, CHILD_SA unique id) with the same selectors, all INSTALLED."""
    from controller.adapters.strongswan.state import _tunnel_state
    return [_tunnel_state(tid, {"state": "ESTABLISHED", "child-sas": {"c": {
        "name": tid, "state": "INSTALLED", "uniqueid": uid,
        "local-ts": ["10.30.0.0/24"], "remote-ts": ["10.10.0.5/32"]}}})
        for tid, uid in tunnels]


def test_a_promotion_meanwhile_stops_a_re_assertion(gw: Any) -> None:
    """A preparation's re-assertion (rekeying the MN's live primary so it stays the
    newest) must not run after a promotion of a CHILD_SA with the same selectors: it
    would take the downlink back to the FA the MN just left."""
    driver, session = gw
    live, standing, new = "alice/ha-fa1", "alice/ha-fa2", "alice/ha-fa3"
    driver.tunnels = lambda: _states((live, "3"), (standing, "5"), (new, "9"))  # type: ignore[method-assign]
    driver._standing |= {standing, new}
    driver._promoted[standing] = time.monotonic() + 60    # promoted during it
    assert driver._reassert_primaries(new, timeout=0.05) == [live]
    assert "rekey" not in session.calls
    driver._promoted.clear()                              # no promotion: rekeyed
    driver._reassert_primaries(new, timeout=0.05)
    assert session.calls.count("rekey") == 1


def test_after_its_deadline_a_re_assertion_issues_no_more_rekeys(gw: Any) -> None:
    driver, session = gw
    driver.tunnels = lambda: _states(("t/1", "1"), ("t/2", "2"), ("t/new", "9"))  # type: ignore[method-assign]
    driver._reassert_primaries("t/new", timeout=0.02)     # "1" never goes: no wait for "2"
    assert session.calls.count("rekey") == 1


# -- a move back within the smooth-handoff retire (issue 14): the tunnel's CHILD_SA is
# still installed at both ends, as the MN left it; the move promotes it like a standing
# one instead of deleting it and asking for a new one (a DELETE and a CREATE_CHILD_SA
# round on the move's path, the MN's uplink dropped between them: 24-161 packets per
# such move in the seamless-smooth runs of 2026-12-07, 0-2 for a standing CHILD_SA)

def live(driver: StrongSwanGateway, session: StandingSession, end: str) -> Any:
    driver.add_tunnel(SPEC.side_for(end))
    return _the_moves_side(session, end)


def test_a_live_child_sa_is_promoted_by_the_key_alone_at_the_initiator(gw: Any) -> None:
    driver, session = gw
    side = live(driver, session, "fa2")
    driver.promote_tunnel(side)
    assert "terminate" not in session.calls and "initiate child" not in session.calls
    assert "load_conn" not in session.calls and "load_shared m" in session.calls
    assert driver.promote_tunnel(side, rekey=True) == 0.0     # the FA never rekeys


def test_the_responders_live_child_sa_is_rekeyed_by_the_promotion(gw: Any) -> None:
    driver, session = gw
    side = live(driver, session, "ha")
    driver.promote_tunnel(side)                  # the HA's own move call: the key
    assert session.calls == ["list_sas", "load_shared m"]
    session.calls.clear()
    driver.promote_tunnel(side, rekey=True)      # after the FA's: the downlink back
    assert session.calls.count("rekey") == 1 and driver.rekeyed(TID) is None
    session.calls.clear()
    assert driver.promote_tunnel(side, rekey=True) == 0.0 and session.calls == []


def test_a_live_end_without_its_child_sa_is_replaced_as_before(gw: Any) -> None:
    driver, session = gw
    side = live(driver, session, "fa2")
    session.installed = False                    # DPD, the peer's delete, a restart
    driver.promote_tunnel(side)
    assert "initiate child" in session.calls


def test_a_live_end_whose_tunnel_changed_is_set_up_as_before(gw: Any) -> None:
    driver, session = gw
    side = live(driver, session, "fa2")
    other = replace(side, remote=replace(side.remote, selectors=("10.31.0.0/24",)))
    driver.promote_tunnel(other)
    assert "load_conn" in session.calls and "initiate child" in session.calls


@pytest.mark.parametrize("how", ["standing", "live"])
def test_a_promotion_without_its_key_leaves_it_to_load_key(gw: Any, how: str) -> None:
    """Issue 14: ``promote_tunnel(key=False)`` (the runtime's, at a move) loads no key:
    its CHILD_SA stands or lives already, and no CREATE_CHILD_SA needs the key.
    ``load_key`` loads it after the move, once: a second call finds it loaded."""
    driver, session = gw
    side = stood(driver, session, "fa2") if how == "standing" else live(driver, session, "fa2")
    driver.promote_tunnel(side, key=False)
    assert "load_shared m" not in session.calls and "initiate child" not in session.calls
    session.calls.clear()
    driver.load_key(side)
    assert session.calls == ["load_shared m"]
    session.calls.clear()
    driver.load_key(side)
    assert session.calls == []
    # removed before its key came (the worker runs them in order): no secret left behind
    driver.remove_tunnel(TID)
    session.calls.clear()
    driver.load_key(replace(side, psk=b"n" * 32))
    assert session.calls == []
