"""No silent skips in CI (issue 13).

When the environment says ``CI=true`` (what CI services set; `.ci/run` runs
``./run tests`` as root), a test that is skipped is reported as a *failure* with the
skip's reason: an integration test that skips because it is not root, a tool is
missing or a namespace cannot be made would otherwise leave CI green having tested
nothing.  This covers every skip — a ``skipif`` mark, ``pytest.skip()`` in a test or
fixture, ``pytest.importorskip`` at module level (a skipped collection) — in
``tests/unit`` as well as ``tests/integration``: on the CI machine everything can run.

``CI_ALLOWED_SKIPS`` lists the test node ids (prefixes) whose skip is legitimately
conditional even in CI, each with the reason.  It is empty, and is to stay short: a
new entry needs a line in docs/decisions.md saying why the test cannot run in CI.
An expected failure (``xfail``) is not a skip and is reported as pytest reports it.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

# node id prefix -> why the skip is legitimate in CI (docs/decisions.md, 2026-12-04)
CI_ALLOWED_SKIPS: dict[str, str] = {}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _allowed(nodeid: str) -> bool:
    return any(nodeid == p or nodeid.startswith(p) for p in CI_ALLOWED_SKIPS)


def _skip_reason(longrepr: Any) -> str:
    """A skip report's reason (``longrepr`` is ``(path, lineno, reason)`` for skips)."""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        path, lineno, reason = longrepr
        return f"{reason} ({path}:{lineno})"
    return str(longrepr)


def _as_failure(report: Any, what: str) -> None:
    reason = _skip_reason(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"{what} skipped in CI (CI=true), which counts as a failure: "
                       f"{reason}.  Make it run on the CI machine (root, Debian "
                       f"packages of ./run), or allow-list it in tests/conftest.py "
                       f"CI_ALLOWED_SKIPS with the reason.")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and not hasattr(report, "wasxfail") and in_ci()
            and not _allowed(item.nodeid)):
        _as_failure(report, f"test {item.nodeid}")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and not _allowed(collector.nodeid):
        _as_failure(report, f"module {collector.nodeid}")
