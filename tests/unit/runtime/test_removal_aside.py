"""Issue 14: a removal off the move's path (``RemoveTunnel(off_path=True)``: the old
FA's forwarding tunnel once the MN is back) runs on the gateway's second VICI
session, on a thread of its own, when the driver has one (``removes_aside``): the
promotion of the MN's tunnel at the same gateway no longer waits behind it.  Calls
for the same tunnel stay in order: a re-add waits for the removal."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from controller.core.actions import AddTunnel, RemoveTunnel
from controller.core.vpn import TunnelEnd, TunnelSpec
from controller.runtime.gateways import Gateways
from controller.testing.gateways import RecordingGateway

FWD = "alice_home.example/fa1-fa2"     # the old FA's forwarding tunnel
MOVE = TunnelSpec("alice_home.example/ha-fa1",
                  TunnelEnd("ha", "10.0.0.1", ("10.30.0.0/24",)),
                  TunnelEnd("fa1", "10.0.0.11", ("10.10.0.5/32",)), psk=b"k" * 32,
                  initiator="fa1")
FWD_SPEC = TunnelSpec(FWD, TunnelEnd("fa1", "10.0.0.11", ("10.30.0.0/24",)),
                      TunnelEnd("fa2", "10.0.0.12", ("10.10.0.5/32",)), psk=b"f" * 32,
                      initiator="fa1")


class AsideGateway(RecordingGateway):
    """A driver with a second session: ``remove_aside`` blocks until ``go`` is set
    and notes the thread each call ran on."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.go = threading.Event()
        self.threads: list[tuple[str, str]] = []

    def remove_aside(self, tunnel_id: str) -> None:
        self.threads.append(("remove_aside", threading.current_thread().name))
        self.go.wait(2.0)
        self.remove_tunnel(tunnel_id)

    def add_tunnel(self, side: Any, timeout: float = 5.0) -> float:
        self.threads.append(("add", threading.current_thread().name))
        return super().add_tunnel(side, timeout)


def _gateways(cls: type[RecordingGateway] = AsideGateway) -> tuple[Gateways, Any]:
    drivers = {n: cls(n) for n in ("ha", "fa1", "fa2")}
    return Gateways(drivers, {}, {}), drivers  # type: ignore[arg-type]


def test_the_gateways_next_add_does_not_wait_for_an_off_path_removal() -> None:
    gws, drv = _gateways()

    async def run() -> None:
        removal = asyncio.ensure_future(
            gws.remove_tunnel(RemoveTunnel("fa1", FWD, off_path=True)))
        await asyncio.sleep(0.01)
        # the promotion's add at the same gateway, while the removal still runs
        await asyncio.wait_for(gws.add_tunnel(AddTunnel("fa1", MOVE.side_for("fa1"))), 1.0)
        assert not removal.done()
        drv["fa1"].go.set()
        await asyncio.wait_for(removal, 1.0)

    asyncio.run(run())
    assert drv["fa1"].log == [("add", MOVE.tunnel_id), ("remove", FWD)]
    threads = dict(drv["fa1"].threads)
    assert threads["add"] == "vici-fa1" and threads["remove_aside"] == "vici-fa1-aside"


def test_a_re_add_of_the_same_tunnel_waits_for_its_removal() -> None:
    """The MN leaves again at once: the same forwarding tunnel is set anew; its add
    must not overtake its removal (which would take the new end down)."""
    gws, drv = _gateways()

    async def run() -> None:
        removal = asyncio.ensure_future(
            gws.remove_tunnel(RemoveTunnel("fa1", FWD, off_path=True)))
        await asyncio.sleep(0.01)
        add = asyncio.ensure_future(gws.add_tunnel(AddTunnel("fa1", FWD_SPEC.side_for("fa1"))))
        await asyncio.sleep(0.05)
        assert not add.done()
        drv["fa1"].go.set()
        await asyncio.wait_for(asyncio.gather(removal, add), 1.0)

    asyncio.run(run())
    assert drv["fa1"].log == [("remove", FWD), ("add", FWD)]
    assert gws.tunnel_log[("fa1", FWD)]["state"] == "up"


