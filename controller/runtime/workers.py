"""One gateway's driver calls, in order, on one thread (issue 15).

A tunnel driver blocks (VICI: a request, then charon's answer after the IKE exchange),
so every call runs on the gateway's own thread, one after the other, never in the
event loop's.  ``ThreadPoolExecutor(1)`` + ``run_in_executor`` did this with two
futures per call (a ``concurrent.futures.Future`` with its condition and lock, chained
to the loop's future by callbacks) and a thread-count check; a registration makes two
or three such calls.  ``DriverWorker.run`` hands the call over with one queue put and
answers with one ``call_soon_threadsafe`` that sets the loop's own future: the same
order, the same thread, less Python on both sides of the hand-off.

``submit`` keeps the ``concurrent.futures.Executor`` interface (``run_in_executor``,
tests that shut the workers down)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
from typing import Any, AsyncIterator, Callable, TypeVar

T = TypeVar("T")

_STOP = None


def _resolve(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    """In the loop: the call's outcome, unless its awaiter gave up (cancelled)."""
    if fut.cancelled():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


class DriverWorker(concurrent.futures.Executor):
    """A thread named ``name`` that runs what it is given in order.  It starts with the
    first call and ends at ``shutdown`` (a daemon: a driver stuck in a call never holds
    the process up at exit)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._closed = False

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(*args)`` on this worker; the running loop's future of its result."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._put((loop, fut, fn, args))
        return fut

    def submit(self, fn: Callable[..., T], /, *args: Any,
               **kwargs: Any) -> concurrent.futures.Future[T]:
        cfut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._put((None, cfut, fn, (args, kwargs)))
        return cfut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._start:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            if wait and thread is not threading.current_thread():
                thread.join()

    def _put(self, item: tuple[Any, ...]) -> None:
        if self._thread is None:
            with self._start:
                if self._closed:
                    raise RuntimeError(f"worker {self.name} is shut down")
                if self._thread is None:
                    self._thread = threading.Thread(target=self._work, name=self.name,
                                                    daemon=True)
                    self._thread.start()
        elif self._closed:
            raise RuntimeError(f"worker {self.name} is shut down")
        self._queue.put(item)

    def _work(self) -> None:
        get = self._queue.get
        while (item := get()) is not _STOP:
            loop, fut, fn, args = item
            if loop is None:                       # submit(): a concurrent future
                if fut.set_running_or_notify_cancel():
                    try:
                        fut.set_result(fn(*args[0], **args[1]))
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        fut.set_exception(exc)
                continue
            try:
                value, ok = fn(*args), True
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
                value, ok = exc, False
            try:
                loop.call_soon_threadsafe(_resolve, fut, ok, value)
            except RuntimeError:                   # the loop is closed: nobody awaits
                pass
            del item, fut, value


class InOrder:
    """Calls for one key (a gateway's tunnel) in the order they were asked, when they
    run on different workers (issue 14: a removal on the gateway's second VICI session,
    a re-add of the same tunnel on its first).  ``begin(key)`` marks a call running
    (asked before any await: later calls see it), ``end`` its completion; ``after(key)``
    waits until the calls begun for that key before it have ended."""

    def __init__(self) -> None:
        self._running: dict[Any, asyncio.Future[None]] = {}

    def begin(self, key: Any) -> tuple[asyncio.Future[None] | None, asyncio.Future[None]]:
        """The call begun before this one for ``key`` (None: none), and this one's
        completion (``end`` it)."""
        before = self._running.get(key)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._running[key] = done
        return before, done

    def end(self, key: Any, done: asyncio.Future[None]) -> None:
        if not done.done():
            done.set_result(None)
        if self._running.get(key) is done:
            del self._running[key]

    @contextlib.asynccontextmanager
    async def turn(self, key: Any) -> AsyncIterator[None]:
        """``async with in_order.turn(key):`` the body runs after the calls begun for
        ``key`` before it (begun at once, before any await) and ends this one."""
        before, done = self.begin(key)
        try:
            if before is not None:
                await asyncio.shield(before)
            yield
        finally:
            self.end(key, done)

    async def after(self, key: Any) -> None:
        running = self._running.get(key)
        if running is not None:
            await asyncio.shield(running)
