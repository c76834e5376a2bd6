"""The FA's visitor table keeps its MAC index in step with every mutation."""

from __future__ import annotations

from controller.core.visitors import Visitor, VisitorTable
from controller.core.vpn import VpnInfo


def _visitor(nai: str, mac: str) -> Visitor:
    info = VpnInfo(nai=nai, home_address="10.1.0.5", home_agent="ha",
                   foreign_agent="fa1", tunnels=())
    return Visitor(nai, "10.1.0.5", "10.1.0.1", mac, 3, info, 30, 30.0)


def test_index_follows_set_replace_delete_pop() -> None:
    t = VisitorTable()
    a = _visitor("a@x", "02:00:00:00:00:0A")
    t["a@x"] = a
    assert t.by_mac("02:00:00:00:00:0a") is a            # case-insensitive
    moved = _visitor("a@x", "02:00:00:00:00:0b")         # same NAI, another MAC
    t["a@x"] = moved
    assert t.by_mac("02:00:00:00:00:0a") is None
    assert t.by_mac("02:00:00:00:00:0B") is moved
    del t["a@x"]
    assert t.by_mac("02:00:00:00:00:0b") is None and not t
    t["b@x"] = b = _visitor("b@x", "02:00:00:00:00:0c")
    assert t.pop("b@x") is b and t.by_mac("02:00:00:00:00:0c") is None
    assert t.pop("b@x", None) is None


def test_two_nais_one_mac_removal_of_the_older_keeps_the_newer() -> None:
    t = VisitorTable()
    t["a@x"] = _visitor("a@x", "02:00:00:00:00:01")
    t["b@x"] = b = _visitor("b@x", "02:00:00:00:00:01")
    del t["a@x"]                                         # a's entry was superseded
    assert t.by_mac("02:00:00:00:00:01") is b


def test_update_and_clear_and_popitem() -> None:
    t = VisitorTable()
    t.update({"a@x": _visitor("a@x", "02:00:00:00:00:01")})
    assert t.by_mac("02:00:00:00:00:01") is not None
    nai, _ = t.popitem()
    assert nai == "a@x" and t.by_mac("02:00:00:00:00:01") is None
    t["c@x"] = _visitor("c@x", "02:00:00:00:00:03")
    t.clear()
    assert t.by_mac("02:00:00:00:00:03") is None
