"""One Diameter peer connection (RFC 6733): framing, CER/CEA and DWR/DWA on the
connection, answer correlation by hop-by-hop id, and the incoming request's task.

``controller.adapters.diameter_peer.DiameterNode`` creates these; see that module's
docstring for the failure handling, TLS identity and trust rules they implement.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine

from controller.adapters.peercred import socket_owner
from controller.core.peers import shown
from controller.logtext import log_text
from controller.proto.diameter import (
    FLAG_REQUEST, INVALID_MESSAGE_LENGTH, MIP4_APPLICATION_ID, NO_COMMON_APPLICATION,
    RELAY_APPLICATION_ID, SUCCESS, UNABLE_TO_COMPLY, UNKNOWN_PEER, AmAnswer, AmRequest,
    Answer, Cea, Cer, DiameterDecodeError, DiameterHeader, DiameterMessage, Dpa, Dpr, Dwa,
    Dwr, HaAnswer, HaRequest, Request, decode, encode, parse_header)

if TYPE_CHECKING:
    from controller.adapters.diameter_peer import DiameterNode

log = logging.getLogger("mipvpn.diameter.peer")

MAX_MESSAGE = 1 << 20            # refuse longer messages (framing error)
READ_SIZE = 1 << 16              # bytes asked of the socket per read
LATE_ANSWER_GRACE = 60.0         # s an answer is still wanted after its request timed out
LATE_ANSWER_MAX = 10000          # late answers awaited per connection, at most
HOST_SHOWN = 64                  # characters of a peer-supplied name in a log line

RequestHandler = Callable[[Request, "PeerConnection"], Awaitable[Answer]]


class DiameterError(Exception):
    """Base of transport errors."""


class DiameterTimeout(DiameterError):
    """No answer within ``request_timeout``."""


class DiameterNoRoute(DiameterError):
    """No open connection for the destination realm (RFC 6733: 3002/3003)."""


class DiameterConnectionError(DiameterError):
    """The connection closed, or the capabilities exchange failed."""


class DiameterConnectionLost(DiameterConnectionError):
    """The connection failed with the request pending: it may have reached the peer
    (resent with the 'T' flag on the next connection: RFC 6733 §5.5.4)."""


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
        self.opened_at = 0.0               # monotonic time of the last CER/CEA
        self.watchdog_failed = False       # the last drop was a DWR left unanswered
        # a link up at least this long (s) that the peer's side closes is redialled at
        # once (``redialling`` until that first attempt ends), not after a backoff
        self.redial_after = 0.5
        self.redialling = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._cer_deadline: asyncio.Future[None] | None = None   # accepted: CER due
        self.accepted_at = time.monotonic()
        #: the loop it runs in (created there): asked once, not per message, since
        #: ``asyncio.get_running_loop`` makes a getpid system call each time in
        #: CPython 3.11 (about 17 per registration; issue 15)
        self.loop = asyncio.get_running_loop()
        self._bind(reader, writer)

    def _bind(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.generation += 1
        self.closed.clear()
        self._pending: dict[int, asyncio.Future[DiameterMessage]] = {}
        # hop-by-hop ids of the requests being handled that came with the 'T' flag
        self._retransmits: set[int] = set()
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
                      late: Callable[[DiameterMessage], None] | None = None, *,
                      ids: tuple[int, int] | None = None,
                      retransmit: bool = False) -> DiameterMessage:
        """Send a request and wait for its answer.  ``ids``: the (hop-by-hop,
        end-to-end) identifiers it is sent with (default: the message's own).
        ``late``: called with the answer if it arrives within ``LATE_ANSWER_GRACE`` s
        after the timeout (instead of counting it as unexpected).  ``retransmit``: with
        the 'T' flag.  The connection failing meanwhile raises ``DiameterConnectionLost``
        (sent, perhaps received), a connection not up ``DiameterConnectionError``."""
        loop = self.loop
        fut: asyncio.Future[DiameterMessage] = loop.create_future()
        hop = msg.hop_by_hop if ids is None else ids[0]
        self._pending[hop] = fut
        # the timeout as one timer on the answer's future, not ``asyncio.wait_for``
        # (a second future and two callbacks per request: issue 15)
        timer = loop.call_later(timeout, _expire, fut)
        try:
            data = encode(msg, ids=ids, retransmit=retransmit)
            try:
                await self.send_bytes(data)
            except (ConnectionError, OSError) as e:     # reset while writing: closed,
                self.close()                            # so a resend takes another
                raise DiameterConnectionLost(f"{self!r}: {e}") from None
            return await fut
        except asyncio.TimeoutError:
            if late is not None:
                now = loop.time()
                if len(self._late) >= LATE_ANSWER_MAX:        # bounded: oldest expired
                    for h in [h for h, (until, _) in self._late.items() if until < now]:
                        del self._late[h]
                if len(self._late) < LATE_ANSWER_MAX:
                    self._late[hop] = (now + LATE_ANSWER_GRACE, late)
            raise DiameterTimeout(f"no answer from {self.remote_host or self.peername} "
                                  f"in {timeout:.3g} s") from None
        finally:
            timer.cancel()
            self._pending.pop(hop, None)
            if fut.done() and not fut.cancelled():
                fut.exception()     # retrieved (a timer that fired while sending)

    # -- receiving -------------------------------------------------------------

    def start(self) -> None:
        self._reader_task = asyncio.create_task(self._read_loop())

    def start_watchdog(self) -> None:
        if self.node.watchdog_interval > 0 and self._watchdog_task is None:
            self._watchdog_task = asyncio.create_task(self._watchdog())

    async def _read_loop(self) -> None:
        """Read what the socket has (up to ``READ_SIZE``), dispatch every whole message
        in it, keep the rest for the next read: one await per read, not two per
        message (issue 15).  EOF, also within a message, ends the connection."""
        generation = self.generation
        buf = b""
        try:
            while True:
                chunk = await self.reader.read(READ_SIZE)
                if not chunk:
                    return
                buf = buf + chunk if buf else chunk
                pos, size = 0, len(buf)
                while size - pos >= 20:
                    try:
                        hdr = parse_header(buf[pos:pos + 20])
                        if hdr.length > MAX_MESSAGE:
                            raise DiameterDecodeError(INVALID_MESSAGE_LENGTH, 0,
                                                      f"message length {hdr.length}",
                                                      header=hdr)
                    except DiameterDecodeError as e:
                        await self._framing_error(e)
                        return
                    end = pos + hdr.length
                    if end > size:
                        break
                    self._dispatch(hdr, buf[pos:end])
                    pos = end
                buf = buf[pos:] if pos else buf
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
                if waiting is not None and waiting[0] >= self.loop.time():
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
            self._spawn(self._on_request(msg, hdr.is_retransmit))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        task = self.loop.create_task(coro)
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
        self.opened_at = time.monotonic()
        node.counters["peer_open"] += 1
        node.routes.setdefault(cer.origin_realm, self)
        node.wake_waiters()
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

    def retransmitted(self, req: Request) -> bool:
        """``req`` (being handled) came with the 'T' flag (RFC 6733 §5.5.4)."""
        return req.hop_by_hop in self._retransmits

    async def _on_request(self, req: Request, retransmit: bool = False) -> None:
        node = self.node
        generation = self.generation
        answer: Any = None
        # the sending peer's identity (its CER, checked against its certificate) in the
        # key: a peer gets only answers to its own requests again
        # and what the request is (command, session): a reused End-to-End id (a
        # restarted process, two replicas sharing an identity) never gets another
        # session's answer
        key = (self.remote_host, req.origin_host, req.end_to_end,
               type(req).__name__, req.session_id)
        if retransmit:
            node.counters["retransmitted_received"] += 1
            earlier = node.answers.get(key)
            if isinstance(earlier, bytes):     # answered: the bytes sent (settle)
                node.counters["duplicate_answered"] += 1
                if not req.proxy_info:  # as sent but for the Hop-by-Hop id (§5.5.4)
                    await self._send_quiet(earlier[:12] + req.hop_by_hop.to_bytes(4, "big")
                                           + earlier[16:], generation)
                    return
                answer = decode(earlier)     # rare: its Proxy-Info replaced below
            elif earlier is not None:
                # RFC 6733 §5.5.4: a duplicate of a request already answered (or being
                # answered) gets that answer again; the role does not see it twice
                await asyncio.wait((earlier,))
                if not earlier.cancelled():
                    node.counters["duplicate_answered"] += 1
                    answer = earlier.result()
        if answer is None:
            answer = await self._answer(req, key, retransmit)
        if req.proxy_info:      # RFC 6733 §6.2: Proxy-Info echoed in order (a relay's)
            answer = replace(answer, proxy_info=req.proxy_info)
        ids = (req.hop_by_hop, req.end_to_end)      # the request's, without a copy
        try:
            data = encode(answer, ids=ids)
        except ValueError as e:
            log.error("cannot encode answer: %s", type(e).__name__)
            node.counters["handler_error"] += 1
            data = encode(_unable(req, node, "answer not encodable"), ids=ids)
        if not req.proxy_info:      # kept as sent (issue 15, ``AnswerCache.settle``);
            node.answers.settle(key, data)  # with Proxy-Info: as the message
        # an answer to a request of a connection that dropped and came back is not sent
        # on the new one (the peer retransmits, RFC 6733 §5.5.4)
        await self._send_quiet(data, generation)

    async def _answer(self, req: Request, key: tuple[str, str, int, str, str],
                      retransmit: bool) -> Any:
        """The handler's answer to ``req``, recorded for its retransmissions."""
        node = self.node
        done: asyncio.Future[Any] = self.loop.create_future()
        node.remember_answer(key, done)
        if retransmit:
            self._retransmits.add(req.hop_by_hop)
        answer: Any
        try:
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
            done.set_result(answer)
            return answer
        finally:
            self._retransmits.discard(req.hop_by_hop)
            if not done.done():         # cancelled (closing): a duplicate processes anew
                done.cancel()

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
                    self.watchdog_failed = True
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
        was_open, self.open = self.open, False
        self.down_since = time.monotonic()
        self.redialling = (was_open and self.reconnect and not self.watchdog_failed
                           and self.down_since - self.opened_at >= self.redial_after)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(DiameterConnectionLost(f"{self!r} closed"))
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


def _expire(fut: asyncio.Future[Any]) -> None:
    """A request's timer: its answer did not come in time."""
    if not fut.done():
        fut.set_exception(asyncio.TimeoutError())
