"""Issue 14: ``stand_live`` keeps a tunnel's live CHILD_SA as the standing one of a
preparation of the same tunnel (the tunnel a seamless MN left), so the HA gets no new
CHILD_SA whose SA would be the newest of the reqid (a downlink blip).  Only under
kernel-libipsec and only for a CHILD_SA installed as the preparation wants it; the
preparation's key is loaded; the answer is how long until charon's own rekey of it.
VICI is a fake session recording the commands."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Iterator

from controller.adapters.strongswan import StrongSwanGateway
from tests.unit.adapters.test_strongswan_loaded_ahead import MOVE_PSK, SPEC, TID
from tests.unit.adapters.test_strongswan_standing import StandingSession, gw  # noqa: F401


class RekeyTimeSession(StandingSession):
    """Lists the CHILD_SA with charon's ``rekey-time`` (s until its rekey)."""

    def __init__(self, rekey_time: str | None) -> None:
        super().__init__()
        self.rekey_time = rekey_time

    def list_sas(self, msg: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        self.calls.append("list_sas")
        if not self.installed:
            return iter(())
        child = {"name": TID, "state": "INSTALLED", "uniqueid": str(self.uid)}
        if self.rekey_time is not None:
            child["rekey-time"] = self.rekey_time
        return iter([{TID: {"state": "ESTABLISHED", "child-sas": {"c": child}}}])


def _live(driver: StrongSwanGateway, session: StandingSession, end: str) -> Any:
    """Live at ``end`` with a move's key; the preparation's side returned."""
    driver.add_tunnel(replace(SPEC, psk=MOVE_PSK).side_for(end))
    session.calls.clear()
    return SPEC.side_for(end)


def test_the_responders_live_child_sa_stands_and_is_promoted_again_by_a_rekey(
        gw: Any) -> None:  # noqa: F811
    driver, session = gw
    prepared = _live(driver, session, "ha")
    left = driver.stand_live(prepared)
    assert left == math.inf                      # (the fake lists no rekey-time)
    assert TID in driver._standing and "load_shared p" in session.calls
    assert "terminate" not in session.calls and "load_conn" not in session.calls
    # the move back: the HA's own call keeps it standing, the rekey promotes it
    session.calls.clear()
    side = replace(SPEC, psk=MOVE_PSK).side_for("ha")
    driver.promote_tunnel(side, key=False)
    assert not {"terminate", "load_conn", "initiate child"} & set(session.calls)
    assert TID in driver._standing
    driver.promote_tunnel(side, rekey=True)
    assert session.calls.count("rekey") == 1 and TID not in driver._standing


def test_the_initiators_live_child_sa_stands_and_is_promoted_by_the_key_alone(
        gw: Any) -> None:  # noqa: F811
    driver, session = gw
    prepared = _live(driver, session, "fa2")
    assert driver.stand_live(prepared) is not None
    session.calls.clear()
    driver.promote_tunnel(replace(SPEC, psk=MOVE_PSK).side_for("fa2"))
    assert not {"terminate", "load_conn", "initiate child"} & set(session.calls)
    assert "load_shared m" in session.calls and TID not in driver._standing


def test_nothing_is_kept_without_its_installed_child_sa_or_libipsec(
        gw: Any) -> None:  # noqa: F811
    driver, session = gw
    prepared = _live(driver, session, "fa2")
    session.installed = False
    assert driver.stand_live(prepared) is None and TID not in driver._standing
    session.installed = True
    driver._libipsec = False                     # kernel XFRM: no standing CHILD_SA
    assert driver.stand_live(prepared) is None and TID not in driver._standing
    driver._libipsec = True
    other = replace(prepared, remote=replace(prepared.remote, selectors=("10.31.0.0/24",)))
    assert driver.stand_live(other) is None      # not what the preparation wants


def test_it_answers_how_long_until_charons_own_rekey(tmp_path: Any) -> None:
    driver = StrongSwanGateway("ha", tmp_path / "charon.vici")
    session = RekeyTimeSession("3012")
    driver._session = session                    # type: ignore[assignment]
    driver._libipsec = True
    assert driver.stand_live(_live(driver, session, "ha")) == 3012.0


class TwoTunnelsSession(StandingSession):
    """Lists TID's CHILD_SA (unique id ``uid``) and another tunnel's with the same
    selectors (``other_uid``), as the HA holds them after a move."""

    def __init__(self, other_uid: int) -> None:
        super().__init__()
        self.other_uid = other_uid

    def list_sas(self, msg: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        self.calls.append("list_sas")
        ts = {"local-ts": ["10.30.0.0/24"], "remote-ts": ["10.10.0.5/32"]}
        mine = {"name": TID, "state": "INSTALLED", "uniqueid": str(self.uid), **ts}
        other = {"name": "x", "state": "INSTALLED", "uniqueid": str(self.other_uid), **ts}
        return iter([{TID: {"state": "ESTABLISHED", "child-sas": {"c": mine}}},
                     {"alice_home.example/ha-fa3": {"state": "ESTABLISHED",
                                                    "child-sas": {"c": other}}}])


def test_the_has_sa_is_outranked_only_by_a_newer_one_with_its_selectors(
        tmp_path: Any) -> None:
    """kernel-libipsec sends on the newest SA of a reqid (CHILD_SAs with equal
    selectors share one): the HA's end of the tunnel the MN left carries nothing out
    once another tunnel's CHILD_SA with its selectors is newer (a larger unique id)."""
    side = SPEC.side_for("ha")
    for other_uid, expected in ((9, True), (5, False)):      # ours is 7
        driver = StrongSwanGateway("ha", tmp_path / "charon.vici")
        driver._session = TwoTunnelsSession(other_uid)  # type: ignore[assignment]
        driver._libipsec = True
        assert driver.outranked(side) is expected, other_uid
    other = replace(side, remote=replace(side.remote, selectors=("10.10.0.6/32",)))
    driver._session = TwoTunnelsSession(9)  # type: ignore[assignment]
    assert driver.outranked(other) is False          # no SA of these selectors here
    driver._libipsec = False
    assert driver.outranked(side) is True            # kernel XFRM: policies decide


def test_a_vici_error_while_keeping_is_a_tunnel_error_and_keeps_nothing(
        gw: Any) -> None:  # noqa: F811
    from vici.exception import CommandException

    from controller.adapters.strongswan import TunnelError
    driver, session = gw
    prepared = _live(driver, session, "ha")

    def refuse(msg: dict[str, Any]) -> None:
        raise CommandException("unable to load")
    session.load_shared = refuse  # type: ignore[method-assign]
    try:
        driver.stand_live(prepared)
    except TunnelError:
        pass
    else:
        raise AssertionError("no TunnelError")
    assert TID not in driver._standing
