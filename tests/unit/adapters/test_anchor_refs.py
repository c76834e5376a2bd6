"""Issue 14: taking a selector anchor already held (the new tunnel's, while the old
tunnel of the same selectors still holds it) reads nothing from the namespace: the
address dump goes through the namespace's helper process and costs a move time."""

from __future__ import annotations

from typing import Any

import pytest

from controller.adapters.strongswan import anchors as anchors_mod


class FakeNetNS:
    def __init__(self, path: str) -> None:
        self.dumps = 0
        self.ops: list[tuple[str, str]] = []

    def link_lookup(self, ifname: str) -> list[int]:
        return [7]

    def get_addr(self, family: int) -> list[Any]:
        self.dumps += 1
        return []

    def addr(self, op: str, **kw: Any) -> None:
        self.ops.append((op, kw["address"]))

    def route(self, op: str, **kw: Any) -> None:
        self.ops.append((f"route {op}", kw["dst"]))

    def close(self) -> None:
        pass


@pytest.fixture
def anchors(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(anchors_mod, "NetNS", FakeNetNS)
    return anchors_mod.SelectorAnchors("/proc/self/ns/net")


def test_a_held_anchor_is_taken_again_without_a_dump(anchors: Any) -> None:
    assert anchors.acquire(["10.30.0.0/24"]) == ["10.30.0.0"]
    assert anchors._ns.dumps == 1
    assert anchors.acquire(["10.30.0.0/24"]) == ["10.30.0.0"]
    assert anchors._ns.dumps == 1
    anchors.release(["10.30.0.0"])
    assert ("del", "10.30.0.0") not in anchors._ns.ops       # still held once
    anchors.release(["10.30.0.0"])
    assert ("del", "10.30.0.0") in anchors._ns.ops


def test_a_new_anchor_still_checks_the_gateways_own_addresses(anchors: Any) -> None:
    anchors.acquire(["10.30.0.0/24"])
    anchors.acquire(["10.30.0.0/24", "10.10.0.5/32"])
    assert anchors._ns.dumps == 2
