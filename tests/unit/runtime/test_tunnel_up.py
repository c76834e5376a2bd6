"""Issue 14 (simultaneous bindings): once the initiator's end of a tunnel reports it
established, the executor tells the roles (``on_tunnel_up``), after the walk that set
it; a tunnel that failed, or a responder's end, says nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controller.adapters.strongswan import TunnelError
from controller.config import load_topology
from controller.core.actions import AddTunnel, RemoveTunnel
from controller.core.vpn import TunnelEnd, TunnelSpec
from controller.runtime import Runtime
from controller.testing.gateways import RecordingGateway
from tests.unit.harness import DEFAULT_TOPOLOGY

TID = "alice_home.example/ha-fa2"
OLD = "alice_home.example/ha-fa1"
SPEC = TunnelSpec(TID, TunnelEnd("ha", "10.0.0.1", ("10.30.0.0/24",)),
                  TunnelEnd("fa2", "10.0.0.12", ("10.10.0.5/32",)), psk=b"k" * 32,
                  initiator="fa2")


class Failing(RecordingGateway):
    def add_tunnel(self, side: Any, timeout: float = 5.0) -> float:
        raise TunnelError("no answer")


@pytest.fixture
def rt(tmp_path: Any) -> Any:
    gws: dict[str, RecordingGateway] = {}
    r = Runtime(load_topology(DEFAULT_TOPOLOGY), tmp_path, ":memory:", rest=None,
                gateway_factory=lambda n: gws.setdefault(
                    n, Failing(n) if n == "fa1" else RecordingGateway(n)),
                advertise=False, persist=False, flow_sink=lambda dpid, mods: None)
    seen: list[tuple[float, str]] = []

    def up(now: float, tunnel_id: str) -> list[Any]:
        seen.append((now, tunnel_id))
        return [RemoveTunnel("ha", OLD)]
    r.roles["ha"].on_tunnel_up = up
    r.test_seen, r.test_gws = seen, gws
    yield r
    for ex in [*r._gw_exec.values(), r._watch_exec]:
        ex.shutdown(wait=False)
    r.loop.close()


def settle(r: Any) -> None:
    async def idle() -> None:
        for _ in range(200):
            if not r._tasks:
                break
            await asyncio.sleep(0.01)
    r.loop.run_until_complete(idle())


def test_the_initiators_established_tunnel_is_reported(rt: Any) -> None:
    rt.loop.run_until_complete(rt.execute("fa:fa2", [AddTunnel("fa2", SPEC.side_for("fa2"))]))
    settle(rt)
    assert [tid for _now, tid in rt.test_seen] == [TID]
    assert ("remove", OLD) in rt.test_gws["ha"].log     # what the HA answered, executed


def test_a_responders_end_or_a_failed_tunnel_is_not(rt: Any) -> None:
    fa1 = TunnelSpec("x/ha-fa1", SPEC.a, TunnelEnd("fa1", "10.0.0.11", ()), psk=b"k" * 32,
                     initiator="fa1")
    rt.loop.run_until_complete(rt.execute("ha", [AddTunnel("ha", SPEC.side_for("ha")),
                                                 AddTunnel("fa1", fa1.side_for("fa1"))]))
    settle(rt)
    assert rt.test_seen == []


def test_the_has_mark_goes_into_the_open_move_record(rt: Any) -> None:
    """The earlier binding's end is marked in the move's record (still open: the new
    FA replies to the MN after its tunnel is up); the removal is spawned."""
    from controller.core.actions import Mark
    rt.roles["ha"].on_tunnel_up = lambda now, tid: [
        Mark("alice@home.example", "ha_earlier_binding_ended", {"why": "new_tunnel_up"}),
        RemoveTunnel("ha", OLD)]
    rt.handovers.mark("alice@home.example", "rrq_at_fa", 1.0, {"fa": "fa2"})
    rt.loop.run_until_complete(rt.execute("fa:fa2", [AddTunnel("fa2", SPEC.side_for("fa2"))]))
    rec = rt.handovers.open["alice@home.example"]
    assert "ha_earlier_binding_ended" in rec.marks
    settle(rt)
    assert ("remove", OLD) in rt.test_gws["ha"].log


class SlowRemove(RecordingGateway):
    """Its removal blocks until ``go`` is set."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        import threading
        self.go = threading.Event()

    def remove_tunnel(self, tunnel_id: str) -> None:
        self.go.wait(5.0)
        super().remove_tunnel(tunnel_id)


def test_a_removal_after_the_answer_does_not_hold_it_up(tmp_path: Any) -> None:
    """Issue 14 (make before break at the HA): a ``RemoveTunnel`` the role put after its
    answer runs after the walk, not in it; it still runs."""
    from controller.core.actions import ReplyMip
    gws: dict[str, RecordingGateway] = {}
    r = Runtime(load_topology(DEFAULT_TOPOLOGY), tmp_path, ":memory:", rest=None,
                gateway_factory=lambda n: gws.setdefault(
                    n, SlowRemove(n) if n == "ha" else RecordingGateway(n)),
                advertise=False, persist=False, flow_sink=lambda dpid, mods: None)
    try:
        ha = gws["ha"]
        assert isinstance(ha, SlowRemove)

        async def walk() -> Any:
            return await asyncio.wait_for(r.execute("ha", [
                AddTunnel("ha", SPEC.side_for("ha")), ReplyMip(b"rrp"),
                RemoveTunnel("ha", OLD)]), 2.0)
        assert r.loop.run_until_complete(walk()) == b"rrp"
        assert ("remove", OLD) not in ha.log      # still blocked: not in the walk
        ha.go.set()
        settle(r)
        assert ha.log == [("add", TID), ("remove", OLD)]
        # before the answer: in line, as before
        ha.go.clear()
        r.loop.call_later(0.2, ha.go.set)
        r.loop.run_until_complete(r.execute("ha", [RemoveTunnel("ha", TID),
                                                   ReplyMip(b"rrp")]))
        assert ha.log[-1] == ("remove", TID)
    finally:
        ha.go.set()
        for ex in [*r._gw_exec.values(), r._watch_exec]:
            ex.shutdown(wait=False)
        r.loop.close()
