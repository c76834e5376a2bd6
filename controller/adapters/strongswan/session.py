"""The VICI sessions of ``StrongSwanGateway`` (``driver.py``): the main one, which
every call of the driver uses, and a second one for removals off a move's path
(``remove_aside``, issue 14: a removal there runs while the main session promotes the
MN's tunnel).  Each session has its own lock; a lost connection is re-opened once.
Both are ``KeptSession``: the events a streamed command answers with stay registered.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import vici
from vici.exception import CommandException, SessionException
from vici.protocol import Message, Packet

from controller.logtext import log_text

log = logging.getLogger("mipvpn.strongswan")


class TunnelError(RuntimeError):
    """A tunnel could not be configured or established."""


class KeptSession(vici.Session):  # type: ignore[misc]
    """A ``vici.Session`` whose streamed commands (``list-sas``, ``initiate``,
    ``terminate``) keep their event registered after the first: charon raises those
    events (``list-sa``, ``control-log``) to the asking connection only, so nothing
    else arrives on it, and each such command is one round trip with charon instead
    of three (register, command, unregister; issue 14: measured 0.15 against 0.5 ms
    on an idle machine, each round trip a wake-up of charon's threads on a busy one).
    The events are read until the command's response, as ``vici.Session`` does."""

    def streamed_request(self, command: str, event_stream_type: str,
                         message: Any = None) -> Any:
        registered: set[str] = self.__dict__.setdefault("_kept", set())
        if event_stream_type not in registered:
            self._register_unregister(event_stream_type, True)
            registered.add(event_stream_type)
        self.transport.send(Packet.request(
            command, None if message is None else Message.serialize(message)))
        exited = False
        while True:
            response = Packet.parse(self.transport.receive())
            if response.response_type != Packet.EVENT:
                break
            if not exited:
                try:
                    yield Message.deserialize(response.payload)
                except GeneratorExit:
                    exited = True    # read on to the response: the session stays usable
        if response.response_type != Packet.CMD_RESPONSE:
            raise SessionException(f"unexpected response type {response.response_type} "
                                   f"to {command}")
        answer = Message.deserialize(response.payload)
        if "success" in answer and answer["success"] != b"yes":
            raise CommandException(f"Command failed: {answer['errmsg'].decode('UTF-8')}")


class ViciSessions:
    """A mixin: the driver's two VICI sessions (``name``, ``vici_socket_path``,
    ``connect_timeout`` are the driver's)."""

    name: str
    vici_socket_path: str
    connect_timeout: float

    def _init_sessions(self) -> None:
        self._lock = threading.RLock()          # the main session
        self._session: vici.Session | None = None
        self._sock: socket.socket | None = None
        self._aside_lock = threading.Lock()
        self._aside_session: vici.Session | None = None
        self._aside_sock: socket.socket | None = None

    def _vici_socket(self) -> socket.socket:
        """A new connection to charon's VICI socket (``TunnelError`` naming the path)."""
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(self.connect_timeout)
        try:
            sock.connect(self.vici_socket_path)
        except OSError as exc:
            sock.close()
            raise TunnelError(f"{self.name}: VICI socket {self.vici_socket_path}: "
                              f"{exc}") from exc
        return sock

    def _connect(self, aside: bool = False) -> vici.Session:
        session = self._aside_session if aside else self._session
        if session is None:
            sock = self._vici_socket()
            sock.settimeout(None)   # blocking calls (initiate) are bounded by charon
            session = KeptSession(sock)
            if aside:
                self._aside_sock, self._aside_session = sock, session
            else:
                self._sock, self._session = sock, session
        return session

    def _drop(self, aside: bool = False) -> None:
        sock = self._aside_sock if aside else self._sock
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        if aside:
            self._aside_sock, self._aside_session = None, None
        else:
            self._sock, self._session = None, None

    def _call(self, fn: Any, *args: Any, aside: bool = False) -> Any:
        """Run ``fn(session, *args)`` (``aside``: on the second session); on a
        transport failure reconnect once and retry.

        Command failures (``CommandException``) are not retried: charon answered.
        """
        with self._aside_lock if aside else self._lock:
            for attempt in (1, 2):
                session = self._connect(aside)
                try:
                    return fn(session, *args)
                except CommandException:
                    raise
                except (OSError, SessionException) as exc:
                    self._drop(aside)
                    if attempt == 2:
                        raise TunnelError(f"{self.name}: VICI failed: {exc}") from exc
                    log.warning("%s: VICI session lost (%s), reconnecting", self.name,
                                log_text(exc))
        raise AssertionError("unreachable")

    def _close_sessions(self) -> None:
        with self._lock, self._aside_lock:
            self._drop()
            self._drop(aside=True)
