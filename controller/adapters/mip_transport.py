"""Mobile IPv4 control messages between roles: one UDP endpoint per role.

Roles of one process talk over loopback; every message is a real UDP datagram.  An
endpoint both serves requests (``handler(data, addr) -> reply bytes | None``) and
sends its own requests, matching a reply (Registration Reply, Binding Acknowledge) to
its request by peer address and the low 32 bits of the Identification; anything else
from that peer (e.g. a Binding Request arriving while we wait for that peer's Binding
Acknowledge) is served as a request.  Requests are retransmitted with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from controller.proto import mip

LOG = logging.getLogger("mipvpn.mip")

Handler = Callable[[bytes, tuple[str, int]], Awaitable[bytes | None]]


class MipEndpoint(asyncio.DatagramProtocol):
    loop: asyncio.AbstractEventLoop     # set by ``connection_made``

    def __init__(self, name: str, handler: Handler) -> None:
        self.name = name
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None
        self.address: tuple[str, int] = ("", 0)
        self._waiting: dict[tuple[tuple[str, int], int], asyncio.Future[bytes]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.counters = {"in": 0, "out": 0, "retransmits": 0, "timeouts": 0}

    @classmethod
    async def open(cls, name: str, handler: Handler, host: str, port: int) -> MipEndpoint:
        loop = asyncio.get_running_loop()
        _t, proto = await loop.create_datagram_endpoint(lambda: cls(name, handler),
                                                        local_addr=(host, port))
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # asked once: ``get_running_loop`` makes a getpid system call (issue 15)
        self.loop = asyncio.get_running_loop()
        self.address = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.counters["in"] += 1
        if self._waiting:
            ident = _reply_ident(data)
            fut = self._waiting.get((addr, ident)) if ident is not None else None
            if fut is not None and not fut.done():
                fut.set_result(data)
                return
        task = self.loop.create_task(self._serve(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = await self.handler(data, addr)
        except Exception:  # a role's bug must not take the endpoint down
            LOG.exception("%s: handling a datagram from %s failed", self.name, addr)
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)
            self.counters["out"] += 1

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)
        self.counters["out"] += 1

    async def request(self, data: bytes, addr: tuple[str, int], timeout: float = 0.25,
                      tries: int = 3) -> bytes | None:
        """Send ``data`` to ``addr`` and wait for its reply; None when none came."""
        loop = asyncio.get_running_loop()
        key = (addr, _request_ident(data))
        while key in self._waiting:  # the same request already outstanding
            await asyncio.wait({self._waiting[key]})
        fut: asyncio.Future[bytes] = loop.create_future()
        self._waiting[key] = fut
        try:
            for attempt in range(tries):
                self.send(data, addr)
                if attempt:
                    self.counters["retransmits"] += 1
                try:
                    return await asyncio.wait_for(asyncio.shield(fut), timeout * (2 ** attempt))
                except asyncio.TimeoutError:
                    continue
            self.counters["timeouts"] += 1
            return None
        finally:
            self._waiting.pop(key, None)
            if not fut.done():
                fut.cancel()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()



def _request_ident(data: bytes) -> int:
    try:
        msg = mip.decode(data)
    except mip.MipDecodeError:
        return -1
    return int(getattr(msg, "identification", -1)) & 0xFFFFFFFF


def _reply_ident(data: bytes) -> int | None:
    """Identification (low 32 bits) of a reply-type message, else None."""
    if not data or data[0] not in (mip.REGISTRATION_REPLY, mip.BINDING_ACK):
        return None
    try:
        msg = mip.decode(data)
    except mip.MipDecodeError:
        return None
    return int(getattr(msg, "identification", 0)) & 0xFFFFFFFF
