"""A foreign agent's visitors: who is registered through it, indexed by NAI, by MN MAC
and by expiry (moved out of ``foreign_agent.py``; the FA owns the table)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controller.core.expiry import ExpiryDict
from controller.core.persist import ChangeSink, Tracking
from controller.core.vpn import VpnInfo


@dataclass
class Visitor:
    nai: str
    home_address: str
    home_agent: str
    mn_mac: str
    port: int
    vpn_info: VpnInfo
    lifetime: int
    expires: float
    fa_key: bytes = field(default=b"", repr=False)   # this FA's FA-HA key (issue 11)


class VisitorTable(ExpiryDict[str, Visitor]):
    """NAI -> Visitor, with an index by MN MAC (lower case) kept in step, and the
    visitors due to expire found without a scan (``ExpiryDict.due``).

    The runtime looks visitors up by the MACs a flow batch installs (QoS planning); a
    scan of every visitor there cost O(visitors) per registration (docs/benchmarks.md).
    Only the mutators the FA uses are indexed: item set/delete, ``pop``, ``clear``."""

    def __init__(self) -> None:
        super().__init__()
        self._by_mac: dict[str, Visitor] = {}

    def __setitem__(self, nai: str, visitor: Visitor) -> None:
        old = self.get(nai)
        if old is not None:
            self._unindex(old)
        super().__setitem__(nai, visitor)
        self._by_mac[visitor.mn_mac.lower()] = visitor

    def __delitem__(self, nai: str) -> None:
        self._unindex(self[nai])
        super().__delitem__(nai)

    def pop(self, nai: str, *default: Any) -> Any:
        visitor = super().pop(nai, *default)
        if isinstance(visitor, Visitor):
            self._unindex(visitor)
        return visitor

    def clear(self) -> None:
        super().clear()
        self._by_mac.clear()

    def popitem(self) -> tuple[str, Visitor]:
        nai, visitor = super().popitem()
        self._unindex(visitor)
        return nai, visitor

    def by_mac(self, mac: str) -> Visitor | None:
        return self._by_mac.get(mac.lower())

    def _unindex(self, visitor: Visitor) -> None:
        key = visitor.mn_mac.lower()
        if self._by_mac.get(key) is visitor:
            del self._by_mac[key]


class TrackedVisitorTable(Tracking, VisitorTable):
    """A ``VisitorTable`` whose changes are noted in ``changes`` (restart persistence,
    ``controller.core.persist``)."""

    def __init__(self, changes: ChangeSink) -> None:
        VisitorTable.__init__(self)
        self._changes = changes
        self._key_of = None
