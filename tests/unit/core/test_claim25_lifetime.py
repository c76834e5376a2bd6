"""Claim 25: the CN gateway measures the lifetime of its bindings; below the threshold
(20 % of the lifetime) it sends a Binding Request to the HA that posted the VPN
information; the HA answers with a Binding Update while it has the binding and leaves
the request unanswered when not; without a Binding Update by expiry the CN-GW deletes
the VPN information and its tunnel."""

from __future__ import annotations

import pytest

from controller.core.actions import RemoveTunnel
from controller.core.vpn import fa_ha_key
from controller.proto import mip
from controller.proto import mip_keys
from tests.unit.harness import MipSent, MobileNode, Walk, topology

NAI = "alice@home.example"
RO1 = "alice_home.example/cngw2-fa1"


@pytest.fixture
def walk() -> Walk:
    return Walk(topology(destinations={NAI: [("10.32.0.0/24", "cngw2")]}))


@pytest.fixture
def mn(walk: Walk) -> MobileNode:
    node = MobileNode(walk)
    walk.cngw().max_lifetime = 60          # the CN-GW grants 60 s at most
    assert node.register("fa1").accepted
    return node


def binding_messages(walk: Walk, pos: int = 0) -> list[str]:
    return [f"{i.src} -> {i.dst} {i.name}" for _r, i in walk.log[pos:]
            if isinstance(i, MipSent) and i.name != "RRQ" and not i.name.startswith("RRP")]


def test_binding_request_below_threshold_refreshes(walk: Walk, mn: MobileNode) -> None:
    start = walk.now
    b = walk.cngw().bindings[mn.conf.home_address]
    assert (b.lifetime, b.expires) == (60, start + 60)
    walk.now = start + 47.9                       # 12.1 s left: above 20 % of 60
    pos = walk.mark()
    walk.tick()
    assert binding_messages(walk, pos) == []
    walk.now = start + 48.5                       # 11.5 s left: below
    pos = walk.mark()
    walk.tick()
    assert binding_messages(walk, pos) == [
        "cngw:cngw2 -> ha BReq",
        "ha -> cngw:cngw2 BU",
        "cngw:cngw2 -> ha BAck 0",
    ]
    assert not walk.of_type(RemoveTunnel, pos)    # same information: no tunnel churn
    b = walk.cngw().bindings[mn.conf.home_address]
    assert b.expires == walk.now + 60 and b.requests == 0
    (bu,) = [i for _r, i in walk.log[pos:] if isinstance(i, MipSent) and i.name == "BU"]
    assert bu.msg.lifetime == int(start + mn.conf.lifetime - walk.now)   # what is left
    assert walk.ha.counters["breq"] == 1 and walk.cngw().counters["breq_sent"] == 1


def test_no_binding_at_ha_no_update_and_expiry_removes(walk: Walk, mn: MobileNode) -> None:
    """The HA no longer holds the binding (the MN deregistered at the HA without the
    CN-GW hearing of it): the Binding Request goes unanswered, a second one too, and
    at expiry the CN-GW deletes the VPN information and its tunnel."""
    start = walk.now
    walk.ha.bindings.clear()
    walk.now = start + 48.5
    pos = walk.mark()
    walk.tick()
    assert binding_messages(walk, pos) == ["cngw:cngw2 -> ha BReq"]
    walk.now = start + 55                          # below half the threshold: once more
    walk.tick()
    walk.now = start + 58
    walk.tick()
    assert binding_messages(walk, pos) == ["cngw:cngw2 -> ha BReq"] * 2
    assert RO1 in walk.gateways.ids("cngw2")
    walk.now = start + 60
    pos = walk.mark()
    walk.tick()
    assert walk.trace(pos) == [f"cngw:cngw2 RemoveTunnel cngw2 {RO1}"]
    assert walk.cngw().bindings == {} and walk.cngw().counters["expired"] == 1
    assert walk.gateways.ids("cngw2") == set() and walk.gateways.errors == []


def test_full_lifetime_refreshes_until_the_ha_binding_ends(walk: Walk, mn: MobileNode) -> None:
    """1 s ticks through the whole registration lifetime (300 s, never renewed): the
    CN-GW is refreshed every ~50 s while the HA binding lives; after the HA expires it
    its requests go unanswered and the tunnel is removed."""
    start = walk.now
    refreshed_until = start
    for second in range(1, 320):
        walk.now = start + second
        pos = walk.mark()
        walk.tick()
        if "ha -> cngw:cngw2 BU" in binding_messages(walk, pos):
            refreshed_until = walk.now
    assert start + 280 < refreshed_until <= start + 300
    assert walk.cngw().counters["breq_sent"] >= 6
    assert walk.cngw().bindings == {} and RO1 not in walk.gateways.ids("cngw2")
    assert walk.ha.bindings == {} and walk.gateways.errors == []


def test_renewal_refreshes_without_binding_request(walk: Walk, mn: MobileNode) -> None:
    start = walk.now
    walk.now = start + 40                         # the MN renews before the threshold
    assert mn.register("fa1").accepted
    walk.now = start + 48.5
    pos = walk.mark()
    walk.tick()
    assert binding_messages(walk, pos) == []      # the renewal's BU already refreshed
    assert walk.cngw().bindings[mn.conf.home_address].expires == start + 100


def test_deregistration_deletes_at_the_cngw(walk: Walk, mn: MobileNode) -> None:
    walk.now += 2
    assert mn.register("fa2", "fa1").accepted     # relayed (intra-domain) path
    walk.now += 2
    pos = walk.mark()
    raw = mn.rrq("fa2", lifetime=0)
    raw = mip.append_auth(raw, mip.AuthKind.FA_HA, mip_keys.FA_HA_SPI,     # from FA2
                          fa_ha_key(walk.ha.bindings[mn.conf.nai].secret, "fa2"))
    reply = walk.execute("ha", walk.ha.on_registration_request(walk.now, raw))
    assert reply is not None
    assert binding_messages(walk, pos) == ["ha -> cngw:cngw2 BU delete",
                                           "cngw:cngw2 -> ha BAck 0"]
    assert walk.cngw().bindings == {} and walk.gateways.ids("cngw2") == set()


def test_binding_request_for_unknown_home_address_ignored(walk: Walk, mn: MobileNode) -> None:
    from controller.core.binding import binding_request
    raw = binding_request("10.10.0.222", mip.ntp_identification(walk.now))
    assert walk.ha.on_mip(walk.now, raw, "cngw:cngw2") == []
    raw = binding_request(mn.conf.home_address, mip.ntp_identification(walk.now))
    assert walk.ha.on_mip(walk.now, raw, "cngw:cngw") == []        # not a dynamic one
    assert walk.ha.on_mip(walk.now, b"\x01", "cngw:cngw2") == []
