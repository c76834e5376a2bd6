"""A gateway's driver worker (issue 15): its calls run in order on its own thread, and
their outcome (result or error) reaches the awaiting coroutine in the loop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from controller.runtime.workers import DriverWorker


def test_calls_run_in_order_on_the_workers_thread() -> None:
    worker = DriverWorker("vici-test")
    seen: list[tuple[int, str]] = []

    def call(i: int) -> int:
        time.sleep(0.002 if i == 0 else 0)      # the first is the slowest: order still
        seen.append((i, threading.current_thread().name))
        return i * 10

    async def main() -> list[int]:
        return list(await asyncio.gather(*(worker.run(call, i) for i in range(5))))

    try:
        assert asyncio.run(main()) == [0, 10, 20, 30, 40]
    finally:
        worker.shutdown()
    assert seen == [(i, "vici-test") for i in range(5)]


def test_an_error_reaches_the_awaiter() -> None:
    worker = DriverWorker("vici-test")

    def fail() -> None:
        raise OSError("charon gone")

    async def main() -> None:
        with pytest.raises(OSError, match="charon gone"):
            await worker.run(fail)
        assert await worker.run(lambda: "next") == "next"   # the worker goes on

    try:
        asyncio.run(main())
    finally:
        worker.shutdown()


def test_a_cancelled_awaiter_leaves_the_worker_and_loop_working() -> None:
    worker = DriverWorker("vici-test")
    release = threading.Event()
    errors: list[object] = []

    async def main() -> str:
        asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: errors.append(ctx))
        slow = worker.run(release.wait, 5)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(slow, 0.01)      # cancels the loop's future
        release.set()
        return await worker.run(lambda: "after")    # queued behind the slow call

    try:
        assert asyncio.run(main()) == "after"
    finally:
        worker.shutdown()
    assert errors == []       # no InvalidStateError from setting a cancelled future


def test_submit_and_shutdown_as_an_executor() -> None:
    worker = DriverWorker("vici-test")
    assert worker.submit(lambda a, b=0: a + b, 1, b=2).result(2) == 3

    async def via_loop() -> int:
        return await asyncio.get_running_loop().run_in_executor(worker, sum, (1, 2, 3))

    assert asyncio.run(via_loop()) == 6
    thread = worker._thread
    worker.shutdown(wait=True)
    assert thread is not None and not thread.is_alive()
    with pytest.raises(RuntimeError, match="shut down"):
        worker.submit(print)


def test_no_thread_until_the_first_call() -> None:
    before = threading.active_count()
    worker = DriverWorker("vici-idle")
    assert threading.active_count() == before
    worker.shutdown()
