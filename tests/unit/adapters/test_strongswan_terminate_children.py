"""A tunnel re-added on its standing IKE_SA (a move back) deletes its CHILD_SA first
(``StrongSwanGateway._terminate_children``).  When the peer does not answer that
DELETE within the VICI timeout (dead or slow), the CHILD_SA stays and the following
initiate would fail on charon's "existing duplicate": the driver then terminates the
IKE_SA, forced, and the initiate sets up a new one.  VICI is a fake session."""

from __future__ import annotations

import logging
from typing import Any, Iterator

import pytest

from vici.exception import CommandException

from controller.adapters.strongswan import StrongSwanGateway

TID = "alice_home.example/ha-fa2"


class FakeCharon:
    """One IKE_SA ``TID`` with CHILD_SA "7"; ``peer_answers``: a child DELETE is
    answered (the CHILD_SA goes) or times out (it stays, VICI reports a failure)."""

    def __init__(self, peer_answers: bool, force_works: bool = True) -> None:
        self.peer_answers = peer_answers
        self.force_works = force_works
        self.ike_up = True
        self.children = {"7"}
        self.terminated: list[dict[str, Any]] = []

    def list_sas(self, msg: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        if not self.ike_up:
            return iter(())
        kids = {f"net-{c}": {"uniqueid": c.encode(), "state": b"INSTALLED"}
                for c in self.children}
        return iter([{TID: {"uniqueid": b"3", "state": b"ESTABLISHED",
                            "child-sas": kids}}])

    def terminate(self, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
        self.terminated.append(msg)
        if "child-id" in msg:
            if not self.peer_answers:
                raise CommandException("terminating SA timed out")
            self.children.discard(msg["child-id"])
        elif msg.get("ike") == TID and msg.get("force") == "yes" and self.force_works:
            self.ike_up = False
            self.children.clear()
        return iter(())


def test_an_answered_delete_keeps_the_ike_sa() -> None:
    charon = FakeCharon(peer_answers=True)
    assert StrongSwanGateway._terminate_children(charon, TID) == 1  # type: ignore[arg-type]
    assert charon.terminated == [{"child-id": "7", "timeout": 1000}]
    assert charon.ike_up and not charon.children


def test_a_silent_peer_gets_its_ike_sa_terminated_forced() -> None:
    charon = FakeCharon(peer_answers=False)
    assert StrongSwanGateway._terminate_children(charon, TID) == 1  # type: ignore[arg-type]
    assert charon.terminated == [{"child-id": "7", "timeout": 1000},
                                 {"ike": TID, "force": "yes", "timeout": -1}]
    assert not charon.ike_up and not list(charon.list_sas())   # nothing left to duplicate


def test_no_child_no_terminate() -> None:
    charon = FakeCharon(peer_answers=False)
    charon.children.clear()
    assert StrongSwanGateway._terminate_children(charon, TID) == 0  # type: ignore[arg-type]
    assert charon.terminated == [] and charon.ike_up


def test_an_ike_sa_that_survives_the_force_is_reported(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    charon = FakeCharon(peer_answers=False, force_works=False)
    with caplog.at_level(logging.WARNING, logger="mipvpn.strongswan"):
        StrongSwanGateway._terminate_children(charon, TID)  # type: ignore[arg-type]
    assert [r.levelname for r in caplog.records] == ["WARNING", "ERROR"]
