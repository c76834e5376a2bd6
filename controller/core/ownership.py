"""Who owns a replicated record (issue 17): pure decisions over the owner keys a
replica observes in the shared store.

Several controller processes ("replicas") serve one home domain and share their roles'
records (``controller.adapters.etcd_state``).  Each record (a role's state for one key:
a binding, a cached VPN information, ...) has at most one owner, the replica named by
its owner key; the owner key lives on the owner's session lease, so it disappears when
the owner stops renewing it (the process died, or lost the store).

- The replica that accepts a registration owns its records from then on (it wrote
  them: the MN is talking to it).
- A record nobody owns (its owner's session expired) is claimed by a replica that
  holds it: the first claim wins (create-if-absent in the store), the others see the
  new owner.
- Only the owner (or anybody, when nobody owns it) deletes a record: a replica whose
  copy of a binding expired does not delete the owner's renewed one.
- A record that carries an absolute ``expires`` (a binding's MIP lifetime) is stored
  on a lease that ends ``grace`` seconds (rounded up to the lease window) after it:
  the store drops it when the lifetime is over even if no replica is left to do so.

Times are the roles' clock (the wall clock in the runtime).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping


def record_path(role: str, key: str) -> str:
    """The store's name of ``role``'s record for ``key`` (``"ha/alice@home"``)."""
    return f"{role}/{key}"


def to_claim(held: Iterable[str], owners: Mapping[str, str]) -> list[str]:
    """The record paths this replica holds that no live replica owns (sorted: every
    replica tries them in the same order)."""
    return sorted(path for path in held if path not in owners)


def may_delete(me: str, owner: str | None) -> bool:
    """A replica deletes a record only when it owns it, or nobody does."""
    return owner is None or owner == me


def lease_end(record: Mapping[str, Any], grace: int, step: int = 10) -> int | None:
    """When the record's lease should end (absolute, whole seconds): its ``expires``
    plus ``grace``, rounded up to a multiple of ``step`` so that the records written in
    the same ``step`` seconds share one lease (one grant per window, not per record).
    None for a record with no lifetime."""
    expires = record.get("expires")
    if not isinstance(expires, (int, float)) or isinstance(expires, bool):
        return None
    end = math.ceil(expires) + grace
    return ((end + step - 1) // step) * step


def lease_ttl(end: int, now: float) -> int:
    """The TTL to grant now for a lease ending at ``end`` (at least 1 s)."""
    return max(1, math.ceil(end - now))
