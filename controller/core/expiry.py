"""A dict whose entries carry an expiry time, with the due ones found in O(log n).

The roles expired their bindings by scanning every entry on each tick (once a second):
at 100,000 bindings that is a stall of tens of milliseconds per role per second, which
shows up in the registration latency's p99 (docs/benchmarks.md).  ``ExpiryDict`` keeps
a heap of ``(expiry, seq, key)`` pushed on every assignment; ``due(now)`` pops the heap
entries whose time has come and returns the keys whose *current* value is expired
(entries superseded by a later assignment or deleted meanwhile are skipped).

Pure: no clock of its own; ``now`` comes from the caller like everywhere in the core.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


def _attr_expires(value: Any) -> float:
    return float(value.expires)


class ExpiryDict(dict[K, V], Generic[K, V]):
    """``dict`` plus ``due(now)``.  ``expiry(value)`` gives an entry's expiry time
    (default: its ``expires`` attribute); values must not change it in place —
    assign a new value instead (every role replaces its records)."""

    # stale heap entries beyond this many (and twice the live size) trigger a rebuild
    COMPACT_SLACK = 1024

    def __init__(self, expiry: Callable[[V], float] = _attr_expires) -> None:
        super().__init__()
        self._expiry = expiry
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        heapq.heappush(self._heap, (self._expiry(value), next(self._seq), key))
        if len(self._heap) > 2 * len(self) + self.COMPACT_SLACK:
            self._compact()

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: K, default: V) -> V:
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self) -> None:
        super().clear()
        self._heap.clear()

    def due(self, now: float) -> list[K]:
        """Keys whose current value expires at or before ``now``, soonest first.  The
        caller removes (or re-assigns) them: each is reported once."""
        out: list[K] = []
        seen: set[K] = set()
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _seq, key = heapq.heappop(heap)
            value = self.get(key, _MISSING)
            if value is _MISSING or self._expiry(value) != when:
                continue                  # deleted, or re-assigned with another expiry
            if key not in seen:
                seen.add(key)
                out.append(key)
        return out

    def next_expiry(self) -> float | None:
        """The earliest expiry still pending (possibly of a stale entry), or None."""
        return self._heap[0][0] if self._heap else None

    def _compact(self) -> None:
        self._heap = [(self._expiry(v), next(self._seq), k) for k, v in self.items()]
        heapq.heapify(self._heap)


_MISSING: Any = object()
