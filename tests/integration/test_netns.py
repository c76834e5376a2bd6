"""tests/integration/netns.py: the helper every root integration test runs in."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.netns import (NetnsChildError, NetnsTimeout, can_unshare, in_netns,
                                     run_in_netns)

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0 or not can_unshare(),
                                 reason="needs root (network namespaces)")]


def _links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                          check=True).stdout


def test_fresh_namespace_with_only_lo_up() -> None:
    out = run_in_netns(_links, timeout=30)
    assert len(out.splitlines()) == 1 and ": lo:" in out and "UP" in out
    assert run_in_netns(os.readlink, "/proc/self/ns/net") != os.readlink("/proc/self/ns/net")


def test_assertion_message_reaches_the_parent() -> None:
    def body(x: int) -> None:
        assert x == 2, "x was not 2"
    with pytest.raises(AssertionError, match="x was not 2"):
        run_in_netns(body, 1, timeout=30)


class _Unpicklable(Exception):
    def __reduce__(self):  # type: ignore[no-untyped-def]
        raise TypeError("cannot pickle")


def test_unpicklable_exception_becomes_text() -> None:
    def body() -> None:
        raise _Unpicklable("boom")
    with pytest.raises(NetnsChildError, match="boom"):
        run_in_netns(body, timeout=30)


def test_child_exit_without_report() -> None:
    with pytest.raises(NetnsChildError, match="exit status 3"):
        run_in_netns(os._exit, 3, timeout=30)


def test_timeout_lets_the_child_clean_up(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"

    def body() -> None:
        try:
            time.sleep(60)
        finally:
            marker.write_text("yes")
    with pytest.raises(NetnsTimeout):
        run_in_netns(body, timeout=1, grace=10)
    assert marker.read_text() == "yes"


@in_netns(timeout=30)
def test_decorator_passes_fixtures(tmp_path: Path) -> None:
    assert tmp_path.exists()
    assert len(_links().splitlines()) == 1
