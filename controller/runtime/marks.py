"""Time marks kept oldest first: a dict keeps its keys in insertion order, so a key
moved to the newest end at every mark leaves the oldest at the front, and a prune
walks only what it drops (the gateways' reconcile marks, pruned every tick)."""

from __future__ import annotations

from typing import Any


def stamp(marks: dict[Any, float], key: Any, t: float) -> None:
    """Mark ``key`` at ``t`` (a ``time.monotonic()`` reading: never earlier than the
    marks before it), at the newest end of ``marks``."""
    marks.pop(key, None)
    marks[key] = t


def prune(marks: dict[Any, float], now: float, keep: float) -> None:
    """Drop the marks older than ``keep`` seconds at ``now``; the walk stops at the
    first fresh one."""
    old = []
    for k, t in marks.items():
        if now - t <= keep:
            break
        old.append(k)
    for k in old:
        del marks[k]
