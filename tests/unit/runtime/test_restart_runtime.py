"""Issue 5 at the runtime: records written before the reply, restored by the next
process, tunnels reconciled against what the gateways' charons still hold, and a
charon that dies is reported degraded, then reconciled when it answers again.

The charons are fakes that outlive a ``Runtime`` (as the real ones outlive the
controller process): loaded connections and established SAs per gateway."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from controller.adapters.gateway import GatewayDriverBase
from controller.adapters.state import StateStore
from controller.adapters.strongswan import TunnelError
from controller.proto import mip
from controller.runtime import Runtime
from tests.unit.runtime.test_runtime_loopback import free_port_topology, register

NAI = "alice@home.example"
HA_FA1 = "alice_home.example/ha-fa1"
STATIC = "static/ha-cngw"


class FakeCharon:
    def __init__(self, name: str, world: dict[str, FakeCharon]) -> None:
        self.name = name
        self.world = world
        self.conns: dict[str, Any] = {}
        self.sas: set[str] = set()
        self.down = False

    def restart(self) -> None:   # a fresh charon: nothing loaded
        self.conns.clear()
        self.sas.clear()


class FakeDriver(GatewayDriverBase):
    """``StrongSwanGateway``'s interface over a ``FakeCharon``; ``calls`` records
    every change this controller process made."""

    def __init__(self, charon: FakeCharon) -> None:
        self.c = charon
        self.calls: list[tuple[str, str]] = []

    def _check(self) -> None:
        if self.c.down:
            raise TunnelError(f"{self.c.name}: VICI socket: connection refused")

    def version(self) -> dict[str, str]:
        self._check()
        return {"daemon": "fake"}

    def _peer(self, side: Any) -> FakeCharon:
        return self.c.world[side.remote.gateway]

    def add_tunnel(self, side: Any, timeout: float = 5.0) -> float:
        self._check()
        self.calls.append(("initiate" if side.initiator else "add", side.tunnel_id))
        tid = side.tunnel_id
        for end in (self.c, self._peer(side)):
            end.sas.discard(tid)      # replacing terminates the SA
        self.c.conns[tid] = side
        if side.initiator:
            peer = self._peer(side)
            if peer.down or tid not in peer.conns:
                raise TunnelError(f"{tid}: peer does not answer")
            self.c.sas.add(tid)
            peer.sas.add(tid)
        return 0.001

    def load_tunnel(self, side: Any) -> float:
        self._check()
        self.calls.append(("load", side.tunnel_id))
        self.c.conns[side.tunnel_id] = side
        return 0.001

    def remove_tunnel(self, tunnel_id: str) -> None:
        self._check()
        self.calls.append(("remove", tunnel_id))
        side = self.c.conns.pop(tunnel_id, None)
        self.c.sas.discard(tunnel_id)
        if side is not None:
            self._peer(side).sas.discard(tunnel_id)

    def adopt(self, side: Any) -> None:
        self.calls.append(("adopt", side.tunnel_id))

    def loaded_connections(self) -> dict[str, dict[str, list[str]]]:
        self._check()
        return {tid: {"remote_addrs": [s.remote.address], "local_ts": list(s.local.selectors),
                      "remote_ts": list(s.remote.selectors)}
                for tid, s in self.c.conns.items()}

    def tunnels(self) -> list[Any]:
        self._check()
        return [SimpleNamespace(tunnel_id=t, established=True, state="ESTABLISHED")
                for t in sorted(self.c.sas)]

    def close(self) -> None:
        pass


def wait(cond: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


class World:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.topo = free_port_topology()
        self.charons: dict[str, FakeCharon] = {}
        for name in self.topo.gateways:
            self.charons[name] = FakeCharon(name, self.charons)
        self.drivers: dict[str, FakeDriver] = {}

    def controller(self) -> Runtime:
        self.drivers = {}

        def factory(name: str) -> FakeDriver:
            self.drivers[name] = FakeDriver(self.charons[name])
            return self.drivers[name]

        rt = Runtime(self.topo, self.tmp, self.tmp / "vpn.db", rest=None,
                     gateway_factory=factory, flow_sink=lambda dpid, m: None,
                     fa_ingress=True, advertise=False)
        rt.start()
        assert asyncio.run_coroutine_threadsafe(rt.wait_links(), rt.loop).result(10)
        wait(lambda: all(h["state"] == "up" for h in list(rt.gateway_health.values()))
             and len(rt.gateway_health) == len(rt.owned_gateways()))
        return rt

    def calls(self, gw: str) -> list[tuple[str, str]]:
        return self.drivers[gw].calls


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


@pytest.fixture
def sock() -> Any:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    yield s
    s.close()


def on_loop(rt: Runtime, fn: Any) -> Any:
    async def call() -> Any:
        return fn()
    return asyncio.run_coroutine_threadsafe(call(), rt.loop).result(5)


def test_fresh_start_sets_the_static_tunnel_responder_first(world: World) -> None:
    rt = world.controller()
    try:
        wait(lambda: STATIC in world.charons["cngw"].sas)
        assert ("load", STATIC) in world.calls("ha")
        assert world.calls("cngw")[-1] == ("initiate", STATIC)
        stored = StateStore(world.tmp / "vpn.db").load("runtime:static")
        assert list(stored["runtime:static"]) == [STATIC]
    finally:
        rt.stop()


def test_restart_keeps_bindings_and_touches_no_matching_tunnel(world: World, sock) -> None:
    rt = world.controller()
    try:
        wait(lambda: STATIC in world.charons["cngw"].sas)
        rrp = register(rt, sock, "fa1", mip.ntp_identification(time.time()))
        assert rrp.code == 0
        # written before the reply left: another reader sees it now
        seen = StateStore(world.tmp / "vpn.db").load()
        assert NAI in seen["ha"] and NAI in seen["fa:fa1"] and NAI in seen["aaah"]
        assert NAI in seen["aaaf:domain-a"]
        before = on_loop(rt, lambda: {n: (b.care_of_address, b.expires, b.identification)
                                      for n, b in rt.roles["ha"].bindings.items()})
    finally:
        rt.stop()
    sas = {n: set(c.sas) for n, c in world.charons.items()}
    rt = world.controller()
    try:
        after = on_loop(rt, lambda: {n: (b.care_of_address, b.expires, b.identification)
                                     for n, b in rt.roles["ha"].bindings.items()})
        assert after == before                               # 0 bindings lost
        assert rt.restored == {"ha": 1, "aaah": 1, "aaaf:domain-a": 1, "fa:fa1": 1}
        assert NAI in rt.fa("fa1").visitors
        # nothing re-keyed, nothing removed: every tunnel adopted as it was
        for gw in world.topo.gateways:
            assert all(op == "adopt" for op, _ in world.calls(gw)), (gw, world.calls(gw))
        assert {n: set(c.sas) for n, c in world.charons.items()} == sas
        assert rt.tunnel_log[("fa1", HA_FA1)]["state"] == "up"
        assert rt.tunnel_log[("ha", HA_FA1)]["state"] == "configured"
    finally:
        rt.stop()


def test_restart_removes_stale_and_restores_missing_tunnels(world: World, sock) -> None:
    rt = world.controller()
    try:
        wait(lambda: STATIC in world.charons["cngw"].sas)
        assert register(rt, sock, "fa1", mip.ntp_identification(time.time())).code == 0
    finally:
        rt.stop()
    # while no controller runs: the HA's charon lost alice's tunnel (its SA with it),
    # and FA2 holds one nobody wants any more
    ha_side = world.charons["ha"].conns.pop(HA_FA1)
    world.charons["ha"].sas.discard(HA_FA1)
    world.charons["fa1"].sas.discard(HA_FA1)
    stale = SimpleNamespace(tunnel_id="bob_home.example/ha-fa2",
                            remote=SimpleNamespace(address="10.0.0.1", gateway="ha",
                                                   selectors=("10.30.0.0/24",)),
                            local=SimpleNamespace(address="10.0.0.12", gateway="fa2",
                                                  selectors=("10.10.0.101/32",)))
    world.charons["fa2"].conns[stale.tunnel_id] = stale
    rt = world.controller()
    try:
        wait(lambda: HA_FA1 in world.charons["fa1"].sas)
        assert ("load", HA_FA1) in world.calls("ha")
        assert ("initiate", HA_FA1) in world.calls("fa1")      # the initiator re-keys
        assert world.calls("fa1").count(("initiate", HA_FA1)) == 1
        assert world.calls("fa2") == [("remove", stale.tunnel_id)]
        assert world.charons["ha"].conns[HA_FA1].psk == ha_side.psk   # the stored key
        assert world.calls("cngw") == [("adopt", STATIC)]
        h = rt.gateway_health["fa2"]["last_reconcile"]
        assert (h["removed"], h["kept"], h["added"]) == (1, 0, 0)
    finally:
        rt.stop()


def test_a_dead_charon_is_degraded_then_reconciled(world: World, sock) -> None:
    rt = world.controller()
    try:
        wait(lambda: STATIC in world.charons["cngw"].sas)
        assert register(rt, sock, "fa1", mip.ntp_identification(time.time())).code == 0
        wait(lambda: HA_FA1 in world.charons["ha"].sas)
        ha = world.charons["ha"]
        ha.down = True                                  # charon killed ...
        wait(lambda: rt.gateway_health["ha"]["state"] == "degraded", 5)
        assert rt.gateway_health["ha"]["outages"] == 1
        assert rt.gateway_health["fa1"]["state"] == "up"
        ha.restart()                                    # ... and started again, empty;
        assert HA_FA1 in world.charons["fa1"].sas       # FA1 still thinks its SA is up
        ha.down = False
        wait(lambda: rt.gateway_health["ha"]["state"] == "up", 5)
        wait(lambda: HA_FA1 in ha.sas and STATIC in ha.sas)
        assert set(ha.conns) == {HA_FA1, STATIC}
        assert rt.gateway_health["ha"]["last_outage_s"] is not None
        assert ("initiate", HA_FA1) in world.calls("fa1")
        assert ("initiate", STATIC) in world.calls("cngw")
    finally:
        rt.stop()


def test_an_unreadable_record_is_dropped_without_logging_it(world: World, caplog) -> None:
    secret = "ab" * 32
    store = StateStore(world.tmp / "vpn.db")
    store.write([("ha", NAI, {"home_address": "10.10.0.100", "psk": secret}),
                 ("fa:fa1", NAI, {"visitor": {"vpn_info": {"tunnels": [{"psk": secret}]}}})])
    store.close()
    with caplog.at_level("DEBUG"):
        rt = world.controller()
    try:
        assert rt.restored == {}
        assert NAI not in rt.roles["ha"].bindings and NAI not in rt.fa("fa1").visitors
        text = caplog.text
        assert "unreadable" in text and NAI in text
        assert secret not in text
    finally:
        rt.stop()


def test_a_hung_charon_is_not_ready(tmp_path, monkeypatch) -> None:
    """A charon that keeps its VICI socket open but does not answer (e.g. stopped) is
    reported not ready after HEALTH_TIMEOUT (then degraded), instead of the check
    waiting for ever."""
    import asyncio as _asyncio
    import threading as _threading

    from controller.runtime import settings as runtime_mod
    from controller.config import load_topology
    from controller.runtime import Runtime
    from tests.unit.harness import DEFAULT_TOPOLOGY

    release = _threading.Event()

    class Hung(GatewayDriverBase):
        def version(self) -> dict[str, str]:
            release.wait(5)
            return {"daemon": "hung"}

        def close(self) -> None:
            pass

    monkeypatch.setattr(runtime_mod, "HEALTH_TIMEOUT", 0.2)
    rt = Runtime(load_topology(DEFAULT_TOPOLOGY), tmp_path, ":memory:", rest=None,
                 gateway_factory=lambda name: Hung(), advertise=False,
                 flow_sink=lambda dpid, mods: None)
    try:
        async def check() -> tuple[bool, float]:
            rt.loop = _asyncio.get_running_loop()   # the runtime's loop is not started
            t0 = time.monotonic()
            ready = await rt._gateway_ready("ha")
            return ready, time.monotonic() - t0
        ready, took = _asyncio.run(check())
        assert ready is False and 0.15 < took < 2
    finally:
        release.set()
