"""Issue 14: a tunnel prepared ahead (connection and secret loaded, IKE_SA up, no
CHILD_SA) is brought up by the move without loading its connection again: the
initiator runs only the CHILD_SA's initiate and loads the move's new key after it; the
responder loads only the new key.  Anything else (a connection that differs, a second
add, a reconcile's load, an IKE_SA that did not serve) loads as before.  VICI is a
fake session recording the commands."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest
from vici.exception import CommandException

from controller.adapters.strongswan import StrongSwanGateway
from controller.core.vpn import TunnelEnd, TunnelSpec

TID = "alice_home.example/ha-fa2"
SPEC = TunnelSpec(TID, TunnelEnd("ha", "10.0.0.1", ("10.30.0.0/24",)),
                  TunnelEnd("fa2", "10.0.0.12", ("10.10.0.5/32",)), psk=b"p" * 32,
                  initiator="fa2")
MOVE_PSK = b"m" * 32


class FakeSession:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail_initiates = 0

    def load_shared(self, msg: dict[str, Any]) -> None:
        self.calls.append(f"load_shared {msg['data'][:1].decode()}")

    def load_conn(self, msg: dict[str, Any]) -> None:
        self.calls.append("load_conn")

    def initiate(self, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
        self.calls.append("initiate child" if "child" in msg else "initiate ike")
        if self.fail_initiates:
            self.fail_initiates -= 1
            raise CommandException("CHILD_SA failed")
        return iter(())

    def list_sas(self, msg: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        self.calls.append("list_sas")
        return iter(())

    def terminate(self, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
        self.calls.append("terminate")
        return iter(())

    def unload_conn(self, msg: dict[str, Any]) -> None:
        self.calls.append("unload_conn")

    def unload_shared(self, msg: dict[str, Any]) -> None:
        self.calls.append("unload_shared")


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[tuple[StrongSwanGateway, FakeSession]]:
    driver = StrongSwanGateway("fa2", tmp_path / "charon.vici")   # no netns: no anchors
    session = FakeSession()
    driver._session = session    # type: ignore[assignment]
    yield driver, session


def prepared(gw: StrongSwanGateway, session: FakeSession, end: str) -> Any:
    gw.prepare_tunnel(SPEC.side_for(end))
    session.calls.clear()
    return replace(SPEC, psk=MOVE_PSK).side_for(end)


def test_the_initiator_initiates_only_then_loads_the_new_key(gw: Any) -> None:
    driver, session = gw
    side = prepared(driver, session, "fa2")
    driver.add_prepared(side)
    assert session.calls == ["initiate child", "load_shared m"]


def test_the_responder_loads_only_the_new_key(gw: Any) -> None:
    driver, session = gw
    side = prepared(driver, session, "ha")
    driver.add_prepared(side)
    assert session.calls == ["load_shared m"]


def test_a_connection_that_differs_is_loaded_as_before(gw: Any) -> None:
    driver, session = gw
    side = prepared(driver, session, "fa2")
    other = replace(side, remote=replace(side.remote, selectors=("10.31.0.0/24",)))
    driver.add_prepared(other)
    assert session.calls == ["load_shared m", "load_conn", "list_sas", "initiate child"]


def test_a_second_add_on_the_same_ike_sa_is_a_move_back_as_before(gw: Any) -> None:
    """Its CHILD_SA exists: it goes first (``_terminate_children``), all loaded."""
    driver, session = gw
    side = prepared(driver, session, "fa2")
    driver.add_prepared(side)
    session.calls.clear()
    driver.add_prepared(side)
    assert session.calls == ["load_shared m", "load_conn", "list_sas", "initiate child"]


def test_a_prepared_ike_sa_that_did_not_serve_is_loaded_and_initiated_again(gw: Any) -> None:
    driver, session = gw
    side = prepared(driver, session, "fa2")
    session.fail_initiates = 1
    driver.add_prepared(side)
    assert session.calls == ["initiate child", "load_shared m", "load_conn",
                             "initiate child"]


def test_a_reconcile_load_or_a_removal_forgets_what_was_loaded_ahead(gw: Any) -> None:
    driver, session = gw
    side = prepared(driver, session, "ha")
    driver.load_tunnel(side)            # charon may have restarted: loaded in full
    assert session.calls == ["load_shared m", "load_conn"]
    side = prepared(driver, session, "fa2")
    driver.remove_tunnel(TID)
    session.calls.clear()
    driver.add_prepared(side)
    assert "load_conn" in session.calls
