"""Issue 14: charon's ``list-sas`` checks every IKE_SA out before it filters by name,
so a blocking one waits for whatever exchange or termination another charon thread
holds at that moment (at a move back: the old forwarding tunnel's removal, the other
MNs' exchanges).  The driver's look at one tunnel's SAs (``tunnel``, the promotion's
"still installed?", ``rekeyed``) asks without blocking (``noblock``) first, and waits
only when that found none of the tunnel's IKE_SAs (it may be the one in use).  VICI is
a fake session that answers ``list-sas`` as charon would."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from controller.adapters.strongswan import StrongSwanGateway

TID = "alice_home.example/ha-fa2"


def ike(child_state: str = "INSTALLED", uid: str = "7") -> dict[str, Any]:
    return {TID: {"state": "ESTABLISHED", "uniqueid": "1",
                  "child-sas": {"c": {"name": TID, "state": child_state,
                                      "uniqueid": uid}}}}


class ListingSession:
    """``list-sas``: what charon holds; ``in_use``: the tunnel's IKE_SA is checked out
    by another charon thread (a noblock listing skips it)."""

    def __init__(self, sas: list[dict[str, Any]], in_use: bool = False) -> None:
        self.sas, self.in_use = sas, in_use
        self.asked: list[dict[str, Any]] = []

    def list_sas(self, msg: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        self.asked.append(dict(msg or {}))
        if (msg or {}).get("noblock") and self.in_use:
            return iter(())
        return iter(self.sas)


@pytest.fixture
def driver(tmp_path: Path) -> StrongSwanGateway:
    return StrongSwanGateway("fa2", tmp_path / "charon.vici")


def test_one_tunnels_state_is_asked_without_blocking(driver: StrongSwanGateway) -> None:
    session = driver._session = ListingSession([ike()])   # type: ignore[assignment]
    state = driver.tunnel(TID)
    assert state is not None and state.established
    assert session.asked == [{"ike": TID, "noblock": "yes"}]
    assert driver._child_installed(TID)
    assert session.asked[1:] == [{"ike": TID, "noblock": "yes"}]


def test_a_tunnel_in_use_is_asked_again_waiting(driver: StrongSwanGateway) -> None:
    session = driver._session = ListingSession([ike()], in_use=True)  # type: ignore[assignment]
    assert driver._child_installed(TID)
    assert session.asked == [{"ike": TID, "noblock": "yes"}, {"ike": TID}]


def test_a_tunnel_charon_does_not_hold_is_none(driver: StrongSwanGateway) -> None:
    session = driver._session = ListingSession([])   # type: ignore[assignment]
    assert driver.tunnel(TID) is None
    assert session.asked == [{"ike": TID, "noblock": "yes"}, {"ike": TID}]


def test_the_rekeys_completion_is_asked_without_blocking(driver: StrongSwanGateway) -> None:
    session = driver._session = ListingSession([ike(uid="8")])  # type: ignore[assignment]
    driver._rekeying[TID] = {"7"}
    assert driver.rekeyed(TID) is True
    assert session.asked == [{"ike": TID, "noblock": "yes"}]
