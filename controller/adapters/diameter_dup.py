"""The answers a Diameter node keeps for retransmitted duplicates (RFC 6733 §5.5.4):
a request with the 'T' flag that repeats one this node answered (or is answering)
gets that answer again without reaching the handler.

Bounded three ways, so that no peer can take another's entries and none outlives
the window in which a duplicate can come:

- per sending peer (``ANSWERS_KEPT_PER_PEER``): a peer's own requests evict only its
  own oldest entries;
- overall (``ANSWERS_KEPT``): the oldest entry of any peer goes first;
- by age (``ANSWERS_MAX_AGE``): a duplicate is a resend after the sender's failover,
  which it starts when its transport fails or its watchdog gives the peer up
  (RFC 3539: unanswered for 2 Tw, Tw = 30 s, +-2 s jitter) and sends on the next open
  connection (a redial waits Tc = 30 s at most, RFC 6733 §2.1); 4 Tw = 120 s covers
  both with margin.  It also stays below the 4 minutes for which an End-to-End id
  must be unique (RFC 6733 §3): an older entry could match a new request reusing it.

The key names the sending peer first (its CER identity): ``(peer, Origin-Host,
End-to-End id, command, Session-Id)``."""

from __future__ import annotations

import collections
import time
from typing import Any, Callable

ANSWERS_KEPT = 16384             # entries kept at most, every peer together
ANSWERS_KEPT_PER_PEER = 4096     # entries kept at most for one sending peer
ANSWERS_MAX_AGE = 120.0          # s: 4 Tw (see above)

Key = tuple[str, str, int, str, str]


class AnswerCache:
    """Key -> the answer (an asyncio future while being computed); see the module."""

    def __init__(self, per_peer: int = ANSWERS_KEPT_PER_PEER, total: int = ANSWERS_KEPT,
                 max_age: float = ANSWERS_MAX_AGE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_peer = per_peer
        self.total = total
        self.max_age = max_age
        self.clock = clock
        # oldest first: key -> (when, answer); and each peer's keys, oldest first
        self._all: collections.OrderedDict[Key, tuple[float, Any]] = \
            collections.OrderedDict()
        self._peers: dict[str, collections.OrderedDict[Key, None]] = {}

    def __len__(self) -> int:
        return len(self._all)

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None  # type: ignore[arg-type]

    def peer_count(self, peer: str) -> int:
        return len(self._peers.get(peer, ()))

    def get(self, key: Key) -> Any:
        """The answer kept for ``key``, or None (never kept, evicted or too old)."""
        self._expire()
        entry = self._all.get(key)
        return None if entry is None else entry[1]

    def put(self, key: Key, answer: Any) -> None:
        self._expire()
        self._drop(key)
        self._all[key] = (self.clock(), answer)
        mine = self._peers.setdefault(key[0], collections.OrderedDict())
        mine[key] = None
        while len(mine) > self.per_peer:
            self._drop(next(iter(mine)))
        while len(self._all) > self.total:
            self._drop(next(iter(self._all)))

    def settle(self, key: Key, data: bytes) -> None:
        """The answer for ``key`` is sent as ``data``: keep those bytes instead of the
        finished future (issue 15: a future, the message and its VPN information would
        live here for ``max_age``, each traversed by the cyclic GC on its way to the
        oldest generation; bytes are not).  An entry evicted or put again meanwhile
        (a future not yet done) is left alone."""
        entry = self._all.get(key)
        if entry is not None and not isinstance(entry[1], bytes) and entry[1].done():
            self._all[key] = (entry[0], data)

    def _expire(self) -> None:
        limit = self.clock() - self.max_age
        while self._all:
            key, (when, _answer) = next(iter(self._all.items()))
            if when >= limit:
                return
            self._drop(key)

    def _drop(self, key: Key) -> None:
        if self._all.pop(key, None) is None:
            return
        mine = self._peers[key[0]]
        del mine[key]
        if not mine:
            del self._peers[key[0]]
