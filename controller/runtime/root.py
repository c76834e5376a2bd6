"""The composition root of the controller runtime: builds the roles from the topology
and the collaborators that run them, wires them, starts and stops them.

One asyncio loop (its own thread) runs every role's network I/O: Diameter nodes on
loopback TCP, the HA's Mobile IPv4 UDP endpoint, the REST API.  os-ken's OpenFlow
threads hand events over with ``call_soon_threadsafe``.  The collaborators (each in its
own module of this package, none importing this one):

* ``Executor`` performs a role's actions in order;
* ``Gateways`` drives the tunnel drivers (``GatewayDriver``) on per-gateway workers;
* ``Switches`` speaks OpenFlow and dispatches packet-ins and port events;
* ``HeldDownlinks`` holds a departed MN's downlink (smooth handoff);
* ``Persistence`` writes and restores the roles' state (issue 5);
* ``MipIo`` carries Mobile IPv4 (UDP endpoints, advertisements, replies to MNs);
* ``DiameterLinks`` holds the Diameter nodes, listeners, peer policy and routes.

``Runtime`` keeps the public surface (REST, web view, metrics, the os-ken app, the
launcher, tests, benchmarks) and forwards to the collaborator that owns each part.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Callable, Coroutine, Iterable

from controller.adapters.diameter_peer import DiameterNode, PeerConnection
from controller.adapters.gateway import GatewayDriver
from controller.adapters.mip_transport import MipEndpoint
from controller.adapters.qos import GatewayQos
from controller.adapters.etcd_state import EtcdStateStore
from controller.adapters.state import StateStore
from controller.adapters.store import VpnStore
from controller.adapters.strongswan import StrongSwanGateway
from controller.core import flows
from controller.core.foreign_agent import ForeignAgent
from controller.core.handover import HandoverLog
from controller.core.role import FA, RoleKey
from controller.core.roles import build_roles
from controller.core.vpn import TunnelSpec
from controller.metrics import Metrics
from controller.runtime import settings
from controller.runtime.diameter_links import DiameterLinks
from controller.runtime.executor import Executor
from controller.runtime.gateways import Gateways, mark_rekeyed
from controller.runtime.held import HeldDownlink, HeldDownlinks
from controller.runtime.held_uplink import HeldUplinks
from controller.runtime.lookup import foreign_agents
from controller.runtime.mip_io import MipIo
from controller.runtime.persistence import Persistence
from controller.runtime.replication import Replication, debounced, is_shared, open_state
from controller.runtime.settings import REQUEST_TIMEOUT, vici_socket
from controller.runtime.switches import Switches
from controller.runtime.workers import DriverWorker

LOG = logging.getLogger("mipvpn.runtime")

__all__ = ["REQUEST_TIMEOUT", "HeldDownlink", "Runtime", "current", "vici_socket"]

_CURRENT: Runtime | None = None


def current() -> Runtime:
    if _CURRENT is None:
        raise RuntimeError("no mipvpn runtime: start it with `mipvpn controller`")
    return _CURRENT


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The runtime's event loop: uvloop's (libuv) when installed, 10-16 % less CPU per
    registration than asyncio's (issue 15, docs/benchmarks.md § 1); asyncio's when it
    is not, or when the environment says ``MIPVPN_EVENT_LOOP=asyncio``."""
    choice = os.environ.get("MIPVPN_EVENT_LOOP", "uvloop")
    if choice not in ("uvloop", "asyncio"):
        raise ValueError(f"MIPVPN_EVENT_LOOP={choice!r}: 'uvloop' or 'asyncio'")
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:
            LOG.info("uvloop is not installed: the runtime runs on asyncio's loop")
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class Runtime:
    def __init__(self, topo: Any, run_dir: str | Path, db_path: str | Path,
                 rest: tuple[str, int] | None = ("127.0.0.1", 8080), *,
                 roles: Iterable[str] | None = None,
                 gateway_factory: Callable[[str], GatewayDriver] | None = None,
                 flow_sink: Callable[[int, tuple[flows.FlowMod, ...]], None] | None = None,
                 fa_ingress: bool = False, advertise: bool = True,
                 persist: bool = True, state_path: str | Path | None = None) -> None:
        """``roles``: the role keys this process runs (default: all; see
        docs/deployment.md).  ``gateway_factory``: gateway name -> tunnel driver (default
        strongSwan over VICI).  ``flow_sink``: receives flow-mods instead of switches
        (benchmarks).  ``fa_ingress``: each FA also takes Registration Requests over UDP
        on loopback (virtual MNs of the load generator).  ``persist``: keep bindings,
        cached VPN information and tunnel state in the VPN database and restore them
        at start (issue 5; docs/deployment.md), in ``state_path`` (default: the VPN
        database ``db_path``; ``etcd://HOST:PORT``: shared with the home domain's
        other replicas, issue 17)."""
        self.topo = topo
        self.run_dir = Path(run_dir)
        self.fabric = flows.Fabric.from_topology(topo)
        self.store = VpnStore(db_path)
        self.store.seed(topo)
        self.rest = rest
        self.handovers = HandoverLog()
        self._malformed_logged: dict[str, tuple[int, float]] = {}  # key -> (count, when)
        self.counters: dict[str, int] = {"flow_mods": 0, "packet_in": 0, "malformed": 0,
                                         "adverts": 0, "held_frames": 0,
                                         "held_forwarded": 0, "held_delivered": 0,
                                         "held_dropped_overflow": 0,
                                         "held_dropped_expired": 0,
                                         "held_dropped_released": 0,
                                         "held_dropped_late": 0}
        self.metrics = Metrics()  # served at /metrics; refreshed from this state per scrape
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="mipvpn-loop",
                                        daemon=True)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.advertise = advertise
        self._build_roles()
        if roles is not None:
            wanted = set(roles)
            unknown = wanted - set(self.roles)
            if unknown:
                raise ValueError(f"unknown roles {sorted(unknown)}; this topology has "
                                 f"{sorted(self.roles)}")
            self.roles = {k: r for k, r in self.roles.items() if k in wanted}
        # the collaborators, each given what it needs; calls that cross between them
        # (the executor, the switches' send_flows) are bound late, through this root
        factory = gateway_factory or (
            lambda name: StrongSwanGateway(name, vici_socket(self.run_dir, name)))
        # QoS (claims 8, 9): tc + DSCP on real gateways only (docs/qos.md)
        qos = ({name: GatewayQos(name, vici_socket(self.run_dir, name))
                for name in topo.gateways} if gateway_factory is None else {})
        self.gateways_ctl = Gateways({name: factory(name) for name in topo.gateways},
                                     qos, self.roles)
        self.gateways_ctl.on_rekeyed = partial(mark_rekeyed, self.handovers)
        self.datapaths: dict[int, Any] = {}
        self.held = HeldDownlinks(self.roles, self.counters, self.datapaths,
                                  self.gateways_ctl.tunnel_established,
                                  lambda dpid, mods: self.send_flows(dpid, mods))
        self.held.uplink = HeldUplinks(
            self.roles, self.counters, self.datapaths,
            lambda gw, tid: self.gateways_ctl.tunnel_log.get((gw, tid), {}).get("state")
            == "up", self.gateways_ctl.tunnel_established,
            lambda dpid, mods: self.send_flows(dpid, mods), lambda c: self.spawn(c),
            self.handovers)
        self.mip_io = MipIo(self.roles, self.counters, self.datapaths, self.ha_by_address,
                            execute=self._execute, spawn=self.spawn,
                            now=lambda: self.now(), fa_ingress=fa_ingress)
        self.switches = Switches(self.loop, self.fabric, self.roles, self.counters,
                                 self.metrics, self.datapaths, self.held, self.mip_io,
                                 flow_sink=flow_sink, execute=self._execute,
                                 spawn=self.spawn, now=lambda: self.now(),
                                 handovers=self.handovers)
        self.links = DiameterLinks(self.roles, self.counters, execute=self._execute,
                                   spawn=self.spawn, now=lambda: self.now(),
                                   snapshot=self.store.snapshot)
        # replicas (issue 17) share the home AAA's listening address (SO_REUSEPORT)
        self.links.shared_listen = persist and is_shared(state_path)
        # restart persistence (issue 5): restore, then track what changes from now on
        self.persistence = Persistence(open_state(state_path or db_path) if persist
                                       else None, self.roles, self.counters, self.loop)
        self.executor = Executor(self.roles, self.handovers, self.metrics,
                                 self.persistence, self.gateways_ctl, self.links,
                                 self.mip_io, self.held, send_flows=self.send_flows,
                                 spawn=self.spawn, now=lambda: self.now(),
                                 snapshot=self.store.snapshot)
        self.restored = self.persistence.restore()
        state = self.persistence.state
        self.replication = Replication(
            state, self.roles, self.counters, post=self.loop.call_soon_threadsafe,
            recompute=debounced(self.spawn, self._reconcile_owned, 0.2)
        ) if isinstance(state, EtcdStateStore) else None

    async def _reconcile_owned(self) -> None:
        """Records taken over from a dead replica (issue 17): every gateway this process
        drives holds the tunnels the roles' state wants."""
        for name in self.gateways_ctl.own():
            try:
                await self.gateways_ctl.reconcile(name)
            except Exception as exc:  # noqa: BLE001 - its supervisor retries
                LOG.warning("gateway %s: reconcile after a takeover failed: %s", name,
                            type(exc).__name__)

    # ================================================================ roles

    def _build_roles(self) -> None:
        built = build_roles(self.topo, self.store)
        self.roles: dict[str, Any] = built.roles
        self.gateway_infos = built.gateway_infos
        self.home_domains = built.home_domains
        self.home_realms = built.home_realms
        self.ha_by_address: dict[str, str] = built.ha_by_address
        self.home_domain = built.home_domain

    def fa(self, name: str) -> ForeignAgent:
        return self.roles[RoleKey(FA, name)]  # type: ignore[no-any-return]

    def foreign_agents(self) -> list[ForeignAgent]:
        return foreign_agents(self.roles)

    # ================================================================ lifecycle

    def start(self) -> None:
        global _CURRENT
        _CURRENT = self
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start_async(), self.loop)
        fut.result(timeout=30)
        if self.replication is not None:
            self.replication.start()

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOG.error("task failed", exc_info=task.exception())

    async def _start_async(self) -> None:
        """Listen for every local role, then connect each Diameter client link in the
        background (a peer in another process may start later: retried); the Mobile
        IPv4 endpoints; the periodic tasks; each gateway's supervisor (or warm-up)."""
        await self.links.start(self.topo, self.home_domain, self.home_realms)
        await self.mip_io.open(self.home_domain)
        self.spawn(self._ticker())
        if self.advertise:
            self.spawn(self.mip_io.advertiser())
        if "aaah" in self.roles:
            self.static_tunnels = self.persistence.load_static_specs(self.roles["aaah"])
        owned = self.gateways_ctl.own()
        for name in self.gateways:
            # a gateway one of our roles drives is reconciled and watched (issue 5);
            # any other is only warmed up (a split deployment's other process owns it)
            self.spawn(self.gateways_ctl.supervise(name) if name in owned
                       else self.gateways_ctl.warm_up(name))
        if self.rest is not None:
            from controller.adapters.rest import serve
            self.spawn(serve(self, *self.rest))
        LOG.info("roles up: %s", ", ".join(sorted(self.roles)))

    async def wait_links(self, timeout: float = 10.0) -> bool:
        """True once every local Diameter client link is connected."""
        return await self.links.wait_links(timeout)

    def stop(self) -> None:
        async def _close() -> None:
            self.mip_io.close()
            await self.links.close()
            tasks = [t for t in self._tasks if not t.done()]
            for task in tasks:  # ticker, advertiser, REST server, ...
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            asyncio.run_coroutine_threadsafe(_close(), self.loop).result(timeout=5)
        except Exception:  # closing is best effort
            LOG.debug("close failed", exc_info=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.gateways_ctl.watchers.shutdown(wait=False)   # its threads end within 0.5 s
        for gw in self.gateways.values():
            gw.close()
        self.persistence.close()
        for qos in self.gateway_qos.values():  # QoS (claims 8, 9)
            qos.close()

    def now(self) -> float:
        return time.time()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(settings.TICK_INTERVAL)
            now = self.now()
            for key, role in list(self.roles.items()):
                try:
                    actions = role.on_tick(now)
                    if actions:
                        await self.execute(key, actions)
                except Exception:  # noqa: BLE001 - one role's bug must not stop expiry
                    self.counters["tick_errors"] = self.counters.get("tick_errors", 0) + 1
                    LOG.exception("%s: lifetime tick failed", key)
            if self.persistence.dirty:   # deletions of a tick that sent nothing (AAA caches)
                self.persistence.flush()
            self.gateways_ctl.prune_reconcile_marks(time.monotonic())
            self.log_malformed(time.monotonic())

    def log_malformed(self, now: float) -> None:
        """One warning per role (and one for the runtime's own sockets / packet-ins) when
        its count of malformed messages grew, at most every ``MALFORMED_LOG_INTERVAL``
        seconds: a flood of garbage is visible in the log without flooding it.  The
        counts themselves are in ``/metrics`` (``mipvpn_malformed_packets_dropped``)."""
        interval = settings.MALFORMED_LOG_INTERVAL
        counts = {k: int(getattr(r, "counters", {}).get("malformed", 0))
                  for k, r in self.roles.items()}
        counts["runtime"] = int(self.counters.get("malformed", 0))
        for key, n in counts.items():
            seen, at = self._malformed_logged.get(key, (0, -interval))
            if n > seen and now - at >= interval:
                LOG.warning("%s: %d malformed message(s) dropped since the last report "
                            "(%d in all)", key, n - seen, n)
                self._malformed_logged[key] = (n, now)

    # ================================================================ the executor

    def _execute(self, key: str, actions: list[Any]) -> Any:
        return self.execute(key, actions)

    async def execute(self, key: str, actions: list[Any]) -> Any:
        """Perform ``actions`` for role ``key`` in order; return its answer, if any."""
        return await self.executor.execute(key, actions)

    def _registered_elsewhere(self, fa_key: str, nai: str) -> bool:
        return self.executor.registered_elsewhere(fa_key, nai)

    # ================================================================ gateways

    @property
    def gateways(self) -> dict[str, GatewayDriver]:
        return self.gateways_ctl.drivers

    @property
    def gateway_qos(self) -> dict[str, GatewayQos]:
        return self.gateways_ctl.qos

    @property
    def tunnel_log(self) -> dict[tuple[str, str], dict[str, Any]]:
        return self.gateways_ctl.tunnel_log

    @property
    def gateway_health(self) -> dict[str, dict[str, Any]]:
        return self.gateways_ctl.health

    @property
    def static_tunnels(self) -> list[TunnelSpec]:
        return self.gateways_ctl.static_tunnels

    @static_tunnels.setter
    def static_tunnels(self, specs: list[TunnelSpec]) -> None:
        self.gateways_ctl.static_tunnels = specs

    @property
    def _gw_exec(self) -> dict[str, DriverWorker]:
        return self.gateways_ctl.workers

    @property
    def _watch_exec(self) -> ThreadPoolExecutor:
        return self.gateways_ctl.watchers

    async def gateway_tunnels(self) -> dict[str, Any]:
        return await self.gateways_ctl.tunnels_json()

    async def _gateway_ready(self, name: str) -> bool:
        return await self.gateways_ctl.ready(name)

    def owned_gateways(self) -> set[str]:
        """Gateways whose tunnels this process's roles decide."""
        return self.gateways_ctl.owned_gateways()

    def tunnels_wanted(self, gateway: str) -> dict[str, TunnelSpec]:
        return self.gateways_ctl.tunnels_wanted(gateway)

    def poke_gateway(self, name: str) -> None:
        self.gateways_ctl.poke_gateway(name)

    # ================================================================ persistence

    @property
    def state(self) -> StateStore | EtcdStateStore | None:
        return self.persistence.state

    # ================================================================ Diameter

    @property
    def nodes(self) -> dict[str, DiameterNode]:
        return self.links.nodes

    @property
    def routes(self) -> dict[str, dict[str, tuple[DiameterNode, PeerConnection]]]:
        return self.links.routes

    @property
    def bound(self) -> dict[str, tuple[str, int]]:
        return self.links.bound

    @property
    def peer_table(self) -> Any:
        return self.links.peer_table

    @property
    def link_failures(self) -> dict[str, int]:
        return self.links.link_failures

    # ================================================================ Mobile IPv4

    @property
    def mip(self) -> dict[str, MipEndpoint]:
        return self.mip_io.mip

    @property
    def ingress(self) -> dict[str, MipEndpoint]:
        return self.mip_io.ingress

    @property
    def _virtual_mn(self) -> dict[tuple[str, str], tuple[str, int]]:
        return self.mip_io.virtual_mn

    def advertisement(self, fa: ForeignAgent) -> bytes:
        return self.mip_io.advertisement(fa)

    def send_advertisement(self, fa: ForeignAgent, port: int | None = None) -> None:
        self.mip_io.send_advertisement(fa, port)

    # ================================================================ held downlink

    @property
    def holds(self) -> dict[tuple[int, str], HeldDownlink]:
        return self.held.holds

    def _held_frame(self, dpid: int, data: bytes, at: float) -> None:
        self.held.held_frame(dpid, data, at)

    # ================================================================ OpenFlow (os-ken threads)

    @property
    def barriers(self) -> dict[tuple[int, int], asyncio.Future[None]]:
        return self.switches.barriers

    @property
    def switch_reconciles(self) -> dict[str, dict[str, Any]]:
        return self.switches.reconciles

    @property
    def flow_sink(self) -> Callable[[int, tuple[flows.FlowMod, ...]], None] | None:
        return self.switches.flow_sink

    @property
    def _on_demand_seen(self) -> dict[tuple[str, str], float]:
        return self.switches.on_demand_seen

    def switch_connected(self, dp: Any) -> None:
        """Called from os-ken's thread on switch features."""
        self.switches.switch_connected(dp)

    def switch_disconnected(self, dpid: int) -> None:
        self.switches.switch_disconnected(dpid)

    def packet_in(self, dpid: int, in_port: int, data: bytes) -> None:
        self.switches.packet_in(dpid, in_port, data)

    def port_added(self, dpid: int, port: int) -> None:
        self.switches.port_added(dpid, port)

    def port_removed(self, dpid: int, port: int) -> None:
        self.switches.port_removed(dpid, port)

    def barrier_reply(self, dpid: int, xid: int) -> None:
        self.switches.barrier_reply(dpid, xid)

    def flow_stats_reply(self, dpid: int, xid: int, body: list[Any], more: bool) -> None:
        self.switches.flow_stats_reply(dpid, xid, body, more)

    async def send_flows(self, dpid: int, mods: tuple[flows.Mod, ...]) -> None:
        await self.switches.send_flows(dpid, mods)
