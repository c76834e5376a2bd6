"""Asyncio Diameter transport over TCP (RFC 6733 peer connections) for mipvpn.

One connection is a ``controller.adapters.diameter_conn.PeerConnection``; TLS contexts
are in ``controller.adapters.diameter_tls``.  Uses the codec of
``controller.proto.diameter``; python-diameter's threaded ``node``
runtime is deliberately not used (no TCP_NODELAY, a thread per peer).

One ``DiameterNode`` per Diameter identity (FA client, AAAF relay, AAAH, HA).  It
accepts and opens connections, does CER/CEA, keeps each connection alive with DWR/DWA,
routes requests by realm, correlates answers by hop-by-hop id, and hands incoming
MIP requests to ``handler`` (each in its own task).  Malformed input is answered with
the RFC 6733 result code where the header is readable and counted; framing errors close
only the connection concerned; no exception escapes a connection's tasks (a bug of ours
is logged and counted as ``task_error``).

Failure handling (RFC 6733 §5.5.4, RFC 3539): a peer that leaves a DWR unanswered is
marked down and its connection closed; requests to it then fail at once with
``DiameterConnectionError`` instead of waiting (or take another open connection we
dialled to the same realm, unless the caller named the peer or the request a
Destination-Host).  ``connect(..., reconnect=True)`` keeps the *same*
``PeerConnection`` object and redials with exponential backoff (and jitter) until the
peer answers CER again, so whoever holds it (routes, the runtime) sees it come back; a
link that was up and that closed other than by our watchdog (a replica gone, another at
the same address) is redialled at once first, and new requests wait for that one attempt.
Requests pending on a connection that fails are resent with the 'T' flag (same
End-to-End id, new Hop-by-Hop id) on the next open connection for their destination,
within their one deadline (``request``).  A request with 'T' that duplicates one this
node answered or is answering (same sending peer, Origin-Host, End-to-End id, command
and Session-Id, kept per peer, overall and for ``ANSWERS_MAX_AGE``: ``diameter_dup``) gets
that answer again without reaching the handler.  An
accepted connection that sends no CER within ``cer_timeout`` is closed.

TLS (RFC 6733 §13, "TLS from the start"): ``listen``/``connect`` take an
``ssl.SSLContext`` (see ``tls_server_context``/``tls_client_context``).  When the peer
presented a certificate, its CER/CEA Origin-Host must be one of the certificate's DNS
names (else CEA 3010 DIAMETER_UNKNOWN_PEER / ``DiameterConnectionError``).

Trust (issue 11): ``allowed_peers`` (a policy the runtime builds from the topology,
``controller.core.peers``) decides which CER a listener accepts: it is called with the
CER's Origin-Host and Origin-Realm, the connection's source address and whether a
verified TLS certificate names that host; anything but None refuses with CEA 3010 and
closes the connection (counted ``unknown_peer``).  Without a policy every peer is
accepted (the transport's own tests).  ``max_connections`` caps the connections a
listener holds (accepted, with or without CER); one more is closed at once (counted
``connection_cap``).  Both warnings are logged at most once per ``WARN_INTERVAL``.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import os
import random
import secrets
import ssl as _ssl
import time
from typing import Any, Callable, MutableMapping

from controller.adapters.diameter_conn import (  # noqa: F401  (re-exported)
    HOST_SHOWN, LATE_ANSWER_GRACE, LATE_ANSWER_MAX, MAX_MESSAGE, DiameterConnectionError,
    DiameterConnectionLost, DiameterError, DiameterNoRoute, DiameterTimeout, PeerConnection,
    RequestHandler)
from controller.adapters.diameter_dup import (  # noqa: F401  (re-exported)
    ANSWERS_KEPT, ANSWERS_KEPT_PER_PEER, ANSWERS_MAX_AGE, AnswerCache)
from controller.adapters.diameter_tls import (  # noqa: F401  (re-exported)
    tls_client_context, tls_server_context)
from controller.logtext import log_text
from controller.proto.diameter import (
    SUCCESS, AmAnswer, Answer, Cea, Cer, DiameterDecodeError, DiameterHeader,
    DiameterMessage, Dpr, HaAnswer, Request, encode_error_answer)

log = logging.getLogger("mipvpn.diameter.peer")

WARN_INTERVAL = 10.0             # s between two warnings of one kind (refused peers)

#: (CER Origin-Host, Origin-Realm, source address, TLS identity verified) -> None to
#: admit the peer, else a refusal (its ``reason`` is logged)
#: the listener's peer table: (Origin-Host, Origin-Realm, source address, TLS identity
#: verified, port=, same_user=) -> a refusal or None; ``is_own(address, port)`` when
#: present tells this process's own connections (``controller.core.peers.PeerPolicy``)
PeerPolicy = Callable[..., object]


class DiameterNode:
    """A Diameter identity: listens, connects, routes by realm, answers requests."""

    def __init__(self, origin_host: str, origin_realm: str, *,
                 handler: RequestHandler | None = None, watchdog_interval: float = 30.0,
                 request_timeout: float = 5.0,
                 metrics: MutableMapping[str, int] | None = None,
                 vendor_id: int = 0, cer_timeout: float | None = None,
                 check_peer_identity: bool = True,
                 allowed_peers: PeerPolicy | None = None,
                 max_connections: int | None = None) -> None:
        self.origin_host = origin_host
        self.origin_realm = origin_realm
        self.handler = handler
        self.watchdog_interval = watchdog_interval
        self.request_timeout = request_timeout
        self.vendor_id = vendor_id
        #: an accepted connection without CER after this long is closed
        self.cer_timeout = max(request_timeout, 5.0) if cer_timeout is None else cer_timeout
        #: TLS peers: Origin-Host must be a DNS name of the peer's certificate
        self.check_peer_identity = check_peer_identity
        #: which CER a listener accepts (None: any; see the module docstring)
        self.allowed_peers = allowed_peers
        #: accepted connections held at once, at most (None: no cap)
        self.max_connections = max_connections
        self._warned: dict[str, tuple[float, int]] = {}   # kind -> (when, suppressed)
        self._closing = False
        self._supervisors: set[asyncio.Task[None]] = set()
        # requests waiting for a connection to open (failover: ``request``)
        self._open_waiters: set[asyncio.Future[None]] = set()
        #: (sending peer, Origin-Host, End-to-End id, command, Session-Id) -> the answer
        #: (a future while being computed), bounded per peer, overall and by age
        #: (``diameter_dup``): a retransmission ('T') from the same peer gets it again
        self.answers = AnswerCache()
        #: event counters: malformed, framing_error, handler_error, watchdog_timeout,
        #: dwa_received, peer_open, requests, timeouts, ...
        self.counters: MutableMapping[str, int] = (
            metrics if metrics is not None else collections.Counter())
        #: seconds per answered request, most recent last
        self.latencies: collections.deque[float] = collections.deque(maxlen=4096)
        self.connections: set[PeerConnection] = set()
        self.routes: dict[str, PeerConnection] = {}
        self._servers: list[asyncio.base_events.Server] = []
        self._hbh = itertools.count(secrets.randbits(31))
        # RFC 6733 §3: high 12 bits from the clock, low 20 from a counter
        self._e2e_high = (int(time.time()) & 0xFFF) << 20
        self._e2e = itertools.count(secrets.randbits(19))
        self._origin_state_id = int(time.time()) ^ os.getpid()

    # -- identifiers -----------------------------------------------------------

    def next_hop_by_hop(self) -> int:
        return next(self._hbh) & 0xFFFFFFFF

    def next_end_to_end(self) -> int:
        return self._e2e_high | (next(self._e2e) & 0xFFFFF)

    def host_ip_addresses(self, conn: PeerConnection | None = None) -> tuple[str, ...]:
        if conn is not None:
            local = conn.writer.get_extra_info("sockname")
            if local:
                return (str(local[0]),)
        return ("127.0.0.1",)

    def remember_answer(self, key: tuple[str, str, int, str, str],
                        answer: asyncio.Future[Any]) -> None:
        self.answers.put(key, answer)

    def wake_waiters(self) -> None:
        """A connection opened (or the node closes): requests waiting for one look."""
        waiters, self._open_waiters = self._open_waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def warn(self, kind: str, msg: str, *args: Any) -> None:
        """A warning of ``kind`` at most once per ``WARN_INTERVAL`` (with how many were
        left out since): a peer that keeps trying cannot flood the log."""
        now = time.monotonic()
        last, suppressed = self._warned.get(kind, (-WARN_INTERVAL, 0))
        if now - last < WARN_INTERVAL:
            self._warned[kind] = (last, suppressed + 1)
            return
        self._warned[kind] = (now, 0)
        if suppressed:
            msg += " (%d more since the last warning)"
            args = (*args, suppressed)
        log.warning(msg, *args)

    # -- connections -----------------------------------------------------------

    async def listen(self, host: str, port: int, *, ssl: _ssl.SSLContext | None = None,
                     reuse_port: bool = False) -> int:
        """Accept peers on ``host:port`` (TLS from the start with ``ssl``; shared with
        other processes of this user with ``reuse_port``); returns the bound port."""
        server = await asyncio.start_server(
            self._accept, host, port, ssl=ssl, reuse_port=reuse_port or None,
            ssl_handshake_timeout=self.cer_timeout if ssl is not None else None)
        self._servers.append(server)
        bound = int(server.sockets[0].getsockname()[1])
        log.info("%s listening on %s:%d%s", self.origin_host, host, bound,
                 " (TLS)" if ssl is not None else "")
        return bound

    async def _accept(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        if self.max_connections is not None and not self._own(writer):
            accepted = [c for c in self.connections if not c.initiator]
            if len(accepted) >= self.max_connections:
                # full: make room by closing the oldest connection that has not finished
                # its CER (anyone can open those); refuse only when every one is a peer
                # the table admitted.  Our own process's links always get in.
                idle = [c for c in accepted if not c.open]
                self.counters["connection_cap"] += 1
                self.warn("connection_cap", "%s: %d connections held; %s", self.origin_host,
                          self.max_connections,
                          "closing the oldest without CER" if idle else
                          f"closing the one from {writer.get_extra_info('peername')}")
                if idle:
                    min(idle, key=lambda c: c.accepted_at).close()
                else:
                    try:
                        writer.close()
                    except Exception:  # a transport already gone: nothing left to close
                        pass
                    return
        conn = PeerConnection(self, reader, writer, initiator=False)
        self.connections.add(conn)
        conn.start()
        conn._cer_deadline = conn._spawn(self._cer_deadline(conn))

    def _own(self, writer: asyncio.StreamWriter) -> bool:
        """The connection is one this process made (the peer table knows its own)."""
        is_own = getattr(self.allowed_peers, "is_own", None)
        peer = writer.get_extra_info("peername")
        return bool(is_own is not None and peer and is_own(str(peer[0]), int(peer[1])))

    async def _cer_deadline(self, conn: PeerConnection) -> None:
        await asyncio.sleep(self.cer_timeout)
        if not conn.open and not conn.closed.is_set():
            self.counters["cer_timeout"] += 1
            log.warning("no CER from %s in %.3g s; closing", conn.peername, self.cer_timeout)
            conn.close()

    async def connect(self, host: str, port: int, *, ssl: _ssl.SSLContext | None = None,
                      server_hostname: str | None = None, reconnect: bool = False,
                      backoff: tuple[float, float] = (0.5, 30.0)) -> PeerConnection:
        """Open a connection, do CER/CEA, start the watchdog; route its realm to it.

        ``ssl``: TLS from the start (the server's name is checked against
        ``server_hostname``, default ``host``).  ``reconnect``: when the connection
        drops (watchdog, peer gone), redial with exponential backoff from ``backoff[0]``
        to ``backoff[1]`` seconds, re-using this same ``PeerConnection``; requests fail
        fast with ``DiameterConnectionError`` meanwhile.  The first attempt's failure is
        raised either way.
        """
        reader, writer = await self._dial(host, port, ssl, server_hostname)
        conn = PeerConnection(self, reader, writer, initiator=True)
        await self._capabilities(conn, f"{host}:{port}")
        if reconnect:
            conn.reconnect = True
            conn.redial_after = backoff[0]
            task = asyncio.create_task(self._keep_connected(
                conn, host, port, ssl, server_hostname, backoff))
            self._supervisors.add(task)
            task.add_done_callback(self._supervisors.discard)
        return conn

    async def _dial(self, host: str, port: int, ssl: _ssl.SSLContext | None,
                    server_hostname: str | None
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        kwargs: dict[str, Any] = {}
        if ssl is not None:
            kwargs = {"ssl": ssl, "server_hostname": server_hostname or host,
                      "ssl_handshake_timeout": self.request_timeout}
        try:
            return await asyncio.wait_for(asyncio.open_connection(host, port, **kwargs),
                                          self.request_timeout)
        except asyncio.TimeoutError:
            raise DiameterTimeout(f"connecting to {host}:{port} took over "
                                  f"{self.request_timeout:.3g} s") from None
        except _ssl.SSLError as e:
            raise DiameterConnectionError(f"TLS with {host}:{port} failed: "
                                          f"{e.reason or e}") from None

    async def _capabilities(self, conn: PeerConnection, where: str) -> None:
        """CER/CEA on a fresh (or re-bound) initiator connection."""
        self.connections.add(conn)
        conn.start()
        cer = Cer(self.origin_host, self.origin_realm, self.host_ip_addresses(conn),
                  vendor_id=self.vendor_id, origin_state_id=self._origin_state_id,
                  hop_by_hop=self.next_hop_by_hop(), end_to_end=self.next_end_to_end())
        try:
            cea = await conn.request(cer, self.request_timeout)
        except DiameterError:
            conn.close()
            raise
        if not isinstance(cea, Cea) or cea.result_code != SUCCESS:
            conn.close()
            raise DiameterConnectionError(f"capabilities exchange with {where} failed: "
                                          f"{getattr(cea, 'result_code', cea)}")
        if not conn.identity_ok(cea.origin_host):
            self.counters["peer_identity_mismatch"] += 1
            conn.close()
            raise DiameterConnectionError(f"{where}: Origin-Host {cea.origin_host!r} is "
                                          "not a name of its TLS certificate")
        conn.remote_host, conn.remote_realm = cea.origin_host, cea.origin_realm
        conn.open = True
        conn.opened_at = time.monotonic()
        conn.down_since = None
        conn.watchdog_failed = False
        self.counters["peer_open"] += 1
        self.routes.setdefault(cea.origin_realm, conn)
        conn.start_watchdog()
        self.wake_waiters()

    async def _keep_connected(self, conn: PeerConnection, host: str, port: int,
                              ssl: _ssl.SSLContext | None, server_hostname: str | None,
                              backoff: tuple[float, float]) -> None:
        try:
            lo, hi = backoff
            while not self._closing:
                await conn.closed.wait()
                if self._closing or not conn.reconnect:
                    return
                self.counters["peer_down"] += 1
                log.warning("peer %s at %s:%d down; reconnecting", log_text(conn.remote_host or "?"),
                            host, port)
                # a link that was up a while and closed by the peer's side (a replica gone:
                # another may answer at the same address) is redialled at once, then with
                # backoff; one the watchdog closed (a silent peer) backs off first
                delay = 0.0 if conn.redialling else lo
                while not self._closing and conn.reconnect:
                    await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                    if self._closing or not conn.reconnect:
                        return
                    first = conn.redialling
                    try:
                        reader, writer = await self._dial(host, port, ssl, server_hostname)
                        conn._bind(reader, writer)
                        await self._capabilities(conn, f"{host}:{port}")
                    except (DiameterError, OSError) as e:
                        self.counters["reconnect_failed"] += 1
                        log.debug("reconnecting to %s:%d: %s", host, port, log_text(e))
                        delay = min(max(delay * 2, lo), hi)
                        if first:       # new requests waiting for it: fail now
                            conn.redialling = False
                            self.wake_waiters()
                        continue
                    conn.redialling = False
                    self.counters["reconnected"] += 1
                    log.info("peer %s at %s:%d back", log_text(conn.remote_host), host, port)
                    break
        finally:   # however it ends, nobody waits for a redial that is not coming
            conn.redialling = False
            self.wake_waiters()

    def add_route(self, realm: str, peer: PeerConnection) -> None:
        """Send requests for ``realm`` to ``peer`` (replaces an existing route)."""
        self.routes[realm] = peer

    def peer_for_host(self, origin_host: str) -> PeerConnection | None:
        """The open connection whose peer identified itself as ``origin_host``."""
        for conn in self.connections:
            if conn.open and conn.remote_host == origin_host:
                return conn
        return None

    def _forget(self, conn: PeerConnection) -> None:
        self.connections.discard(conn)
        if conn.reconnect and not self._closing:
            return              # its routes stay: requests fail fast while it is down
        for realm in [r for r, c in self.routes.items() if c is conn]:
            del self.routes[realm]

    # -- requests --------------------------------------------------------------

    async def request(self, msg: Request, *, realm: str | None = None,
                      peer: PeerConnection | None = None,
                      late: Callable[[DiameterMessage], None] | None = None) -> Answer:
        """Send ``msg`` and return its answer.

        The hop-by-hop id is always new; the end-to-end id is kept if set (a relay
        forwarding a request keeps it), else a new one is assigned.  The peer is
        ``peer``, else the route for ``realm``, else for ``msg.destination_realm``;
        when it is not open, another open connection to the same realm, else the
        request fails at once.

        Failover (RFC 6733 §5.5.4): when the connection fails with the request pending,
        the request is resent, with the 'T' flag, the same end-to-end id and a new
        hop-by-hop id, on the next connection for its destination that is open (the
        same link redialled, or another peer of the realm); all within one deadline,
        ``request_timeout`` from now: no connection by then fails it.
        """
        target = realm or msg.destination_realm
        # a peer the caller named, or a Destination-Host (RFC 6733 §6.1): that server
        # only, never another of the realm (it would get a session and keys not its)
        pinned = peer is not None
        host = getattr(msg, "destination_host", "") or ""
        if peer is None:
            peer = self.routes.get(target) or self._realm_peer(target, host=host)
            if peer is None:
                self.counters["no_route"] += 1
                raise DiameterNoRoute(f"no peer for realm {target!r}")
        # the connection's loop, not ``get_running_loop`` (a getpid call each; issue 15)
        loop = peer.loop
        deadline = loop.time() + self.request_timeout
        if not peer.open:       # down (watchdog) or not yet open: fail now, don't wait
            other = self._next_open(peer, target, host, pinned)
            if other is None and peer.redialling:   # unless redialled at once: wait
                other = await self._wait_open(peer, target, deadline, host, pinned,
                                              redial_only=True)
            if other is None:
                self.counters["peer_unavailable"] += 1
                raise DiameterConnectionError(
                    f"peer {peer.remote_host or peer.peername} is {peer.state}"
                    + (" (reconnecting)" if peer.reconnect and not self._closing else ""))
            peer = other
        e2e = msg.end_to_end or self.next_end_to_end()
        retransmit = False
        self.counters["requests"] += 1
        t0 = time.perf_counter()
        while True:
            ids = (self.next_hop_by_hop(), e2e)
            try:
                answer = await peer.request(msg, max(deadline - loop.time(), 0.0), late,
                                            ids=ids, retransmit=retransmit)
                break
            except DiameterTimeout:
                self.counters["timeouts"] += 1
                raise
            except DiameterConnectionLost:
                failed = peer
                nxt = await self._wait_open(failed, target, deadline, host, pinned)
                if nxt is None:
                    self.counters["failover_failed"] += 1
                    raise
                peer, retransmit = nxt, True
                self.counters["resent"] += 1
                log.info("request %d resent (T) to %s after %r failed", e2e,
                         log_text(peer.remote_host), failed)
        self.latencies.append(time.perf_counter() - t0)
        if not isinstance(answer, (AmAnswer, HaAnswer)):
            raise DiameterConnectionError(f"unexpected answer {type(answer).__name__}")
        return answer

    def _next_open(self, failed: PeerConnection, realm: str, host: str = "",
                   pinned: bool = False) -> PeerConnection | None:
        """An open connection for what ``failed`` carried: itself (redialled); unless
        ``pinned`` (the caller named it), the route of ``realm``, else another peer of
        ``realm`` or of ``failed``'s realm; with ``host`` (Destination-Host) only a
        connection to that host or a relay's (a route to a realm the peer is not of)."""
        if failed.open:
            return failed
        if pinned:
            return None
        route = self.routes.get(realm)
        if (route is not None and route.open
                and (not host or route.remote_host == host or route.remote_realm != realm)):
            return route
        return self._realm_peer(realm, failed.remote_realm, host=host)

    def _realm_peer(self, *realms: str, host: str = "") -> PeerConnection | None:
        """An open connection we dialled to a peer of one of ``realms`` (to ``host``,
        if given)."""
        for conn in self.connections:
            if (conn.open and conn.initiator and conn.remote_realm in realms
                    and (not host or conn.remote_host == host)):
                return conn
        return None

    async def _wait_open(self, failed: PeerConnection, realm: str, deadline: float,
                         host: str = "", pinned: bool = False,
                         redial_only: bool = False) -> PeerConnection | None:
        """The next open connection for ``failed``'s requests, waiting for one until
        ``deadline`` (one timer on one future, ended by a connection opening, the
        deadline or the node closing); None at the deadline or when closing.
        ``redial_only``: only while ``failed``'s immediate redial is under way."""
        loop = asyncio.get_running_loop()
        while not self._closing:
            conn = self._next_open(failed, realm, host, pinned)
            if conn is not None:
                return conn
            remaining = deadline - loop.time()
            if remaining <= 0 or (redial_only and not failed.redialling):
                return None
            fut: asyncio.Future[None] = loop.create_future()
            self._open_waiters.add(fut)
            timer = loop.call_later(remaining, _wake, fut)
            try:
                await fut
            finally:
                timer.cancel()
                self._open_waiters.discard(fut)
        return None

    def error_answer(self, hdr: DiameterHeader, e: DiameterDecodeError) -> bytes:
        """Wire bytes of our answer to a request we could not decode."""
        return encode_error_answer(hdr, e.result_code, self.origin_host, self.origin_realm,
                                   session_id=e.session_id, error_message=e.message,
                                   failed_avp=e.failed_avp)

    async def close(self) -> None:
        """DPR to every open peer (briefly waiting for DPA), then close everything."""
        self._closing = True
        self.wake_waiters()             # requests waiting for a connection: fail now
        for task in list(self._supervisors):
            task.cancel()
        await asyncio.gather(*self._supervisors, return_exceptions=True)
        for conn in [c for c in self.routes.values() if c.closed.is_set()]:
            self._forget(conn)
        for server in self._servers:
            server.close()
        conns = list(self.connections)
        await asyncio.gather(*(self._disconnect(c) for c in conns),
                             return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    async def _disconnect(self, conn: PeerConnection) -> None:
        conn.reconnect = False
        if conn.open:
            dpr = Dpr(self.origin_host, self.origin_realm, 0, self.next_hop_by_hop(),
                      self.next_end_to_end())
            try:
                await conn.request(dpr, min(1.0, self.request_timeout))
            except DiameterError:
                pass
        conn.close()
        tasks = [t for t in conn._tasks if not t.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if conn._reader_task is not None:
            await asyncio.gather(conn._reader_task, return_exceptions=True)



def _wake(fut: asyncio.Future[None]) -> None:
    """A waiting request's deadline."""
    if not fut.done():
        fut.set_result(None)
