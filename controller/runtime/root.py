"""The controller runtime: roles from the topology, their transports, one executor.

One asyncio loop (its own thread) runs every role's network I/O: Diameter nodes on
loopback TCP, the HA's Mobile IPv4 UDP endpoint, the REST API.  os-ken's OpenFlow
threads hand events over with ``call_soon_threadsafe``.  The executor walks a role's
actions in order: tunnel actions run on a per-gateway worker (VICI is blocking),
flow-mods are sent with a barrier and awaited, Diameter requests are awaited and
their answers fed back to the role that sent them.  A move therefore reads as one
straight walk: port event -> FA -> AAA -> HA -> tunnel actions -> flow actions.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable

from controller.adapters import diameter_tls, openflow
from controller.adapters.gateway import GatewayDriver
from controller.adapters.diameter_peer import DiameterError, DiameterNode, PeerConnection
from controller.adapters.mip_transport import MipEndpoint
from controller.adapters.qos import GatewayQos
from controller.adapters.state import StateStore
from controller.adapters.store import VpnStore
from controller.adapters.strongswan import StrongSwanGateway, TunnelError
from controller.core import flows
from controller.core.aaa_home import HomeAaa
from controller.core.actions import (AddTunnel, AnswerDiameter, HoldTraffic, Mark,
                                     NotifyVisitorLeft, RelayToHomeAgent, ReleaseHold,
                                     RemoveTunnel, ReplyMip, SendDiameter, SendFlows,
                                     SendMip, SendToMobileNode)
from controller.core.foreign_agent import ForeignAgent
from controller.core.handover import HandoverLog
from controller.core import peers, persist
from controller.core.roles import build_roles
from controller.core.vpn import TunnelSide, TunnelSpec
from controller.metrics import Metrics
from controller.proto import diameter as dia
from controller.proto import mip

LOG = logging.getLogger("mipvpn.runtime")

ADVERT_INTERVAL = 1.0
TICK_INTERVAL = 1.0
# Diameter request timeouts: the FA gives up first and takes a late answer
# (``on_late_diameter_answer``); every hop without a late path waits longer than the
# hop behind it, so it still relays the answer its client gave up on: the AAAF (to the
# AAAH) outwaits the AAAH (to the HA).  Nothing half-installed (docs/decisions.md).
REQUEST_TIMEOUT = {"fa": 5.0, "aaah": 10.0, "aaaf": 15.0}
MALFORMED_LOG_INTERVAL = 10.0   # seconds between two "malformed" warnings of one role
TUNNEL_TRIES = 2  # an initiator retries once (e.g. the peer re-keyed meanwhile)
HEALTH_INTERVAL = 1.0   # s between two checks of a gateway's charon (VICI version)
HEALTH_TIMEOUT = 12.0   # s a charon may take to answer `version` before it is degraded
DEGRADED_POLL = 0.2     # s between two checks while a gateway is unreachable
STATIC_STATE = "runtime:static"   # role_state rows of the stationary tunnels
#: actions that make this controller's decisions visible to others: the state that
#: led to them is written to the state store first (issue 5)
_VISIBLE = (AnswerDiameter, ReplyMip, SendToMobileNode, SendMip, SendDiameter,
            RelayToHomeAgent, NotifyVisitorLeft)

#: smooth handoff (claims 22-23): bounds of the downlink held for a departed MN
HOLD_MAX_FRAMES = 2000   # per MN; beyond, the oldest frame is dropped
HOLD_MAX_AGE = 2.0       # s; an older frame is dropped instead of forwarded
HOLD_TUNNEL_WAIT = 3.0   # s the old FA's forwarding tunnel may take to come up
HOLD_POLL = 0.005        # s between two looks at that tunnel's state
HOLD_PEER_GRACE = 0.05   # s given a peer gateway this controller cannot ask

_CURRENT: Runtime | None = None


@dataclass
class HeldDownlink:
    """Frames punted towards a departed MN at its old access switch (``HoldTraffic``):
    (arrival, frame), oldest first."""

    foreign_agent: str
    nai: str
    frames: deque[tuple[float, bytes]] = field(
        default_factory=lambda: deque(maxlen=HOLD_MAX_FRAMES))
    forwarding: bool = False    # released into the FA: frames go on at once
    counts: dict[str, int] = field(default_factory=lambda: {
        "held": 0, "forwarded": 0, "overflow": 0, "expired": 0, "dropped": 0})


def current() -> Runtime:
    if _CURRENT is None:
        raise RuntimeError("no mipvpn runtime: start it with `mipvpn controller`")
    return _CURRENT


def vici_socket(run_dir: str | Path, gateway: str) -> Path:
    """Where gateway ``gateway``'s charon listens for VICI (shared filesystem)."""
    return Path(run_dir) / "gw" / gateway / "charon.vici"


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
        database ``db_path``)."""
        self.topo = topo
        self.run_dir = Path(run_dir)
        self.fabric = flows.Fabric.from_topology(topo)
        self.store = VpnStore(db_path)
        self.store.seed(topo)
        self.rest = rest
        self.handovers = HandoverLog()
        self.datapaths: dict[int, Any] = {}
        self.barriers: dict[tuple[int, int], asyncio.Future[None]] = {}
        self.tunnel_log: dict[tuple[str, str], dict[str, Any]] = {}
        self.static_tunnels: list[TunnelSpec] = []
        self._malformed_logged: dict[str, tuple[int, float]] = {}  # key -> (count, when)
        self.counters: dict[str, int] = {"flow_mods": 0, "packet_in": 0, "malformed": 0,
                                         "adverts": 0, "held_frames": 0,
                                         "held_forwarded": 0, "held_dropped_overflow": 0,
                                         "held_dropped_expired": 0,
                                         "held_dropped_released": 0,
                                         "held_dropped_late": 0}
        # (access dpid, MN MAC) -> the downlink held for a departed MN (claims 22-23)
        self.holds: dict[tuple[int, str], HeldDownlink] = {}
        self.metrics = Metrics()  # served at /metrics; refreshed from this state per scrape
        self.link_failures: dict[str, int] = {}   # role key -> failed Diameter dials
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="mipvpn-loop",
                                        daemon=True)
        self._tasks: set[asyncio.Task[Any]] = set()
        factory = gateway_factory or (
            lambda name: StrongSwanGateway(name, vici_socket(self.run_dir, name)))
        self.gateways: dict[str, GatewayDriver] = {name: factory(name)
                                                    for name in topo.gateways}
        self._gw_exec = {name: ThreadPoolExecutor(1, thread_name_prefix=f"vici-{name}")
                         for name in topo.gateways}
        # one thread per gateway blocks on a VICI connection charon closes when it
        # dies (issue 5: charon loss seen at once, not at the next health check)
        self._watch_exec = ThreadPoolExecutor(max(1, len(topo.gateways)),
                                              thread_name_prefix="vici-watch")
        # QoS (claims 8, 9): tc + DSCP on real gateways only (docs/qos.md)
        self.gateway_qos = ({name: GatewayQos(name, vici_socket(self.run_dir, name))
                             for name in topo.gateways} if gateway_factory is None else {})
        self.flow_sink = flow_sink
        self.fa_ingress = fa_ingress
        self.advertise = advertise
        self._advert_seq: dict[str, int] = {}
        self.mip: dict[str, MipEndpoint] = {}
        self.ingress: dict[str, MipEndpoint] = {}
        self._virtual_mn: dict[tuple[str, str], tuple[str, int]] = {}
        self._on_demand_seen: dict[tuple[str, str], float] = {}
        self._build_roles()
        if roles is not None:
            wanted = set(roles)
            unknown = wanted - set(self.roles)
            if unknown:
                raise ValueError(f"unknown roles {sorted(unknown)}; this topology has "
                                 f"{sorted(self.roles)}")
            self.roles = {k: r for k, r in self.roles.items() if k in wanted}
        # restart persistence (issue 5): restore, then track what changes from now on
        self.state = StateStore(state_path or db_path) if persist else None
        self._dirty: dict[str, set[str]] = {}
        self.gateway_health: dict[str, dict[str, Any]] = {}
        self._initiated: dict[str, float] = {}
        self._gw_poke: dict[str, asyncio.Event] = {}
        self._touched: dict[tuple[str, str], float] = {}   # (gateway, tunnel) -> set at
        self._stats: dict[tuple[int, int], tuple[list[Any], asyncio.Future[Any]]] = {}
        self.switch_reconciles: dict[str, dict[str, Any]] = {}
        self._owned: set[str] = set()
        self.restored = self._restore_state()

    # ================================================================ roles

    def _build_roles(self) -> None:
        built = build_roles(self.topo, self.store)
        self.roles: dict[str, Any] = built.roles
        self.nodes: dict[str, DiameterNode] = {}
        self.gateway_infos = built.gateway_infos
        self.home_domains = built.home_domains
        self.home_realms = built.home_realms
        self.ha_by_address: dict[str, str] = built.ha_by_address
        self.home_domain = built.home_domain

    def fa(self, name: str) -> ForeignAgent:
        return self.roles[f"fa:{name}"]  # type: ignore[no-any-return]

    def foreign_agents(self) -> list[ForeignAgent]:
        return [r for k, r in self.roles.items() if k.startswith("fa:")]

    # ================================================================ lifecycle

    def start(self) -> None:
        global _CURRENT
        _CURRENT = self
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start_async(), self.loop)
        fut.result(timeout=30)

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOG.error("task failed", exc_info=task.exception())

    async def _start_async(self) -> None:
        """Listen for every local role, then connect each Diameter client link in the
        background (a peer in another process may start later: retried)."""
        self.routes: dict[str, dict[str, tuple[DiameterNode, PeerConnection]]] = {}
        topo = self.topo
        home = self.home_domain
        assert home is not None and home.aaa is not None and home.home_agent is not None
        aaah_addr = (home.aaa.listen_host, home.aaa.listen_port)
        ha_addr = (home.home_agent.diameter_listen_host, home.home_agent.diameter_listen_port)
        # listening roles first; a local peer is reached at its bound address (port 0
        # in a topology = any free port, for tests), a remote one at its configured one
        self.bound: dict[str, tuple[str, int]] = {}
        # issue 11: each listener takes only the peers the topology names for it
        self.peer_table = peers.build_peer_table(topo)
        ha_tls = getattr(home.home_agent, "tls", None)
        if "ha" in self.roles:
            self.nodes["ha"] = DiameterNode(
                home.home_agent.host, home.realm, handler=self._handler("ha"),
                allowed_peers=self._peer_policy("ha"),
                max_connections=getattr(home.home_agent, "max_connections", None))
            port = await self.nodes["ha"].listen(
                *ha_addr, ssl=diameter_tls.server_context(ha_tls))
            ha_addr = self.bound["ha"] = (ha_addr[0], port)
        # Diameter between domains over TLS when the home AAA has aaa.tls (issue 5);
        # inside a domain when the listener's own role has tls (issue 11): the dialling
        # side presents its domain's certificate
        home_tls = getattr(home.aaa, "tls", None)
        if "aaah" in self.roles:
            self.nodes["aaah"] = DiameterNode(
                home.aaa.host, home.realm, handler=self._handler("aaah"),
                request_timeout=REQUEST_TIMEOUT["aaah"],
                allowed_peers=self._peer_policy("aaah"),
                max_connections=getattr(home.aaa, "max_connections", None))
            port = await self.nodes["aaah"].listen(
                *aaah_addr, ssl=diameter_tls.server_context(home_tls))
            aaah_addr = self.bound["aaah"] = (aaah_addr[0], port)
            tls = diameter_tls.client_context(home_tls) if ha_tls is not None else None
            self.spawn(self._link("aaah", home.home_agent.host, ha_addr, ssl=tls,
                                  server_hostname=home.home_agent.host if tls else None))
        for key in [k for k in self.roles if k.startswith("aaaf:")]:
            fdom = topo.domains[key.split(":", 1)[1]]
            fdom_tls = getattr(fdom.aaa, "tls", None)
            node = DiameterNode(fdom.aaa.host, fdom.realm, handler=self._handler(key),
                                request_timeout=REQUEST_TIMEOUT["aaaf"],
                                allowed_peers=self._peer_policy(key),
                                max_connections=getattr(fdom.aaa, "max_connections", None))
            port = await node.listen(fdom.aaa.listen_host, fdom.aaa.listen_port,
                                     ssl=diameter_tls.server_context(fdom_tls))
            self.bound[key] = (fdom.aaa.listen_host, port)
            self.nodes[key] = node
            tls = diameter_tls.client_context(fdom_tls) if home_tls is not None else None
            for realm in sorted(self.home_realms):
                self.spawn(self._link(key, realm, aaah_addr, ssl=tls,
                                      server_hostname=home.aaa.host if tls else None))
        for fa in self.foreign_agents():
            dname = topo.gateways[fa.conf.name].domain
            fdom = topo.domains[dname]
            key = f"fa:{fa.conf.name}"
            self.nodes[key] = DiameterNode(fa.conf.host, fa.conf.realm,
                                           request_timeout=REQUEST_TIMEOUT["fa"])
            addr = self.bound.get(f"aaaf:{dname}", (fdom.aaa.listen_host,
                                                    fdom.aaa.listen_port))
            tls = diameter_tls.client_context(getattr(fdom.aaa, "tls", None))
            self.spawn(self._link(key, fdom.realm, addr, ssl=tls,
                                  server_hostname=fdom.aaa.host if tls else None))
        # one Mobile IPv4 UDP endpoint per local agent role (loopback)
        for key in self.roles:
            if key == "ha":
                addr = (home.home_agent.mip_listen_host, home.home_agent.mip_listen_port)
            elif key.split(":", 1)[0] in ("fa", "cngw"):
                addr = ("127.0.0.1", 0)
            else:
                continue
            self.mip[key] = await MipEndpoint.open(key, self._mip_handler(key), *addr)
            if self.fa_ingress and key.startswith("fa:"):
                self.ingress[key] = await MipEndpoint.open(
                    f"{key}/ingress", self._ingress_handler(key), "127.0.0.1", 0)
        self.spawn(self._ticker())
        if self.advertise:
            self.spawn(self._advertiser())
        if "aaah" in self.roles:
            self.static_tunnels = self._load_static_specs()
        owned = self._owned = self.owned_gateways()
        for name in self.gateways:
            # a gateway one of our roles drives is reconciled and watched (issue 5);
            # any other is only warmed up (a split deployment's other process owns it)
            self.spawn(self._gateway_supervisor(name) if name in owned
                       else self._warm_up(name))
        if self.rest is not None:
            from controller.adapters.rest import serve
            self.spawn(serve(self, *self.rest))
        LOG.info("roles up: %s", ", ".join(sorted(self.roles)))

    def _peer_policy(self, listener: str) -> Any:
        """The peer table for ``listener``; a peer that is a role of this process must
        come on one of this process's own client connections (issue 11)."""
        return peers.peer_policy(self.peer_table, listener, frozenset(self.roles),
                                 self._own_endpoint)

    def _own_endpoint(self, address: str, port: int) -> bool:
        """(address, port) is the local end of a Diameter connection one of this
        process's nodes dialled (its CER is being answered: it is registered)."""
        for node in self.nodes.values():
            for conn in node.connections:
                if not conn.initiator:
                    continue
                local = conn.writer.get_extra_info("sockname")
                if local and str(local[0]) == address and int(local[1]) == port:
                    return True
        return False

    async def _link(self, key: str, to: str, addr: tuple[str, int], *,
                    ssl: Any = None, server_hostname: str | None = None) -> None:
        """Connect role ``key``'s Diameter node to ``addr`` (route ``to``), retrying
        (over TLS with ``ssl``, the server's certificate checked for
        ``server_hostname``)."""
        delay = 0.05
        failures = 0
        while True:
            try:
                # reconnect: a peer that goes away (watchdog) is redialled with backoff,
                # on the same connection object, so the route below stays valid
                conn = await self.nodes[key].connect(*addr, reconnect=True, ssl=ssl,
                                                     server_hostname=server_hostname)
            except (OSError, DiameterError) as exc:
                failures += 1
                self.counters["diameter_link_failures"] = (
                    self.counters.get("diameter_link_failures", 0) + 1)
                self.link_failures[key] = self.link_failures.get(key, 0) + 1
                if failures in (10, 100, 1000) or (ssl is not None and failures == 1):
                    # a TLS refusal (often seen only as a connection closed during the
                    # CER) or a peer that stays away does not heal by retrying: say so,
                    # not every time
                    LOG.warning("%s: Diameter link to %s at %s:%d not established%s "
                                "(%d attempts): %s", key, to, addr[0], addr[1],
                                " over TLS" if ssl is not None else "", failures, exc)
                LOG.debug("%s: connecting to %s at %s: %s", key, to, addr, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self.routes.setdefault(key, {})[to] = (self.nodes[key], conn)
            LOG.info("%s: Diameter peer %s at %s:%d up%s", key, to, *addr,
                     " (TLS)" if ssl is not None else "")
            return

    async def wait_links(self, timeout: float = 10.0) -> bool:
        """True once every local Diameter client link is connected."""
        expected = {k for k in self.roles if k == "aaah" or k.startswith(("aaaf:", "fa:"))}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if expected <= set(self.routes):
                return True
            await asyncio.sleep(0.02)
        return False

    def stop(self) -> None:
        async def _close() -> None:
            for ep in list(self.mip.values()) + list(self.ingress.values()):
                ep.close()
            for node in self.nodes.values():
                await node.close()
            tasks = [t for t in self._tasks if not t.done()]
            for task in tasks:  # ticker, advertiser, REST server, ...
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            asyncio.run_coroutine_threadsafe(_close(), self.loop).result(timeout=5)
        except Exception:  # closing is best effort
            LOG.debug("close failed", exc_info=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._watch_exec.shutdown(wait=False)   # its threads end within 0.5 s
        for gw in self.gateways.values():
            gw.close()
        if self.state is not None:
            self.state.close()
        for qos in self.gateway_qos.values():  # QoS (claims 8, 9)
            qos.close()

    def now(self) -> float:
        return time.time()

    def _late_answer_handler(self, key: str) -> Any:
        """An answer that arrives after its request timed out goes to the role (the FA:
        the home side may have completed a registration the FA already refused)."""
        def late(answer: Any) -> None:
            role = self.roles[key]
            if self._registered_elsewhere(key, getattr(answer, "user_name", "")):
                role.on_late_diameter_answer_dropped(answer)
                return
            self.spawn(self.execute(key, role.on_late_diameter_answer(self.now(), answer)))
        return late

    def _registered_elsewhere(self, fa_key: str, nai: str) -> bool:
        """The MN registered (or is registering) through another FA of this process,
        or the HA here binds it to another FA: a late answer for ``fa_key`` is stale."""
        for key, role in self.roles.items():
            if key == fa_key or not key.startswith("fa:"):
                continue
            if nai in role.visitors or any(p.nai == nai for p in role.pending.values()):
                return True
        ha = self.roles.get("ha")
        binding = ha.bindings.get(nai) if ha is not None else None
        return binding is not None and binding.foreign_agent != fa_key.split(":", 1)[1]

    # ================================================================ executor

    def _handler(self, key: str) -> Any:
        async def handle(request: Any, conn: PeerConnection) -> Any:
            # issue 11: judged by who is on the connection (its CER, admitted by the
            # peer table), not by what the request says about its sender
            refusal = peers.judge(self.peer_table, key, request, conn.remote_host,
                                  conn.remote_realm)
            if refusal is not None:
                return self._refuse_request(key, request, conn, refusal)
            role = self.roles[key]
            now = self.now()
            if isinstance(request, dia.AmRequest):
                actions = role.on_amr(now, request)
            elif isinstance(request, dia.HaRequest):
                actions = role.on_har(now, request)
            else:
                raise ValueError(f"{key} does not handle {type(request).__name__}")
            return await self.execute(key, actions)
        return handle

    def _refuse_request(self, key: str, request: Any, conn: PeerConnection,
                        refusal: peers.Refusal) -> Any:
        """Answer a request the sender rules refuse, without the role: counted per role
        (``refused_peer:<role>``), logged at most once per 10 s per role."""
        name = f"refused_peer:{key}"
        self.counters[name] = self.counters.get(name, 0) + 1
        self.nodes[key].warn(name, "%s: %s from %s refused (%d): %s", key,
                             type(request).__name__, peers.shown(conn.remote_host),
                             refusal.result_code, refusal.reason)
        node = self.nodes[key]
        cls = dia.AmAnswer if isinstance(request, dia.AmRequest) else dia.HaAnswer
        return cls(request.session_id, refusal.result_code, node.origin_host,
                   node.origin_realm, user_name=request.user_name,
                   error_message="peer not authorized for this request")

    async def execute(self, key: str, actions: list[Any]) -> Any:
        """Perform ``actions`` for role ``key`` in order; return its answer, if any."""
        role = self.roles[key]
        result = None
        for action in actions:
            if self._dirty and isinstance(action, _VISIBLE):
                self._flush_state()   # issue 5: persisted before anyone hears of it
            if isinstance(action, Mark):
                if (persist.kind_of(key), action.phase) in persist.MARKS_THAT_CHANGE_STATE:
                    self._mark_dirty(key, action.nai)
                record = self.handovers.open.get(action.nai)
                self.handovers.mark(action.nai, action.phase, time.monotonic(), action.extra)
                if record is not None and action.phase == "rrp_sent":
                    self.metrics.handover_done(record)  # counters, histograms, log line
                if (action.phase == "rrp_sent" and action.extra.get("accepted")
                        and key.startswith("fa:")):
                    self.spawn(self._left_elsewhere(key, action.nai))
            elif isinstance(action, AddTunnel):
                await self._add_tunnel(action)
            elif isinstance(action, RemoveTunnel):
                await self._remove_tunnel(action)
            elif isinstance(action, SendFlows):
                mods: tuple[flows.Mod, ...] = action.mods
                if key.startswith("fa:"):  # QoS (claims 8, 9): the MN's meters and DSCP
                    # only the MNs these mods install (scanning every visitor's VPN
                    # info cost 76 % of the CPU at 5,000 visitors: docs/benchmarks.md)
                    macs = {str(v) for m in mods if m.op == "add"
                            for k, v in getattr(m, "flow", flows.FlowSpec(0, (), ())).match
                            if k in ("eth_src", "eth_dst")}
                    found = (role.visitors.by_mac(mac) for mac in macs)
                    mods = flows.with_mn_qos(mods, flows.visitors_qos(
                        (v for v in found if v is not None), role.conf.name))
                await self.send_flows(action.dpid, mods)
            elif isinstance(action, SendDiameter):
                # a link not (yet) up, e.g. refused over TLS: no route, refused at once
                node, peer = (self.routes.get(key, {}).get(action.to)
                              or (self.nodes[key], None))
                late = (self._late_answer_handler(key)
                        if hasattr(role, "on_late_diameter_answer") else None)
                try:
                    answer = await node.request(action.request, peer=peer, late=late)
                except DiameterError as exc:
                    LOG.warning("%s: Diameter request to %s failed: %s", key, action.to, exc)
                    follow = role.on_diameter_timeout(self.now(), action.request.session_id)
                else:
                    follow = role.on_diameter_answer(self.now(), answer)
                answer = await self.execute(key, follow)
                if answer is not None:
                    result = answer
            elif isinstance(action, (AnswerDiameter, ReplyMip)):
                result = action.answer if isinstance(action, AnswerDiameter) else action.raw
            elif isinstance(action, RelayToHomeAgent):
                reply = await self._relay_to_ha(key, action)
                now = self.now()
                follow = (role.on_home_agent_reply(now, action.nai, reply) if reply
                          else role.on_home_agent_timeout(now, action.nai))
                await self.execute(key, follow)
            elif isinstance(action, SendMip):
                reply = await self._send_mip(key, action)
                if action.expect_reply:
                    follow = role.on_mip_reply(self.now(), action.to, reply, action.context)
                    answer = await self.execute(key, follow)
                    if answer is not None:
                        result = answer
            elif isinstance(action, SendToMobileNode):
                self._send_to_mn(action)
            elif isinstance(action, HoldTraffic):
                self._hold(action)
            elif isinstance(action, ReleaseHold):
                # never in line: the forwarding tunnel comes up only after the BAck
                self.spawn(self._release_hold(action))
            elif isinstance(action, NotifyVisitorLeft):
                other = f"fa:{action.foreign_agent}"
                if other in self.roles:
                    await self.execute(other, self.roles[other].on_visitor_left(
                        self.now(), action.nai))
            else:
                raise TypeError(f"unknown action {action!r}")
        if self._dirty:
            self._flush_state()
        return result

    async def _left_elsewhere(self, new_fa: str, nai: str) -> None:
        """The MN registered at ``new_fa``: any other FA of this controller that still
        lists it as a visitor (a move across domains, where the new FA cannot name the
        old one as a peer) drops its tunnel end and the MN's flows.  Same-domain moves
        are already handled by the FA's own NotifyVisitorLeft; this is idempotent."""
        for other in self.foreign_agents():
            okey = f"fa:{other.conf.name}"
            if okey != new_fa and nai in other.visitors:
                await self.execute(okey, other.on_visitor_left(self.now(), nai))

    # ================================================================ held downlink

    def _hold(self, action: HoldTraffic) -> None:
        key = (action.dpid, action.mn_mac.lower())
        if key not in self.holds:
            self.holds[key] = HeldDownlink(action.foreign_agent, action.nai)

    def _held_frame(self, dpid: int, data: bytes, at: float) -> None:
        """A frame punted towards a departed MN (loop thread)."""
        buf = self.holds.get((dpid, _mac_str(data[0:6])))
        if buf is None:
            self.counters["held_dropped_late"] += 1
            return
        if buf.forwarding:          # the tunnel is up: straight on
            self._forward_held(dpid, buf, [(at, data)])
            return
        if len(buf.frames) == buf.frames.maxlen:
            buf.counts["overflow"] += 1
            self.counters["held_dropped_overflow"] += 1
        buf.frames.append((at, data))
        buf.counts["held"] += 1
        self.counters["held_frames"] += 1

    def _forward_held(self, dpid: int, buf: HeldDownlink,
                      frames: Iterable[tuple[float, bytes]]) -> None:
        """Hand frames to the old FA's IP stack: packet-out on its access port, addressed
        to its inside MAC (from the MN's), so that it routes them on."""
        fa = self.fa(buf.foreign_agent)
        dp = self.datapaths.get(dpid)
        now = time.monotonic()
        fa_mac = bytes.fromhex(fa.conf.inside_mac.replace(":", ""))
        for at, data in frames:
            if now - at > HOLD_MAX_AGE or dp is None:
                buf.counts["expired"] += 1
                self.counters["held_dropped_expired"] += 1
                continue
            dp.send_msg(openflow.packet_out(dp, fa_mac + data[0:6] + data[12:],
                                            fa.conf.fa_port))
            buf.counts["forwarded"] += 1
            self.counters["held_forwarded"] += 1

    async def _tunnel_established(self, gateway: str, tunnel_id: str,
                                  timeout: float) -> bool:
        """Poll the gateway until ``tunnel_id`` has an installed CHILD_SA (bounded)."""
        gw = self.gateways.get(gateway)
        if gw is None or not gw.reports_tunnel_state:
            return True             # a driver that cannot tell (tests): assume up
        look = gw.tunnel
        deadline = time.monotonic() + timeout
        while True:
            try:
                state = await self.loop.run_in_executor(None, look, tunnel_id)
            except (TunnelError, OSError):
                state = None
            if state is not None and state.established:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(HOLD_POLL)

    async def _release_hold(self, action: ReleaseHold) -> None:
        """``ReleaseHold``: once the forwarding tunnel is up, the held frames go to the
        FA (and whatever is still punted follows at once); then the punt flow goes and
        the buffer with it.  Without a tunnel (or when told) they are dropped."""
        key = (action.dpid, action.mn_mac.lower())
        buf = self.holds.get(key)
        t0 = time.monotonic()
        forward = action.forward
        if buf is not None and forward and action.tunnel_id:
            forward = await self._tunnel_established(action.foreign_agent,
                                                     action.tunnel_id, HOLD_TUNNEL_WAIT)
            # the peer (the new FA, the initiator) installs its inbound SA only when
            # the responder's answer arrives: packets sent before are dropped there
            if forward and f"fa:{action.peer}" in self.roles:   # its gateway is ours
                left = HOLD_TUNNEL_WAIT - (time.monotonic() - t0)
                if not await self._tunnel_established(action.peer, action.tunnel_id,
                                                      max(left, 0.0)):
                    LOG.warning("%s: tunnel %s not up at %s: forwarding anyway",
                                action.foreign_agent, action.tunnel_id, action.peer)
            elif forward and action.peer:
                await asyncio.sleep(HOLD_PEER_GRACE)   # not ours to ask: a margin
            if not forward:
                LOG.warning("%s: tunnel %s not up in %.1f s: held downlink dropped",
                            action.foreign_agent, action.tunnel_id, HOLD_TUNNEL_WAIT)
        if buf is not None and forward:
            buf.forwarding = True
            frames = list(buf.frames)
            buf.frames.clear()
            self._forward_held(action.dpid, buf, frames)
        if action.mods:
            await self.send_flows(action.dpid, action.mods)
        if buf is None:
            return
        if self.holds.get(key) is buf:
            del self.holds[key]
        if buf.frames:              # not forwarded: dropped
            n = len(buf.frames)
            buf.counts["dropped"] += n
            self.counters["held_dropped_released"] += n
            buf.frames.clear()
        c = buf.counts
        LOG.info("%s: downlink held for %s (%d frames): %d forwarded%s, %d dropped "
                 "(%d overflow, %d too old) %.0f ms after release", action.foreign_agent,
                 buf.nai, c["held"], c["forwarded"],
                 f" through {action.tunnel_id}" if action.tunnel_id else "",
                 c["dropped"] + c["overflow"] + c["expired"], c["overflow"], c["expired"],
                 (time.monotonic() - t0) * 1000)

    # ================================================================ gateways

    async def _add_tunnel(self, action: AddTunnel, load_only: bool = False) -> None:
        """``load_only`` (reconcile): load this end without touching an SA charon may
        hold for it, and without initiating."""
        gw = self.gateways[action.gateway]
        key = (action.gateway, action.side.tunnel_id)
        self._touched[key] = time.monotonic()
        add = gw.add_tunnel
        if load_only:
            action = AddTunnel(action.gateway, replace(action.side, initiator=False))
            add = gw.load_tunnel
        entry = {"gateway": action.gateway, "tunnel_id": action.side.tunnel_id,
                 "local": action.side.local.address, "remote": action.side.remote.address,
                 "remote_gateway": action.side.remote.gateway,
                 "local_ts": list(action.side.local.selectors),
                 "remote_ts": list(action.side.remote.selectors),
                 "initiator": action.side.initiator, "state": "setting"}
        self.tunnel_log[key] = entry
        await self._gateway_qos(action.gateway, "apply", action.side)  # QoS (claims 8, 9)
        took = None
        error: Exception | None = None
        for attempt in range(TUNNEL_TRIES if action.side.initiator else 1):
            try:
                took = await self.loop.run_in_executor(self._gw_exec[action.gateway],
                                                       add, action.side)
                break
            except (TunnelError, OSError) as exc:
                error = exc
                LOG.warning("tunnel %s at %s: attempt %d failed: %s", action.side.tunnel_id,
                            action.gateway, attempt + 1, exc)
                await asyncio.sleep(0.1)
        if took is None:
            exc = error
            self.poke_gateway(action.gateway)   # charon gone? (issue 5)
            entry["state"] = "failed"
            entry["error"] = str(exc)
            LOG.error("tunnel %s at %s failed: %s", action.side.tunnel_id, action.gateway,
                      exc)
            return
        entry["state"] = "up" if action.side.initiator else "configured"
        entry["setup_ms"] = round(took * 1000, 3)
        LOG.info("tunnel %s at %s %s in %.1f ms", action.side.tunnel_id, action.gateway,
                 entry["state"], took * 1000)

    async def _remove_tunnel(self, action: RemoveTunnel) -> None:
        gw = self.gateways[action.gateway]
        self._touched[(action.gateway, action.tunnel_id)] = time.monotonic()
        self.tunnel_log.pop((action.gateway, action.tunnel_id), None)
        try:
            await self.loop.run_in_executor(self._gw_exec[action.gateway],
                                            gw.remove_tunnel, action.tunnel_id)
        except (TunnelError, OSError) as exc:
            LOG.error("removing tunnel %s at %s failed: %s", action.tunnel_id,
                      action.gateway, exc)
        await self._gateway_qos(action.gateway, "remove", action.tunnel_id)  # QoS
        LOG.info("tunnel %s at %s removed", action.tunnel_id, action.gateway)

    async def _gateway_qos(self, gateway: str, op: str, arg: Any) -> None:
        """QoS (claims 8, 9): ``GatewayQos.apply(side)`` / ``.remove(tunnel_id)`` on the
        gateway's worker, in order with its tunnel calls; a failure is logged, never
        fatal (the tunnel still comes up, unshaped)."""
        qos = self.gateway_qos.get(gateway)
        if qos is None:
            return
        try:
            await self.loop.run_in_executor(self._gw_exec[gateway], getattr(qos, op), arg)
        except Exception as exc:  # noqa: BLE001 - netlink errors of any kind
            LOG.error("QoS %s at %s failed: %s", op, gateway, exc)

    async def _warm_up(self, name: str) -> None:
        """Connect to a gateway's charon as soon as it answers (see ``warm_up``)."""
        gw = self.gateways[name]
        if not gw.warms_up:
            return
        while not await self._gateway_ready(name):
            await asyncio.sleep(0.1)
        try:
            await self.loop.run_in_executor(self._gw_exec[name], gw.warm_up)
        except Exception as exc:  # reported, retried lazily at the first tunnel
            LOG.warning("gateway %s: warm-up failed: %s", name, exc)

    async def _gateway_ready(self, name: str) -> bool:
        gw = self.gateways[name]
        if not gw.dialable():
            return False
        try:
            # bounded: a hung charon (alive, socket open, not answering) is degraded too;
            # the bound is above the longest legitimate call queued before it (an
            # initiate: TUNNEL_TRIES x its 5 s timeout)
            await asyncio.wait_for(self.loop.run_in_executor(
                self._gw_exec[name], self.gateways[name].version), HEALTH_TIMEOUT)
        except Exception:  # not up yet, gone, or hung
            return False
        return True

    async def gateway_tunnels(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, gw in self.gateways.items():
            try:
                states = await self.loop.run_in_executor(self._gw_exec[name], gw.tunnels)
                out[name] = [s.to_json() if hasattr(s, "to_json") else _state_json(s)
                             for s in states]
            except Exception as exc:  # charon down: reported, not fatal
                out[name] = {"error": str(exc)}
        return out

    # ================================================================ restart (issue 5)

    def _mark_dirty(self, role_key: str, key: str) -> None:
        self._dirty.setdefault(role_key, set()).add(key)

    def _flush_state(self) -> None:
        """Write the records of every key changed since the last flush, in one
        transaction (``StateStore.write``).  A failed write is logged and counted; the
        controller keeps serving (the records are retried with the next change)."""
        dirty, self._dirty = self._dirty, {}
        if self.state is None:
            return
        changes = []
        for role_key, keys in dirty.items():
            role = self.roles.get(role_key)
            if role is None or not hasattr(role, "export_state"):
                continue
            for k in keys:
                try:
                    changes.append((role_key, k, role.export_state(k)))
                except Exception as exc:  # noqa: BLE001 - never stops the controller
                    self.counters["state_write_errors"] = self.counters.get(
                        "state_write_errors", 0) + 1
                    LOG.error("state store: %s/%s not exportable: %s", role_key, k,
                              type(exc).__name__)
        try:
            self.state.write(changes)
        except Exception as exc:  # noqa: BLE001 - sqlite3 errors, disk full, ...
            self.counters["state_write_errors"] = self.counters.get(
                "state_write_errors", 0) + 1
            LOG.error("state store: writing %d records failed: %s", len(changes),
                      type(exc).__name__)
            for role_key, keys in dirty.items():   # retried with the next change
                self._dirty.setdefault(role_key, set()).update(keys)

    def _restore_state(self) -> dict[str, int]:
        """Read every role's records back (bindings, cached VPN information, visitors,
        CN-GW bindings), then track changes.  Returns role key -> records restored."""
        restored: dict[str, int] = {}
        records = self.state.load() if self.state is not None else {}
        for role_key, recs in records.items():
            role = self.roles.get(role_key)
            if role is None or not hasattr(role, "restore_state"):
                continue
            for k, data in recs.items():
                try:
                    role.restore_state(k, data)
                except Exception as exc:  # noqa: BLE001 - a bad record must not stop start-up
                    # the record's content is not logged: it may hold keys
                    LOG.error("state record %s/%s unreadable (%s): dropped", role_key, k,
                              type(exc).__name__)
                    continue
                restored[role_key] = restored.get(role_key, 0) + 1
        self._restored_static = [persist.tunnel_from_dict(d) for _k, d in
                                 sorted(records.get(STATIC_STATE, {}).items())]
        if self.state is not None:
            for role_key, role in self.roles.items():
                persist.track(role_key, role, self._mark_dirty)
        if restored:
            LOG.info("restored from the state store: %s", ", ".join(
                f"{k} {n}" for k, n in sorted(restored.items())))
        return restored

    def _load_static_specs(self) -> list[TunnelSpec]:
        """The stationary HA<->CN-GW tunnels (claim 16 step 1): the stored ones (same
        keys as before a restart: charon still holds them), else new ones, stored."""
        aaah: HomeAaa = self.roles["aaah"]
        fresh = aaah.static_tunnels()
        stored = {t.tunnel_id: t for t in getattr(self, "_restored_static", [])}
        specs = [stored.get(t.tunnel_id, t) for t in fresh]
        if self.state is not None:
            new = [t for t in specs if t.tunnel_id not in stored]
            gone = [tid for tid in stored if tid not in {t.tunnel_id for t in specs}]
            self.state.write([(STATIC_STATE, t.tunnel_id, persist.tunnel_to_dict(t))
                              for t in new] + [(STATIC_STATE, tid, None) for tid in gone])
        return specs

    def owned_gateways(self) -> set[str]:
        """Gateways whose tunnels this process's roles decide."""
        owned: set[str] = set()
        for key, role in self.roles.items():
            kind = persist.kind_of(key)
            if kind == "ha":
                owned.add(role.name)
            elif kind in ("fa", "cngw"):
                owned.add(key.split(":", 1)[1])
        for spec in self.static_tunnels:
            owned.update(spec.ends())
        return owned & set(self.gateways)

    def tunnels_wanted(self, gateway: str) -> dict[str, TunnelSpec]:
        """Tunnel id -> spec of every tunnel ``gateway`` should hold now, from the
        roles' state (what a restart restored) and the stationary tunnels."""
        out = {t.tunnel_id: t for t in self.static_tunnels if gateway in t.ends()}
        for key, role in self.roles.items():
            kind = persist.kind_of(key)
            name = (role.name if kind == "ha" else key.split(":", 1)[1]
                    if kind in ("fa", "cngw") else None)
            if name == gateway and hasattr(role, "tunnels_wanted"):
                for spec in role.tunnels_wanted():
                    out[spec.tunnel_id] = spec
        return out

    def _wanted_side(self, gateway: str, spec: TunnelSpec) -> Any:
        """``gateway``'s side of ``spec`` as its role set it: a smooth-handoff
        forwarding tunnel at the new FA is a secondary side (docs/strongswan.md)."""
        side = spec.side_for(gateway)
        role = self.roles.get(f"fa:{gateway}")
        if role is not None and spec.tunnel_id in role.secondary_tunnels():
            side = replace(side, secondary=True)
        return side

    def _health(self, name: str) -> dict[str, Any]:
        return self.gateway_health.setdefault(name, {
            "state": "connecting", "since": time.time(), "error": "", "outages": 0,
            "reconciles": 0, "last_reconcile": None, "last_outage_s": None})

    def _set_health(self, name: str, state: str, error: str = "") -> None:
        h = self._health(name)
        if h["state"] != state:
            now = time.time()
            if state == "up" and h["state"] == "degraded":
                h["last_outage_s"] = round(now - h["since"], 3)
            if state == "degraded":
                h["outages"] += 1
            h["state"], h["since"] = state, now
        h["error"] = error

    def poke_gateway(self, name: str) -> None:
        """Something failed at ``name``: check its charon now, not at the next period."""
        ev = self._gw_poke.get(name)
        if ev is not None:
            ev.set()

    async def _gateway_supervisor(self, name: str) -> None:
        """One per gateway we drive: wait until its charon answers, reconcile its
        tunnels, then check it every ``HEALTH_INTERVAL``; when it stops answering mark
        it ``degraded`` (REST /v1/gateways, /metrics) and keep trying; when it answers
        again, reconcile (every tunnel it should hold is set again)."""
        self._health(name)
        poke = self._gw_poke[name] = asyncio.Event()
        gw = self.gateways[name]
        while True:
            while not await self._gateway_ready(name):
                if self._health(name)["state"] == "up":
                    self._set_health(name, "degraded", "charon does not answer (VICI)")
                    LOG.error("gateway %s: charon unreachable; tunnels there are down "
                              "until it is back", name)
                await asyncio.sleep(DEGRADED_POLL)
            if gw.warms_up:
                try:
                    await self.loop.run_in_executor(self._gw_exec[name], gw.warm_up)
                except Exception as exc:  # noqa: BLE001 - retried lazily at the first tunnel
                    LOG.warning("gateway %s: warm-up failed: %s", name, exc)
            try:
                await self._reconcile_gateway(name)
            except Exception as exc:  # noqa: BLE001 - charon went away meanwhile: retry
                LOG.warning("gateway %s: reconcile failed: %s", name, exc)
                self._set_health(name, "degraded", f"reconcile failed: {exc}")
                await asyncio.sleep(DEGRADED_POLL)
                continue
            # watch: a VICI connection charon closes when it dies (immediate), and
            # a version call every HEALTH_INTERVAL (a hung charon, a lost socket)
            stop = threading.Event()
            watch: asyncio.Future[Any] | None = None
            if gw.watches_process:
                watch = asyncio.ensure_future(self.loop.run_in_executor(
                    self._watch_exec, gw.wait_closed, stop))
            why = "charon does not answer (VICI)"
            try:
                while True:
                    poke.clear()
                    waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(poke.wait())}
                    if watch is not None:
                        waiters.add(watch)
                    try:
                        done, _ = await asyncio.wait(waiters, timeout=HEALTH_INTERVAL,
                                                     return_when=asyncio.FIRST_COMPLETED)
                    finally:   # also when this task is cancelled (Runtime.stop)
                        for w in waiters:
                            if w is not watch:
                                w.cancel()
                    if watch is not None and watch in done:
                        if watch.exception() is not None or watch.result():
                            why = "charon closed its VICI connection (process gone)"
                            break
                        watch = None
                    if not await self._gateway_ready(name):
                        break
            finally:
                stop.set()
                if watch is not None:
                    watch.cancel()
            self._set_health(name, "degraded", why)
            LOG.error("gateway %s: %s; its tunnels are down until it is back", name, why)

    async def _reconcile_gateway(self, name: str) -> dict[str, int]:
        """Make ``name``'s charon hold exactly the tunnels our roles want there:
        remove the stale ones, load what is missing, leave alone what is loaded and
        matches (no re-key); then have the initiator of every tunnel without an
        established SA here (re)initiate it, once the other end is reconciled too."""
        gw = self.gateways[name]
        run = self._gw_exec[name]
        t0 = time.monotonic()
        loaded: dict[str, dict[str, Any]] = await self.loop.run_in_executor(
            run, gw.loaded_connections)
        sas = {s.tunnel_id: s for s in await self.loop.run_in_executor(run, gw.tunnels)}
        wanted = self.tunnels_wanted(name)
        stats = {"kept": 0, "added": 0, "removed": 0, "initiated": 0}
        def touched(tid: str) -> bool:   # set or removed by a registration meanwhile
            return self._touched.get((name, tid), -1.0) >= t0

        for tid in sorted((set(loaded) | set(sas)) - set(wanted)):
            if not touched(tid):
                await self._remove_tunnel(RemoveTunnel(name, tid))
                stats["removed"] += 1
        up_here: set[str] = set()
        for tid, spec in wanted.items():
            if touched(tid):
                up_here.add(tid)
                continue
            side = self._wanted_side(name, spec)
            sa = sas.get(tid)
            established = bool(sa is not None and getattr(sa, "established", False))
            if tid in loaded and _conn_matches(loaded[tid], side) and (
                    established or not side.initiator):
                await self._adopt_tunnel(name, side, established)
                stats["kept"] += 1
                if established:
                    up_here.add(tid)
                continue
            # load this end (an initiator initiates below, once its peer is loaded)
            await self._add_tunnel(AddTunnel(name, side), load_only=True)
            stats["added"] += 1
        self._set_health(name, "up")
        now_wanted = self.tunnels_wanted(name)   # as it is now, not at t0 (once: it
        for tid, then in wanted.items():           # walks every role's tunnels)
            spec = now_wanted.get(tid)
            if spec != then or tid in up_here:
                continue      # removed or re-keyed by a registration meanwhile
            peer = next(g for g in spec.ends() if g != name)
            if spec.initiator not in self._owned:
                continue      # the process that drives the initiator initiates
            if peer in self._owned and self._health(peer)["state"] != "up":
                continue      # the peer's own reconcile initiates when it is loaded
            if self._initiated.get(tid, -1.0) >= t0:
                continue      # the other end's reconcile just did
            self._initiated[tid] = time.monotonic()
            await self._add_tunnel(AddTunnel(
                spec.initiator, self._wanted_side(spec.initiator, spec)))
            stats["initiated"] += 1
        h = self._health(name)
        h["reconciles"] += 1
        h["last_reconcile"] = {**stats, "ms": round((time.monotonic() - t0) * 1000, 1),
                               "at": time.time()}
        LOG.info("gateway %s reconciled in %.0f ms: %d kept, %d added, %d removed, "
                 "%d initiated", name, (time.monotonic() - t0) * 1000, stats["kept"],
                 stats["added"], stats["removed"], stats["initiated"])
        return stats

    async def _adopt_tunnel(self, name: str, side: TunnelSide, established: bool) -> None:
        """A tunnel charon already holds as we want it: record it (REST, metrics),
        take over its selector anchors and QoS; nothing is sent to the peer."""
        self.tunnel_log[(name, side.tunnel_id)] = {
            "gateway": name, "tunnel_id": side.tunnel_id, "local": side.local.address,
            "remote": side.remote.address, "remote_gateway": side.remote.gateway,
            "local_ts": list(side.local.selectors), "remote_ts": list(side.remote.selectors),
            "initiator": side.initiator,
            "state": "up" if side.initiator and established else "configured",
            "adopted": True}
        gw = self.gateways[name]
        try:
            await self.loop.run_in_executor(self._gw_exec[name], gw.adopt, side)
        except Exception as exc:  # noqa: BLE001 - anchors are best effort here
            LOG.warning("gateway %s: adopting %s: %s", name, side.tunnel_id, exc)
        await self._gateway_qos(name, "apply", side)

    # ================================================================ Mobile IPv4

    def _mip_handler(self, key: str) -> Any:
        async def handle(data: bytes, addr: tuple[str, int]) -> bytes | None:
            role = self.roles[key]
            now = self.now()
            if key == "ha" and data[:1] == bytes([mip.REGISTRATION_REQUEST]):
                actions = role.on_registration_request(now, data)
            elif hasattr(role, "on_mip"):
                actions = role.on_mip(now, data, self._sender_of(addr))
            else:
                self.counters["malformed"] += 1
                return None
            reply = await self.execute(key, actions)
            return reply if isinstance(reply, bytes) else None
        return handle

    def _sender_of(self, addr: tuple[str, int]) -> str:
        for key, ep in self.mip.items():
            if ep.address == tuple(addr):
                return key
        return f"{addr[0]}:{addr[1]}"

    def _ingress_handler(self, key: str) -> Any:
        """Registration Requests from virtual MNs over UDP (load generator)."""
        async def handle(data: bytes, addr: tuple[str, int]) -> bytes | None:
            fa = self.roles[key]
            mac = "02:00:00:00:00:00"
            try:
                home = str(getattr(mip.decode(data), "home_address", ""))
                self._virtual_mn[(fa.conf.name, home)] = addr
                # one MAC per virtual MN (from its home address), as real MNs have
                mac = "02:00:" + ":".join(f"{int(b):02x}" for b in home.split("."))
            except (mip.MipDecodeError, ValueError):
                pass
            actions = fa.on_registration_request(self.now(), data, mac, 0)
            await self.execute(key, actions)
            return None
        return handle

    async def _send_mip(self, key: str, action: SendMip) -> bytes | None:
        src = self.mip.get(key)
        dst = self.mip.get(action.to)
        if src is None or dst is None:
            LOG.warning("%s: no Mobile IPv4 endpoint for %s", key, action.to)
            return None
        if not action.expect_reply:
            src.send(action.raw, dst.address)
            return None
        return await src.request(action.raw, dst.address)

    async def _relay_to_ha(self, key: str, action: RelayToHomeAgent) -> bytes | None:
        if action.home_agent_address not in self.ha_by_address or "ha" not in self.mip:
            return None
        # the HA may wait for a Binding Acknowledge before it answers (claims 20, 21):
        # no early retransmission, which it would have to refuse as a replay
        src, dst = self.mip.get(key), self.mip["ha"]
        if src is None:
            return None
        return await src.request(action.raw, dst.address, timeout=2.0, tries=1)

    def _send_to_mn(self, action: SendToMobileNode) -> None:
        if action.port == 0:  # a virtual MN of the load generator: plain UDP
            ep = self.ingress.get(f"fa:{action.foreign_agent}")
            addr = self._virtual_mn.pop((action.foreign_agent, action.mn_ip), None)
            if ep is not None and addr is not None:
                ep.send(action.raw, addr)
            return
        fa = self.fa(action.foreign_agent)
        dp = self.datapaths.get(fa.conf.access_dpid)
        if dp is None:
            LOG.warning("access switch of %s not connected", fa.conf.name)
            return
        frame = openflow.udp_frame(fa.conf.inside_mac, action.mn_mac, fa.conf.inside_address,
                                   action.mn_ip, mip.MIP_PORT, action.udp_port, action.raw)
        dp.send_msg(openflow.packet_out(dp, frame, action.port))

    def advertisement(self, fa: ForeignAgent) -> bytes:
        seq = self._advert_seq.get(fa.conf.name, -1) + 1
        seq = 256 if seq > 0xFFFF else seq
        self._advert_seq[fa.conf.name] = seq
        adv = mip.AgentAdvertisement(
            router_address=fa.conf.inside_address, preference=0, lifetime=9000,
            sequence=seq, registration_lifetime=fa.conf.max_lifetime,
            flags=mip.ADV_FLAG_R | mip.ADV_FLAG_F | mip.ADV_FLAG_T,
            care_of_addresses=[fa.conf.core_address])
        return openflow.icmp_frame(fa.conf.inside_mac, fa.conf.inside_address, adv.encode())

    def send_advertisement(self, fa: ForeignAgent, port: int | None = None) -> None:
        dp = self.datapaths.get(fa.conf.access_dpid)
        if dp is None:
            return
        frame = self.advertisement(fa)
        if port is None:
            msg = openflow.packet_out(dp, frame, flows.OFPP_FLOOD, in_port=fa.conf.fa_port)
        else:
            msg = openflow.packet_out(dp, frame, port)
        dp.send_msg(msg)
        self.counters["adverts"] += 1

    async def _advertiser(self) -> None:
        while True:
            for fa in self.foreign_agents():
                self.send_advertisement(fa)
            await asyncio.sleep(ADVERT_INTERVAL)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_INTERVAL)
            now = self.now()
            for key, role in list(self.roles.items()):
                if not hasattr(role, "on_tick"):
                    continue
                try:
                    actions = role.on_tick(now)
                    if actions:
                        await self.execute(key, actions)
                except Exception:  # noqa: BLE001 - one role's bug must not stop expiry
                    self.counters["tick_errors"] = self.counters.get("tick_errors", 0) + 1
                    LOG.exception("%s: lifetime tick failed", key)
            if self._dirty:       # deletions of a tick that sent nothing (AAA caches)
                self._flush_state()
            self._prune_reconcile_marks(time.monotonic())
            self.log_malformed(time.monotonic())

    def _prune_reconcile_marks(self, now: float, keep: float = 300.0) -> None:
        """``_touched`` / ``_initiated`` only matter to a reconcile running now: drop
        marks older than ``keep`` seconds (no growth with every tunnel ever set)."""
        for marks in (self._touched, self._initiated):
            if len(marks) > 1024:
                for k in [k for k, t in marks.items() if now - t > keep]:
                    del marks[k]

    def log_malformed(self, now: float) -> None:
        """One warning per role (and one for the runtime's own sockets / packet-ins) when
        its count of malformed messages grew, at most every ``MALFORMED_LOG_INTERVAL``
        seconds: a flood of garbage is visible in the log without flooding it.  The
        counts themselves are in ``/metrics`` (``mipvpn_malformed_packets_dropped``)."""
        counts = {k: int(getattr(r, "counters", {}).get("malformed", 0))
                  for k, r in self.roles.items()}
        counts["runtime"] = int(self.counters.get("malformed", 0))
        for key, n in counts.items():
            seen, at = self._malformed_logged.get(key, (0, -MALFORMED_LOG_INTERVAL))
            if n > seen and now - at >= MALFORMED_LOG_INTERVAL:
                LOG.warning("%s: %d malformed message(s) dropped since the last report "
                            "(%d in all)", key, n - seen, n)
                self._malformed_logged[key] = (n, now)

    # ================================================================ OpenFlow (os-ken threads)

    def switch_connected(self, dp: Any) -> None:
        """Called from os-ken's thread on switch features."""
        name = self.fabric.switch_of_dpid(dp.id)
        if name is None:
            LOG.warning("unknown switch dpid %#x connected", dp.id)
            return
        self.loop.call_soon_threadsafe(self._switch_up, dp, name)

    def _switch_up(self, dp: Any, name: str) -> None:
        self.datapaths[dp.id] = dp
        mods = [flows.FlowMod("delete", flows.FlowSpec(0, (), (), 0), cookie_mask=0)]
        mods += flows.static_flows(self.fabric, name)
        self.spawn(self._reconcile_switch(dp.id, tuple(mods)))
        LOG.info("switch %s (dpid %#x) connected", name, dp.id)

    async def _reconcile_switch(self, dpid: int, static: tuple[flows.FlowMod, ...]) -> None:
        """A switch (re)connected: its table becomes exactly what we intend — the
        static flows, then the steering of every MN registered through an FA on it
        (a reconnect after a switch restart loses nothing)."""
        # what the table must hold: the static flows, every visitor's steering.  The
        # switch is asked what it holds; only the difference is sent (issue 5: after a
        # controller restart nothing changes and no packet is dropped).  A switch that
        # does not answer gets the table reset and everything in one batch, one
        # barrier (the MNs' steering follows the reset in the same stream).
        dp = self.datapaths.get(dpid)
        existing = await self._flow_stats(dpid) if dp is not None else None
        # what we intend, computed after the switch answered: a visitor that left (or
        # came) during the round trip is not re-added (or missed)
        mods: list[flows.Mod] = list(static)
        for fa in self.foreign_agents():
            if fa.conf.access_dpid != dpid:
                continue
            for visitor in list(fa.visitors.values()):
                if visitor.nai in fa.holds:   # departed, downlink held (claims 22-23)
                    mods += flows.hold_mn(visitor.mn_mac, fa.conf.fa_port)
                    continue
                mods += flows.with_mn_qos(   # QoS (claims 8, 9): its meters and DSCP
                    flows.install_mn(visitor.mn_mac, visitor.port, fa.conf.fa_port,
                                     visitor.vpn_info.smooth_handoff),
                    flows.visitors_qos([visitor], fa.conf.name))
        dp = self.datapaths.get(dpid)
        if dp is not None and existing is not None:
            msgs, counts = openflow.reconcile_msgs(dp, tuple(mods), existing)
            name = self.fabric.switch_of_dpid(dpid) or hex(dpid)
            self.switch_reconciles[name] = {**counts, "at": time.time()}
            LOG.info("switch %s reconciled: %d flows kept, %d added, %d removed", name,
                     counts["kept"], counts["added"], counts["removed"])
            await self._send_msgs(dpid, msgs)
            return
        await self.send_flows(dpid, tuple(mods))

    async def _flow_stats(self, dpid: int, timeout: float = 2.0) -> list[Any] | None:
        """Every flow the switch holds (OFPMP_FLOW), or None if it does not answer."""
        dp = self.datapaths.get(dpid)
        if dp is None or self.flow_sink is not None:
            return None
        req = openflow.flow_stats_request(dp)
        dp.set_xid(req)
        fut = self.loop.create_future()
        self._stats[(dpid, req.xid)] = ([], fut)
        dp.send_msg(req)
        try:
            return await asyncio.wait_for(fut, timeout)  # type: ignore[no-any-return]
        except asyncio.TimeoutError:
            LOG.warning("switch %#x: no flow stats in %.0f s: resetting its table", dpid,
                        timeout)
            return None
        finally:
            self._stats.pop((dpid, req.xid), None)

    def flow_stats_reply(self, dpid: int, xid: int, body: list[Any], more: bool) -> None:
        """From os-ken's thread: one part of a flow-stats reply."""
        def got() -> None:
            entry = self._stats.get((dpid, xid))
            if entry is None:
                return
            entry[0].extend(body)
            if not more and not entry[1].done():
                entry[1].set_result(entry[0])
        self.loop.call_soon_threadsafe(got)

    async def _send_msgs(self, dpid: int, msgs: list[Any]) -> None:
        """Ready-made OpenFlow messages, then a barrier (awaited)."""
        dp = self.datapaths.get(dpid)
        if dp is None:
            return
        for msg in msgs:
            dp.send_msg(msg)
        n = len(msgs)
        self.counters["flow_mods"] += n
        self.metrics.flow_mods_sent(self.fabric.switch_of_dpid(dpid) or hex(dpid), n)
        barrier = dp.ofproto_parser.OFPBarrierRequest(dp)
        dp.set_xid(barrier)
        fut = self.loop.create_future()
        self.barriers[(dpid, barrier.xid)] = fut
        dp.send_msg(barrier)
        try:
            await asyncio.wait_for(fut, 2.0)
        except asyncio.TimeoutError:
            self.barriers.pop((dpid, barrier.xid), None)
            LOG.warning("no barrier reply from %#x", dpid)

    def switch_disconnected(self, dpid: int) -> None:
        self.loop.call_soon_threadsafe(self.datapaths.pop, dpid, None)

    def packet_in(self, dpid: int, in_port: int, data: bytes) -> None:
        self.counters["packet_in"] += 1
        switch = self.fabric.switch_of_dpid(dpid)
        if switch is not None and self.fabric.roles.get(switch) == "core":
            for port, gw in self.fabric.dynamic_cn_ports.get(switch, []):
                if port == in_port:
                    dst = openflow.ipv4_dst(data)
                    if dst is not None:
                        self.loop.call_soon_threadsafe(self._correspondent_packet, gw, dst)
            return
        if len(data) >= 14 and data[12:14] == b"\x08\x00" and self._from_fa(dpid, in_port):
            # IPv4 from an FA towards its access switch reaches us only when a departed
            # MN's downlink is punted (hold flow, fast-failover group); looked up on the
            # loop, after the port-status that made the hold
            self.loop.call_soon_threadsafe(self._held_frame, dpid, data, time.monotonic())
            return
        punted = openflow.parse_punted_mip(data)
        if punted is None:
            self.loop.call_soon_threadsafe(self._icmp_in, dpid, in_port, data)
            return
        self.loop.call_soon_threadsafe(self._rrq_in, dpid, in_port, punted)

    def _correspondent_packet(self, gateway: str, dst: str) -> None:
        """Claims 2, 5: a correspondent's packet towards a mobile node reached the core
        from a dynamic CN gateway: the HA distributes the VPN information now.  At most
        once a second per (gateway, destination): the packets keep coming until the
        tunnel is up."""
        now = time.monotonic()
        key = (gateway, dst)
        if now - self._on_demand_seen.get(key, -1e9) < 1.0 or "ha" not in self.roles:
            return
        self._on_demand_seen[key] = now
        ha = self.roles["ha"]
        if hasattr(ha, "on_correspondent_packet"):
            LOG.info("on-demand: packet from behind %s to %s", gateway, dst)
            self.spawn(self.execute("ha", ha.on_correspondent_packet(self.now(), dst,
                                                                     gateway)))

    def _rrq_in(self, dpid: int, in_port: int, punted: openflow.PuntedMip) -> None:
        fa = self._fa_of_dpid(dpid)
        if fa is None or in_port == fa.conf.fa_port:
            return
        actions = fa.on_registration_request(self.now(), punted.payload, punted.src_mac,
                                             in_port, src_port=punted.src_port,
                                             src_ip=punted.src_ip)
        self.spawn(self.execute(f"fa:{fa.conf.name}", actions))

    def _icmp_in(self, dpid: int, in_port: int, data: bytes) -> None:
        fa = self._fa_of_dpid(dpid)
        if fa is not None and in_port != fa.conf.fa_port:
            self.send_advertisement(fa, in_port)  # answer an agent solicitation

    def port_added(self, dpid: int, port: int) -> None:
        """A link came up at a switch port: if it is an access port, advertise there
        at once so a moved MN detects its new FA without waiting for the period."""
        def advertise() -> None:
            fa = self._fa_of_dpid(dpid)
            if fa is not None and port != fa.conf.fa_port:
                self.send_advertisement(fa, port)
        self.loop.call_soon_threadsafe(advertise)

    def _from_fa(self, dpid: int, in_port: int) -> bool:
        fa = self._fa_of_dpid(dpid)
        return fa is not None and in_port == fa.conf.fa_port

    def port_removed(self, dpid: int, port: int) -> None:
        """A switch port went away or its link went down (os-ken's thread): an MN on an
        access port has left that link (smooth handoff: its FA holds its downlink)."""
        def gone() -> None:
            fa = self._fa_of_dpid(dpid)
            if fa is None:
                return
            actions = fa.on_port_down(self.now(), port)
            for action in actions:    # the buffer exists before the next packet-in
                if isinstance(action, HoldTraffic):
                    self._hold(action)
            if actions:
                self.spawn(self.execute(f"fa:{fa.conf.name}", actions))
        self.loop.call_soon_threadsafe(gone)

    def barrier_reply(self, dpid: int, xid: int) -> None:
        def done() -> None:
            fut = self.barriers.pop((dpid, xid), None)
            if fut is not None and not fut.done():
                fut.set_result(None)
        self.loop.call_soon_threadsafe(done)

    def _fa_of_dpid(self, dpid: int) -> ForeignAgent | None:
        for fa in self.foreign_agents():
            if fa.conf.access_dpid == dpid:
                return fa
        return None

    async def send_flows(self, dpid: int, mods: tuple[flows.Mod, ...]) -> None:
        if self.flow_sink is not None:
            self.flow_sink(dpid, mods)
            self.counters["flow_mods"] += len(mods)
            self.metrics.flow_mods_sent(self.fabric.switch_of_dpid(dpid) or hex(dpid),
                                        len(mods))
            return
        dp = self.datapaths.get(dpid)
        if dp is None:
            LOG.warning("switch %#x not connected; %d flow-mods not sent", dpid, len(mods))
            return
        await self._send_msgs(dpid, openflow.flow_mod_msgs(dp, mods))


def _mac_str(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _conn_matches(conn: dict[str, Any], side: TunnelSide) -> bool:
    """A loaded connection (``StrongSwanGateway.loaded_connections``) is the one
    ``side`` describes: same peer, same traffic selectors.  (Its PSK cannot be read
    back from charon: a tunnel re-keyed under the same id is re-added by the
    registration that re-keyed it.)"""
    if not conn:
        return True   # a driver that cannot tell: trust the name
    return (list(conn.get("remote_addrs", [])) == [side.remote.address]
            and sorted(conn.get("local_ts", [])) == sorted(side.local.selectors)
            and sorted(conn.get("remote_ts", [])) == sorted(side.remote.selectors))


def _state_json(state: Any) -> dict[str, Any]:
    return {"tunnel_id": getattr(state, "tunnel_id", getattr(state, "name", "")),
            "state": getattr(state, "state", ""),
            "established": getattr(state, "established", False),
            "bytes_in": getattr(state, "bytes_in", 0), "bytes_out": getattr(state, "bytes_out", 0),
            "packets_in": getattr(state, "packets_in", 0),
            "packets_out": getattr(state, "packets_out", 0)}
