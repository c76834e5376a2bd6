"""Mobile IPv4 control messages between roles: one UDP endpoint per role.

Roles of one process talk over loopback; every message is a real UDP datagram.  An
endpoint both serves requests (``handler(data, addr) -> reply bytes | None``) and
sends its own requests, matching a reply by the peer's address (one outstanding
request per peer at a time; retransmitted with backoff).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

LOG = logging.getLogger("mipvpn.mip")

Handler = Callable[[bytes, tuple[str, int]], Awaitable[bytes | None]]


class MipEndpoint(asyncio.DatagramProtocol):
    def __init__(self, name: str, handler: Handler) -> None:
        self.name = name
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None
        self.address: tuple[str, int] = ("", 0)
        self._waiting: dict[tuple[str, int], asyncio.Future[bytes]] = {}
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
        self.address = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.counters["in"] += 1
        fut = self._waiting.get(addr)
        if fut is not None and not fut.done():
            fut.set_result(data)
            return
        task = asyncio.get_running_loop().create_task(self._serve(data, addr))
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
        while addr in self._waiting:  # one outstanding request per peer
            await asyncio.wait({self._waiting[addr]})
        fut: asyncio.Future[bytes] = loop.create_future()
        self._waiting[addr] = fut
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
            self._waiting.pop(addr, None)
            if not fut.done():
                fut.cancel()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
