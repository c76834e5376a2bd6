"""Issue 14: flow-mods the FA does not need before its tunnel (``SendFlows(wait=False)``)
are sent while the tunnel comes up, not before it; their barrier is awaited before
the Registration Reply goes to the MN.  The executor with fakes: a switch whose
barrier answers when the test says, a gateway that notes when its tunnel starts."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from controller.core.actions import AddTunnel, SendFlows, SendToMobileNode
from controller.model.vpn import QosSpec, SecuritySpec, TunnelEnd, TunnelSide
from controller.runtime.executor import Executor


def executor(events: list[str], barrier: asyncio.Event) -> Executor:
    async def send_flows(dpid: int, mods: Any) -> None:
        events.append("flows sent")
        await barrier.wait()
        events.append("barrier")

    async def add_tunnel(action: AddTunnel) -> None:
        events.append("tunnel start")
        await asyncio.sleep(0.01)
        events.append("tunnel up")
        barrier.set()

    gateways = SimpleNamespace(add_tunnel=add_tunnel)
    mip_io = SimpleNamespace(send_to_mn=lambda a: events.append("rrp"))
    persistence = SimpleNamespace(dirty=False)
    return Executor({}, SimpleNamespace(), SimpleNamespace(), persistence,  # type: ignore[arg-type]
                    gateways, SimpleNamespace(), mip_io, SimpleNamespace(),  # type: ignore[arg-type]
                    send_flows=send_flows, spawn=lambda c: None, now=lambda: 0.0)


#: a tunnel end as the roles give one (the actions are compiled: their fields' types hold)
SIDE = TunnelSide("alice/ha-fa2", TunnelEnd("fa2", "10.0.0.12", ("10.10.0.100/32",)),
                  TunnelEnd("ha", "10.0.0.1", ("10.30.0.0/24",)), b"k" * 32, SecuritySpec(),
                  QosSpec(), True)


def walk(wait: bool) -> list[str]:
    events: list[str] = []

    async def go() -> None:
        barrier = asyncio.Event()
        ex = executor(events, barrier)
        # the barrier answers once the tunnel is up: awaiting it first would hang
        await asyncio.wait_for(ex.execute("fa:fa2", [
            SendFlows(0x402, (), wait=wait),
            AddTunnel("fa2", SIDE),
            SendToMobileNode("fa2", b"rrp", "02:00:00:00:01:00", "10.10.0.100", 2)]), 2.0)
    asyncio.run(go())
    return events


def test_flows_go_alongside_the_tunnel_and_settle_before_the_reply() -> None:
    events = walk(wait=False)
    assert events.index("tunnel start") < events.index("barrier")
    assert events.index("barrier") < events.index("rrp")


def test_by_default_the_barrier_comes_first() -> None:
    """wait=True (every flow change but the FA's steering of a seamless MN): the
    barrier is awaited before the next action."""
    events: list[str] = []

    async def go() -> None:
        barrier = asyncio.Event()
        barrier.set()
        ex = executor(events, barrier)
        await ex.execute("fa:fa2", [SendFlows(0x402, ()),
                                    AddTunnel("fa2", SIDE)])
    asyncio.run(go())
    assert events == ["flows sent", "barrier", "tunnel start", "tunnel up"]


def test_a_removal_off_the_path_runs_beside_the_walk() -> None:
    """Issue 14: ``RemoveTunnel(off_path=True)`` (the old FA's forwarding tunnel when
    the MN is back, asked as soon as the local AAA accepted it) is spawned: what follows
    (the relay to the HA) does not wait for it.  An ordinary removal is in line."""
    from controller.core.actions import RemoveTunnel

    for off_path, expected in ((True, ["rrp", "removing", "removed"]),
                               (False, ["removing", "removed", "rrp"])):
        events: list[str] = []
        spawned: list[Any] = []

        async def remove_tunnel(action: RemoveTunnel) -> None:
            events.append("removing")
            await asyncio.sleep(0.01)
            events.append("removed")

        async def go() -> None:
            ex = executor(events, asyncio.Event())
            ex.gateways = SimpleNamespace(retire_tunnel=remove_tunnel)  # type: ignore[assignment]
            ex.spawn = lambda c: spawned.append(asyncio.ensure_future(c))  # type: ignore[assignment]
            await ex.execute("fa:fa2", [
                RemoveTunnel("fa2", "alice/fa2-fa1", off_path=off_path),
                SendToMobileNode("fa2", b"rrp", "02:00:00:00:01:00", "10.10.0.100", 2)])
            await asyncio.gather(*spawned)
        asyncio.run(go())
        assert events == expected, (off_path, events)
