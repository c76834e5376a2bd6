"""Issue 14: ``StrongSwanGateway.remove_aside`` removes a tunnel over a second VICI
session with a lock of its own, so that it runs while the driver's main session is
busy (the MN's promotion at the same gateway); it forgets the tunnel as
``remove_tunnel`` does.  Both sessions keep the events of streamed commands
registered (one round trip per command).  VICI is fake sessions recording the
commands, and a fake transport answering as charon."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from controller.adapters.strongswan import StrongSwanGateway
from tests.unit.adapters.test_strongswan_loaded_ahead import SPEC, TID, FakeSession


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[tuple[StrongSwanGateway, FakeSession, FakeSession]]:
    driver = StrongSwanGateway("fa2", tmp_path / "charon.vici")   # no netns: no anchors
    main, aside = FakeSession(), FakeSession()
    driver._session = main       # type: ignore[assignment]
    driver._aside_session = aside   # type: ignore[assignment]
    yield driver, main, aside


def test_a_removal_aside_runs_while_the_main_session_is_busy(gw: Any) -> None:
    driver, main, aside = gw
    driver.prepare_tunnel(SPEC.side_for("fa2"))
    main.calls.clear()
    busy, release = threading.Event(), threading.Event()

    def long_call(session: Any) -> None:     # e.g. an initiate waiting for its peer
        busy.set()
        release.wait(2.0)
    holder = threading.Thread(target=driver._call, args=(long_call,))
    holder.start()
    busy.wait(1.0)
    t0 = time.monotonic()
    try:
        driver.remove_aside(TID)
        took = time.monotonic() - t0
    finally:
        release.set()
        holder.join()
    assert took < 0.5
    assert aside.calls == ["list_sas", "terminate", "unload_conn", "unload_shared"]
    assert main.calls == []
    assert TID not in driver._loaded and TID not in driver._childless


def test_the_driver_says_it_removes_aside_and_closes_both_sessions(gw: Any) -> None:
    driver, _main, _aside = gw
    assert driver.removes_aside

    class Sock:
        closed = False

        def close(self) -> None:
            self.closed = True
    socks = driver._sock, driver._aside_sock = Sock(), Sock()   # type: ignore[assignment]
    driver.close()
    assert all(s.closed for s in socks)
    assert driver._session is None and driver._aside_session is None


# -- the driver's sessions keep their stream events registered (issue 14)

class FakeTransport:
    """Answers as charon: a registration is confirmed, a ``list-sas`` streams one
    ``list-sa`` event to the asking connection, then its command response."""

    def __init__(self) -> None:
        from vici.protocol import Message, Packet
        self.P, self.M = Packet, Message
        self.sent: list[tuple[int, str]] = []
        self._out: list[bytes] = []

    def send(self, packet: bytes) -> None:
        kind, name = packet[0], packet[2:2 + packet[1]].decode()
        self.sent.append((kind, name))
        if kind in (self.P.EVENT_REGISTER, self.P.EVENT_UNREGISTER):
            self._out.append(bytes([self.P.EVENT_CONFIRM]))
        elif name == "list-sas":
            event = self.M.serialize({TID: {"state": "ESTABLISHED"}})
            self._out.append(bytes([self.P.EVENT, len("list-sa")]) + b"list-sa" + event)
            self._out.append(bytes([self.P.CMD_RESPONSE]) + self.M.serialize({}))

    def receive(self, timeout: Any = None) -> bytes:
        return self._out.pop(0)


def test_a_streamed_request_registers_its_event_once_and_keeps_it() -> None:
    """``list-sas`` (like ``initiate`` and ``terminate``) streams its results as
    events to the asking connection only: kept registered, each such request is one
    round trip with charon instead of three (register, command, unregister)."""
    from vici.protocol import Packet

    from controller.adapters.strongswan.session import KeptSession
    session = KeptSession.__new__(KeptSession)
    session.transport = transport = FakeTransport()   # type: ignore[assignment]
    for _ in range(2):
        listed = list(session.list_sas({"ike": TID}))
        assert [next(iter(sa)) for sa in listed] == [TID]
    assert transport.sent == [(Packet.EVENT_REGISTER, "list-sa"),
                              (Packet.CMD_REQUEST, "list-sas"),
                              (Packet.CMD_REQUEST, "list-sas")]