def test_an_ordinary_removal_and_a_driver_without_a_second_session_stay_in_line() -> None:
    """Not off the path, or a driver without ``remove_aside`` (the recording ones):
    the removal runs on the gateway's one worker, in order with its other calls."""
    gws, drv = _gateways()
    plain, plain_drv = _gateways(RecordingGateway)

    async def run() -> None:
        drv["fa1"].go.set()
        await gws.remove_tunnel(RemoveTunnel("fa1", FWD))
        await plain.remove_tunnel(RemoveTunnel("fa1", FWD, off_path=True))

    asyncio.run(run())
    assert drv["fa1"].threads == [] and drv["fa1"].log == [("remove", FWD)]
    assert plain_drv["fa1"].log == [("remove", FWD)]
    assert not RecordingGateway("x").removes_aside and AsideGateway("x").removes_aside


class RecordingQos:
    """A gateway's QoS (``GatewayQos``): records the calls the worker runs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def apply(self, side: Any) -> None:
        self.calls.append(("apply", side.tunnel_id))

    def remove(self, tunnel_id: str) -> None:
        self.calls.append(("remove", tunnel_id))


def test_a_tunnel_without_qos_costs_no_hop_to_the_worker_for_it() -> None:
    """Issue 14: a side whose profile sets no QoS, on a tunnel that never had any
    here, is not handed to the gateway's worker for QoS (one thread hand-off less in
    the move's tunnel step); QoS set, changed or cleared still is, in order."""
    from dataclasses import replace

    from controller.core.vpn import QosSpec
    qos = RecordingQos()
    drivers = {n: RecordingGateway(n) for n in ("ha", "fa1", "fa2")}
    gws = Gateways(drivers, {"fa1": qos}, {})  # type: ignore[arg-type]
    plain = MOVE.side_for("fa1")
    shaped = replace(plain, qos=QosSpec(rate_kbps=512))

    async def run() -> None:
        await gws.add_tunnel(AddTunnel("fa1", plain))           # nothing to do
        await gws.remove_tunnel(RemoveTunnel("fa1", MOVE.tunnel_id))
        await gws.add_tunnel(AddTunnel("fa1", shaped))          # set
        await gws.add_tunnel(AddTunnel("fa1", plain))           # cleared
        await gws.add_tunnel(AddTunnel("fa1", plain))           # nothing left
        await gws.add_tunnel(AddTunnel("fa1", shaped))
        await gws.remove_tunnel(RemoveTunnel("fa1", MOVE.tunnel_id))   # removed
        await gws.remove_tunnel(RemoveTunnel("fa1", MOVE.tunnel_id))   # nothing left

    asyncio.run(run())
    tid = MOVE.tunnel_id
    assert qos.calls == [("apply", tid), ("apply", tid), ("apply", tid), ("remove", tid)]


def test_a_removal_aside_waits_for_an_add_of_the_same_tunnel_in_flight() -> None:
    """The other way round: the tunnel's add still runs on the main worker (a quick
    move back right after the forwarding tunnel was set): its removal aside must not
    overtake it (the add would then leave the tunnel up)."""

    class SlowAdd(AsideGateway):
        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.adding = threading.Event()

        def add_tunnel(self, side: Any, timeout: float = 5.0) -> float:
            self.adding.wait(2.0)
            return super().add_tunnel(side, timeout)

    gws, drv = _gateways(SlowAdd)
    drv["fa1"].go.set()

    async def run() -> None:
        add = asyncio.ensure_future(gws.add_tunnel(AddTunnel("fa1", FWD_SPEC.side_for("fa1"))))
        await asyncio.sleep(0.01)
        removal = asyncio.ensure_future(
            gws.remove_tunnel(RemoveTunnel("fa1", FWD, off_path=True)))
        await asyncio.sleep(0.05)
        assert not removal.done() and drv["fa1"].log == []
        drv["fa1"].adding.set()
        await asyncio.wait_for(asyncio.gather(add, removal), 1.0)

    asyncio.run(run())
    assert drv["fa1"].log == [("add", FWD), ("remove", FWD)]
    assert ("fa1", FWD) not in gws.tunnel_log
