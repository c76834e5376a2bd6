"""Asyncio Diameter transport over TCP (RFC 6733 peer connections) for mipvpn.

Uses the codec of ``controller.proto.diameter``; python-diameter's threaded ``node``
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
``DiameterConnectionError`` instead of waiting.  ``connect(..., reconnect=True)`` keeps
the *same* ``PeerConnection`` object and redials with exponential backoff (and jitter)
until the peer answers CER again, so whoever holds it (routes, the runtime) sees it come
back.  An accepted connection that sends no CER within ``cer_timeout`` is closed.

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
import socket
import ssl as _ssl
import time
from dataclasses import replace
from typing import Any, Awaitable, Callable, MutableMapping

from controller.adapters.peercred import socket_owner
from controller.core.peers import shown
from controller.logtext import log_text
from controller.proto.diameter import (
    FLAG_REQUEST, INVALID_MESSAGE_LENGTH, MIP4_APPLICATION_ID, NO_COMMON_APPLICATION,
    RELAY_APPLICATION_ID, SUCCESS, UNABLE_TO_COMPLY, UNKNOWN_PEER, AmAnswer, AmRequest,
    Answer, Cea, Cer, DiameterDecodeError, DiameterHeader, DiameterMessage, Dpa, Dpr, Dwa,
    Dwr, HaAnswer, HaRequest, Request, decode, encode, encode_error_answer, parse_header)

log = logging.getLogger("mipvpn.diameter.peer")

MAX_MESSAGE = 1 << 20            # refuse longer messages (framing error)
LATE_ANSWER_GRACE = 60.0         # s an answer is still wanted after its request timed out
LATE_ANSWER_MAX = 10000          # late answers awaited per connection, at most
WARN_INTERVAL = 10.0             # s between two warnings of one kind (refused peers)
HOST_SHOWN = 64                  # characters of a peer-supplied name in a log line

RequestHandler = Callable[[Request, "PeerConnection"], Awaitable[Answer]]
#: (CER Origin-Host, Origin-Realm, source address, TLS identity verified) -> None to
#: admit the peer, else a refusal (its ``reason`` is logged)
#: the listener's peer table: (Origin-Host, Origin-Realm, source address, TLS identity
#: verified, port=, same_user=) -> a refusal or None; ``is_own(address, port)`` when
#: present tells this process's own connections (``controller.core.peers.PeerPolicy``)
PeerPolicy = Callable[..., object]


class DiameterError(Exception):
    """Base of transport errors."""


class DiameterTimeout(DiameterError):
    """No answer within ``request_timeout``."""


class DiameterNoRoute(DiameterError):
    """No open connection for the destination realm (RFC 6733: 3002/3003)."""


class DiameterConnectionError(DiameterError):
    """The connection closed, or the capabilities exchange failed."""


class PeerConnection:
    """One connection to a Diameter peer.  Created by ``DiameterNode`` only.

    With ``reconnect`` (initiator side) the object outlives its TCP/TLS connections:
    ``closed`` is set while it is down and cleared when it is back.
    """

    def __init__(self, node: DiameterNode, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, *, initiator: bool) -> None:
        self.node = node
        self.initiator = initiator
        self.remote_host = ""              # peer's Origin-Host, after CER/CEA
        self.remote_realm = ""
        self.open = False                  # CER/CEA done
        self.closed = asyncio.Event()
        self.last_dwa = 0.0                # monotonic time of the last DWA
        self.reconnect = False             # redialled by the node when it drops
        self.down_since: float | None = None   # monotonic time it went down
        self.generation = 0                # +1 per (re)connection
        self._tasks: set[asyncio.Task[None]] = set()
        self._cer_deadline: asyncio.Future[None] | None = None   # accepted: CER due
        self.accepted_at = time.monotonic()
        self._bind(reader, writer)

    def _bind(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.generation += 1
        self.closed.clear()
        self._pending: dict[int, asyncio.Future[DiameterMessage]] = {}
        # hop-by-hop id -> (until, callback): answers that may still come after the
        # request timed out, for a caller that wants them (``request(late=...)``)
        self._late: dict[int, tuple[float, Callable[[DiameterMessage], None]]] = {}
        self._reader_task: asyncio.Task[None] | None = None
        self._watchdog_task: asyncio.Task[None] | None = None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.peername = writer.get_extra_info("peername")

    @property
    def state(self) -> str:
        """``open`` (CER/CEA done), ``opening``, ``down`` (will be redialled), ``closed``."""
        if self.open:
            return "open"
        if not self.closed.is_set():
            return "opening"
        return "down" if self.reconnect else "closed"

    def __repr__(self) -> str:
        return (f"PeerConnection({log_text(self.remote_host or '?')}@"
                f"{log_text(self.remote_realm or '?')} "
                f"{self.peername}, {self.state})")

    # -- sending ---------------------------------------------------------------

    async def send_bytes(self, data: bytes, generation: int | None = None) -> None:
        if self.closed.is_set():
            raise DiameterConnectionError(f"{self!r} is {self.state}")
        if generation is not None and generation != self.generation:
            raise DiameterConnectionError(f"{self!r} was re-established since")
        self.writer.write(data)
        await self.writer.drain()

    async def request(self, msg: DiameterMessage, timeout: float,
                      late: Callable[[DiameterMessage], None] | None = None
                      ) -> DiameterMessage:
        """Send a request (ids already set) and wait for its answer.  ``late``: called
        with the answer if it arrives within ``LATE_ANSWER_GRACE`` s after the timeout
        (instead of counting it as unexpected)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[DiameterMessage] = loop.create_future()
        self._pending[msg.hop_by_hop] = fut
        try:
            await self.send_bytes(encode(msg))
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            if late is not None:
                now = loop.time()
                if len(self._late) >= LATE_ANSWER_MAX:        # bounded: oldest expired
                    for hop in [h for h, (until, _) in self._late.items() if until < now]:
                        del self._late[hop]
                if len(self._late) < LATE_ANSWER_MAX:
                    self._late[msg.hop_by_hop] = (now + LATE_ANSWER_GRACE, late)
            raise DiameterTimeout(f"no answer from {self.remote_host or self.peername} "
                                  f"in {timeout:.3g} s") from None
        finally:
            self._pending.pop(msg.hop_by_hop, None)

    # -- receiving -------------------------------------------------------------

    def start(self) -> None:
        self._reader_task = asyncio.create_task(self._read_loop())

    def start_watchdog(self) -> None:
        if self.node.watchdog_interval > 0 and self._watchdog_task is None:
            self._watchdog_task = asyncio.create_task(self._watchdog())

    async def _read_loop(self) -> None:
        generation = self.generation
        try:
            while True:
                head = await self.reader.readexactly(20)
                try:
                    hdr = parse_header(head)
                    if hdr.length > MAX_MESSAGE:
                        raise DiameterDecodeError(INVALID_MESSAGE_LENGTH, 0,
                                                  f"message length {hdr.length}",
                                                  header=hdr)
                except DiameterDecodeError as e:
                    await self._framing_error(e)
                    return
                body = await self.reader.readexactly(hdr.length - 20)
                self._dispatch(hdr, head + body)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:       # a bug of ours: log it, drop only this connection
            self.node.counters["task_error"] += 1
            log.exception("reader of %r failed", self)
        finally:
            if generation == self.generation:   # not a connection re-established since
                self._shutdown()

    async def _framing_error(self, e: DiameterDecodeError) -> None:
        self.node.counters["malformed"] += 1
        self.node.counters["framing_error"] += 1
        log.warning("framing error from %s: %s; closing", self.peername, log_text(e))
        if e.header is not None and e.header.is_request:
            try:
                await self.send_bytes(self.node.error_answer(e.header, e))
            except (DiameterError, ConnectionError, OSError):
                pass

    def _dispatch(self, hdr: DiameterHeader, data: bytes) -> None:
        try:
            msg = decode(data)
        except DiameterDecodeError as e:
            self.node.counters["malformed"] += 1
            log.warning("malformed message from %s: %s", self.peername, log_text(e))
            if hdr.is_request:
                self._spawn(self._send_quiet(self.node.error_answer(hdr, e)))
            else:
                fut = self._pending.get(hdr.hop_by_hop)
                if fut is not None and not fut.done():
                    fut.set_exception(e)
            return
        if not hdr.flags & FLAG_REQUEST:
            fut = self._pending.get(msg.hop_by_hop)
            if fut is None or fut.done():
                waiting = self._late.pop(msg.hop_by_hop, None)
                if waiting is not None and waiting[0] >= asyncio.get_running_loop().time():
                    self.node.counters["late_answer"] += 1
                    try:
                        waiting[1](msg)
                    except Exception:       # the caller's bug: keep the reader alive
                        self.node.counters["task_error"] += 1
                        log.exception("late-answer handler of %r failed", self)
                    return
                self.node.counters["unexpected_answer"] += 1
                return
            fut.set_result(msg)
            return
        if isinstance(msg, Cer):
            self._spawn(self._on_cer(msg))
        elif not self.open:
            self.node.counters["request_before_cer"] += 1
            err = DiameterDecodeError(UNKNOWN_PEER, 0, "no capabilities exchange yet")
            self._spawn(self._send_quiet(self.node.error_answer(hdr, err)))
        elif isinstance(msg, Dwr):
            self._spawn(self._send_quiet(encode(Dwa(
                SUCCESS, self.node.origin_host, self.node.origin_realm,
                msg.hop_by_hop, msg.end_to_end))))
        elif isinstance(msg, Dpr):
            self._spawn(self._on_dpr(msg))
        elif isinstance(msg, (AmRequest, HaRequest)):
            self._spawn(self._on_request(msg))

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Future[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:        # a bug of ours: never lost, never fatal to the node
            self.node.counters["task_error"] += 1
            log.error("task of %r failed: %s", self, type(exc).__name__,
                      exc_info=(type(exc), exc, exc.__traceback__))

    async def _send_quiet(self, data: bytes, generation: int | None = None) -> None:
        try:
            await self.send_bytes(data, generation)
        except (DiameterError, ConnectionError, OSError) as e:
            log.debug("send to %s failed: %s", self.peername, e)

    def peer_cert_names(self) -> list[str] | None:
        """DNS names (and CN) of the peer's verified TLS certificate; None without one."""
        sslobj = self.writer.get_extra_info("ssl_object")
        cert = sslobj.getpeercert() if sslobj is not None else None
        if not cert:
            return None
        names = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
        if not names:
            names = [v for rdn in cert.get("subject", ()) for k, v in rdn
                     if k == "commonName"]
        return names

    def identity_ok(self, origin_host: str) -> bool:
        """RFC 6733 §13: a TLS peer's Origin-Host must be a name in its certificate."""
        names = self.peer_cert_names()
        if names is None or not self.node.check_peer_identity:
            return True
        host = origin_host.lower().rstrip(".")
        for name in (n.lower().rstrip(".") for n in names):
            if name == host or (name.startswith("*.") and "." in host
                                and host.split(".", 1)[1] == name[2:]):
                return True
        return False

    async def _on_cer(self, cer: Cer) -> None:
        node = self.node
        common = bool({MIP4_APPLICATION_ID, RELAY_APPLICATION_ID}
                      & set(cer.auth_application_ids))
        rc = SUCCESS if common else NO_COMMON_APPLICATION
        if not self.identity_ok(cer.origin_host):
            node.counters["peer_identity_mismatch"] += 1
            node.warn("identity", "CER from %s: Origin-Host %s is not in its certificate",
                      self.peername, _shown(cer.origin_host))
            rc = UNKNOWN_PEER
        elif node.allowed_peers is not None:
            verified = (node.check_peer_identity and self.peer_cert_names() is not None)
            address = str(self.peername[0]) if self.peername else ""
            port = int(self.peername[1]) if self.peername else 0
            refusal = node.allowed_peers(cer.origin_host, cer.origin_realm, address,
                                         verified, port=port,
                                         same_user=self._same_user())
            if refusal is not None:
                node.counters["unknown_peer"] += 1
                node.warn("unknown_peer", "CER refused (3010) from %s: %s", self.peername,
                          getattr(refusal, "reason", None) or _shown(cer.origin_host))
                rc = UNKNOWN_PEER
        cea = Cea(rc, node.origin_host, node.origin_realm, node.host_ip_addresses(self),
                  vendor_id=node.vendor_id, hop_by_hop=cer.hop_by_hop,
                  end_to_end=cer.end_to_end)
        await self._send_quiet(encode(cea))
        if rc != SUCCESS:
            self.close()
            return
        self.remote_host, self.remote_realm = cer.origin_host, cer.origin_realm
        self.open = True
        node.counters["peer_open"] += 1
        node.routes.setdefault(cer.origin_realm, self)
        log.info("peer %s (%s) connected from %s", log_text(cer.origin_host),
                 log_text(cer.origin_realm), self.peername)
        self.start_watchdog()

    def _same_user(self) -> bool | None:
        """Over loopback: does the peer's socket belong to this process's user (issue
        11; ``peercred``)?  None off loopback or when the kernel does not list it."""
        local = self.writer.get_extra_info("sockname")
        if not self.peername or not local:
            return None
        owner = socket_owner((str(self.peername[0]), int(self.peername[1])),
                             (str(local[0]), int(local[1])))
        return None if owner is None else owner == os.geteuid()

    async def _on_dpr(self, dpr: Dpr) -> None:
        await self._send_quiet(encode(Dpa(SUCCESS, self.node.origin_host,
                                          self.node.origin_realm, dpr.hop_by_hop,
                                          dpr.end_to_end)))
        self.close()

    async def _on_request(self, req: Request) -> None:
        node = self.node
        generation = self.generation
        answer: Any
        if node.handler is None:
            answer = _unable(req, node, "no handler")
        else:
            try:
                answer = await node.handler(req, self)
            except Exception as e:
                node.counters["handler_error"] += 1
                log.exception("handler failed on %s", type(req).__name__)
                answer = _unable(req, node, f"{type(e).__name__}")
        if not isinstance(answer, (AmAnswer, HaAnswer)):
            node.counters["handler_error"] += 1
            log.error("handler returned %s, not an answer", type(answer).__name__)
            answer = _unable(req, node, "no answer")
        # RFC 6733 §6.2: on the request's hop-by-hop id (a relay's own), Proxy-Info
        # echoed in order
        answer = replace(answer, hop_by_hop=req.hop_by_hop, end_to_end=req.end_to_end,
                         proxy_info=req.proxy_info)
        try:
            data = encode(answer)
        except ValueError as e:
            log.error("cannot encode answer: %s", type(e).__name__)
            node.counters["handler_error"] += 1
            data = encode(_unable(req, node, "answer not encodable"))
        # an answer to a request of a connection that dropped and came back is not sent
        # on the new one (the peer retransmits, RFC 6733 §5.5.4)
        await self._send_quiet(data, generation)

    async def _watchdog(self) -> None:
        node = self.node
        try:
            while not self.closed.is_set():
                await asyncio.sleep(node.watchdog_interval)
                dwr = Dwr(node.origin_host, node.origin_realm, node.next_hop_by_hop(),
                          node.next_end_to_end())
                try:
                    await self.request(dwr, max(node.watchdog_interval,
                                                node.request_timeout))
                except DiameterTimeout:
                    node.counters["watchdog_timeout"] += 1
                    log.warning("watchdog: %r silent; closing", self)
                    self.close()
                    return
                except DiameterError:
                    return
                node.counters["dwa_received"] += 1
                self.last_dwa = time.monotonic()
        except asyncio.CancelledError:
            pass

    # -- closing ---------------------------------------------------------------

    def close(self) -> None:
        """Close the socket now (no DPR); pending requests fail."""
        if self._reader_task is not None and not self._reader_task.done():
            self._reader_task.cancel()
        self._shutdown()

    def _shutdown(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self.open = False
        self.down_since = time.monotonic()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(DiameterConnectionError(f"{self!r} closed"))
        if self._watchdog_task is not None and self._watchdog_task is not asyncio.current_task():
            self._watchdog_task.cancel()
        if self._cer_deadline is not None and self._cer_deadline is not asyncio.current_task():
            self._cer_deadline.cancel()     # nothing left to time out
        try:
            self.writer.close()
        except Exception:      # a transport already gone (TLS): nothing left to close
            pass
        self.node._forget(self)


def _shown(name: str) -> str:
    """A peer-supplied name for a log line: escaped (repr) and cut."""
    return shown(name, HOST_SHOWN)


def _unable(req: Request, node: DiameterNode, why: str) -> Answer:
    cls = AmAnswer if isinstance(req, AmRequest) else HaAnswer
    return cls(req.session_id, UNABLE_TO_COMPLY, node.origin_host, node.origin_realm,
               user_name=req.user_name, error_message=why)


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
        conn.down_since = None
        self.counters["peer_open"] += 1
        self.routes.setdefault(cea.origin_realm, conn)
        conn.start_watchdog()

    async def _keep_connected(self, conn: PeerConnection, host: str, port: int,
                              ssl: _ssl.SSLContext | None, server_hostname: str | None,
                              backoff: tuple[float, float]) -> None:
        lo, hi = backoff
        while not self._closing:
            await conn.closed.wait()
            if self._closing or not conn.reconnect:
                return
            self.counters["peer_down"] += 1
            log.warning("peer %s at %s:%d down; reconnecting", log_text(conn.remote_host or "?"),
                        host, port)
            delay = lo
            while not self._closing and conn.reconnect:
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                if self._closing or not conn.reconnect:
                    return
                try:
                    reader, writer = await self._dial(host, port, ssl, server_hostname)
                    conn._bind(reader, writer)
                    await self._capabilities(conn, f"{host}:{port}")
                except (DiameterError, OSError) as e:
                    self.counters["reconnect_failed"] += 1
                    log.debug("reconnecting to %s:%d: %s", host, port, log_text(e))
                    delay = min(delay * 2, hi)
                    continue
                self.counters["reconnected"] += 1
                log.info("peer %s at %s:%d back", log_text(conn.remote_host), host, port)
                break

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
        ``peer``, else the route for ``realm``, else for ``msg.destination_realm``.
        """
        if peer is None:
            target = realm or msg.destination_realm
            peer = self.routes.get(target)
            if peer is None:
                self.counters["no_route"] += 1
                raise DiameterNoRoute(f"no peer for realm {target!r}")
        if not peer.open:       # down (watchdog) or not yet open: fail now, don't wait
            self.counters["peer_unavailable"] += 1
            raise DiameterConnectionError(
                f"peer {peer.remote_host or peer.peername} is {peer.state}"
                + (" (reconnecting)" if peer.reconnect and not self._closing else ""))
        out = replace(msg, hop_by_hop=self.next_hop_by_hop(),
                      end_to_end=msg.end_to_end or self.next_end_to_end())
        self.counters["requests"] += 1
        t0 = time.perf_counter()
        try:
            answer = await peer.request(out, self.request_timeout, late)
        except DiameterTimeout:
            self.counters["timeouts"] += 1
            raise
        self.latencies.append(time.perf_counter() - t0)
        if not isinstance(answer, (AmAnswer, HaAnswer)):
            raise DiameterConnectionError(f"unexpected answer {type(answer).__name__}")
        return answer

    def error_answer(self, hdr: DiameterHeader, e: DiameterDecodeError) -> bytes:
        """Wire bytes of our answer to a request we could not decode."""
        return encode_error_answer(hdr, e.result_code, self.origin_host, self.origin_realm,
                                   session_id=e.session_id, error_message=e.message,
                                   failed_avp=e.failed_avp)

    async def close(self) -> None:
        """DPR to every open peer (briefly waiting for DPA), then close everything."""
        self._closing = True
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


# ------------------------------------------------------------------ TLS contexts


def tls_server_context(certfile: str, keyfile: str, cafile: str | None = None, *,
                       require_client_cert: bool = True) -> _ssl.SSLContext:
    """A TLS >= 1.2 server context; with ``cafile``, clients must present a
    certificate it signed (mutual TLS, as RFC 6733 §13 expects between peers)."""
    ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    if cafile is not None:
        ctx.load_verify_locations(cafile)
        ctx.verify_mode = _ssl.CERT_REQUIRED if require_client_cert else _ssl.CERT_OPTIONAL
    return ctx


def tls_client_context(cafile: str, certfile: str | None = None,
                       keyfile: str | None = None) -> _ssl.SSLContext:
    """A TLS >= 1.2 client context trusting ``cafile`` (hostname checked), presenting
    ``certfile`` when given."""
    ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = _ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile)
    if certfile is not None:
        ctx.load_cert_chain(certfile, keyfile)
    return ctx
