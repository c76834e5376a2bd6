"""Diameter links: one node per local role (listeners for the HA and the AAA servers,
clients for every link towards a peer), the peer policy of each listener (issue 11),
the routes a role's requests take, and the handler that feeds requests to a role."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import nullcontext
from typing import Any, Awaitable, Callable, ContextManager, Coroutine, Iterable, Mapping

from controller.adapters import diameter_tls
from controller.logtext import log_text
from controller.adapters.diameter_peer import DiameterError, DiameterNode, PeerConnection
from controller.core import peers
from controller.proto import diameter as dia
from controller.runtime import settings
from controller.core.role import AAAF, FA, RoleKey, kind_of
from controller.runtime.lookup import foreign_agents

LOG = logging.getLogger("mipvpn.runtime")


class DiameterLinks:
    """``execute(role key, actions)``: the executor; ``spawn(coro)``: a task on the
    loop; ``now()``: the roles' clock."""

    def __init__(self, roles: Mapping[str, Any], counters: dict[str, int], *,
                 execute: Callable[[str, list[Any]], Awaitable[Any]],
                 spawn: Callable[[Coroutine[Any, Any, Any]], None],
                 now: Callable[[], float],
                 snapshot: Callable[[], ContextManager[None]] = nullcontext) -> None:
        self.roles = roles
        #: around each role's handling of a request: its reads of the VPN database see
        #: one state of it (``VpnStore.snapshot``)
        self.snapshot = snapshot
        self.counters = counters
        self.execute = execute
        self.spawn = spawn
        self.now = now
        self.shared_listen = False   # replicas of the home domain: one AAA address
        self.nodes: dict[str, DiameterNode] = {}
        self.routes: dict[str, dict[str, tuple[DiameterNode, PeerConnection]]] = {}
        # a local peer is reached at its bound address (port 0 in a topology = any
        # free port, for tests), a remote one at its configured one
        self.bound: dict[str, tuple[str, int]] = {}
        self.peer_table: Any = None
        self.link_failures: dict[str, int] = {}   # role key -> failed Diameter dials

    async def close(self) -> None:
        for node in self.nodes.values():
            await node.close()

    async def start(self, topo: Any, home: Any, home_realms: Iterable[str]) -> None:
        """Listen for every local role, then connect each Diameter client link in the
        background (a peer in another process may start later: retried)."""
        self.routes.clear()
        assert home is not None and home.aaa is not None and home.home_agent is not None
        aaah_addr = (home.aaa.listen_host, home.aaa.listen_port)
        ha_addr = (home.home_agent.diameter_listen_host, home.home_agent.diameter_listen_port)
        # listening roles first; a local peer is reached at its bound address (port 0
        # in a topology = any free port, for tests), a remote one at its configured one
        self.bound.clear()
        # issue 11: each listener takes only the peers the topology names for it
        self.peer_table = peers.build_peer_table(topo)
        ha_tls = getattr(home.home_agent, "tls", None)
        if "ha" in self.roles:
            self.nodes["ha"] = DiameterNode(
                home.home_agent.host, home.realm, handler=self.handler("ha"),
                allowed_peers=self.peer_policy("ha"),
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
                home.aaa.host, home.realm, handler=self.handler("aaah"),
                request_timeout=settings.REQUEST_TIMEOUT["aaah"],
                allowed_peers=self.peer_policy("aaah"),
                max_connections=getattr(home.aaa, "max_connections", None))
            port = await self.nodes["aaah"].listen(
                *aaah_addr, ssl=diameter_tls.server_context(home_tls),
                reuse_port=self.shared_listen)
            aaah_addr = self.bound["aaah"] = (aaah_addr[0], port)
            tls = diameter_tls.client_context(home_tls) if ha_tls is not None else None
            self.spawn(self.link("aaah", home.home_agent.host, ha_addr, ssl=tls,
                                  server_hostname=home.home_agent.host if tls else None))
        for key in [RoleKey.parse(k) for k in self.roles if kind_of(k) == AAAF]:
            fdom = topo.domains[key.name]
            fdom_tls = getattr(fdom.aaa, "tls", None)
            node = DiameterNode(fdom.aaa.host, fdom.realm, handler=self.handler(key),
                                request_timeout=settings.REQUEST_TIMEOUT["aaaf"],
                                allowed_peers=self.peer_policy(key),
                                max_connections=getattr(fdom.aaa, "max_connections", None))
            port = await node.listen(fdom.aaa.listen_host, fdom.aaa.listen_port,
                                     ssl=diameter_tls.server_context(fdom_tls))
            self.bound[key] = (fdom.aaa.listen_host, port)
            self.nodes[key] = node
            tls = diameter_tls.client_context(fdom_tls) if home_tls is not None else None
            # issue 17: a domain a relay carries reaches the home realm through it
            # (Destination-Realm routing: the home realm's route is the relay)
            relay = topo.relay_of(key.name)
            addr, server = ((relay.listen_host, relay.listen_port), relay.host) if relay \
                else (aaah_addr, home.aaa.host)
            for realm in sorted(home_realms):
                self.spawn(self.link(key, realm, addr, ssl=tls,
                                      server_hostname=server if tls else None))
        for fa in foreign_agents(self.roles):
            dname = topo.gateways[fa.conf.name].domain
            fdom = topo.domains[dname]
            key = RoleKey(FA, fa.conf.name)
            self.nodes[key] = DiameterNode(fa.conf.host, fa.conf.realm,
                                           request_timeout=settings.REQUEST_TIMEOUT["fa"])
            addr = self.bound.get(RoleKey(AAAF, dname), (fdom.aaa.listen_host,
                                                    fdom.aaa.listen_port))
            tls = diameter_tls.client_context(getattr(fdom.aaa, "tls", None))
            self.spawn(self.link(key, fdom.realm, addr, ssl=tls,
                                  server_hostname=fdom.aaa.host if tls else None))

    def peer_policy(self, listener: str) -> Any:
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

    async def link(self, key: str, to: str, addr: tuple[str, int], *,
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
                                " over TLS" if ssl is not None else "", failures, log_text(exc))
                LOG.debug("%s: connecting to %s at %s: %s", key, to, addr, log_text(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self.routes.setdefault(key, {})[to] = (self.nodes[key], conn)
            if kind_of(key) == AAAF:       # ``to`` is a realm; through a relay the
                self.nodes[key].add_route(to, conn)    # CEA named the relay's realm
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

    def handler(self, key: str) -> Any:
        async def handle(request: Any, conn: PeerConnection) -> Any:
            # issue 11: judged by who is on the connection (its CER, admitted by the
            # peer table), not by what the request says about its sender
            refusal = peers.judge(self.peer_table, key, request, conn.remote_host,
                                  conn.remote_realm)
            if refusal is not None:
                return self._refuse(key, request, conn, refusal)
            sender = self.peer_table.peer(key, conn.remote_host)
            if sender is not None and sender.role.startswith("relay:"):   # issue 17
                name = f"relayed:{key}"
                self.counters[name] = self.counters.get(name, 0) + 1
            role = self.roles[key]
            now = self.now()
            with self.snapshot():
                if isinstance(request, dia.AmRequest):
                    actions = role.on_amr(now, request)
                elif isinstance(request, dia.HaRequest):
                    actions = role.on_har(now, request)
                else:
                    raise ValueError(f"{key} does not handle {type(request).__name__}")
            return await self.execute(key, actions)
        return handle

    def _refuse(self, key: str, request: Any, conn: PeerConnection,
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
