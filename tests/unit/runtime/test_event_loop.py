"""The runtime's event loop (issue 15): uvloop's when it is installed (about 10 % less
CPU per registration, docs/benchmarks.md § 1), asyncio's when it is not or when
MIPVPN_EVENT_LOOP=asyncio asks for it."""

from __future__ import annotations

import asyncio
import builtins
from typing import Any

import pytest

from controller.runtime import root


def _run(loop: asyncio.AbstractEventLoop) -> int:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42
    try:
        return loop.run_until_complete(answer())
    finally:
        loop.close()


def test_uvloop_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    uvloop = pytest.importorskip("uvloop")
    monkeypatch.delenv("MIPVPN_EVENT_LOOP", raising=False)
    loop = root.new_event_loop()
    assert isinstance(loop, uvloop.Loop)
    assert _run(loop) == 42


def test_asyncio_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIPVPN_EVENT_LOOP", "asyncio")
    loop = root.new_event_loop()
    assert type(loop).__module__.startswith("asyncio")
    assert _run(loop) == 42


def test_asyncio_when_uvloop_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIPVPN_EVENT_LOOP", raising=False)
    real = builtins.__import__

    def no_uvloop(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "uvloop":
            raise ImportError(name)
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_uvloop)
    loop = root.new_event_loop()
    assert type(loop).__module__.startswith("asyncio")
    assert _run(loop) == 42


def test_an_unknown_choice_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIPVPN_EVENT_LOOP", "tornado")
    with pytest.raises(ValueError, match="MIPVPN_EVENT_LOOP"):
        root.new_event_loop()
