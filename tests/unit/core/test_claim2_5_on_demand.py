"""Claims 2 and 5: the home network's server distributes the VPN information to the
router of the correspondent's network (claim 2) after receiving a communication packet
from the correspondent (claim 5): profile option ``distribution: on_demand``.

At registration the FA gets its end (responder); the CN-GW gets nothing.  When the
runtime reports the correspondent's first packet towards the MN
(``HomeAgent.on_correspondent_packet``), the HA posts the Binding Update; the CN-GW
sets its end and initiates."""

from __future__ import annotations

import pytest

from tests.unit.harness import MipSent, MobileNode, Walk, topology

NAI = "alice@home.example"
RO1, RO2 = "alice_home.example/cngw2-fa1", "alice_home.example/cngw2-fa2"
HOA = "10.10.0.100"


@pytest.fixture
def walk() -> Walk:
    return Walk(topology(destinations={NAI: [("10.32.0.0/24", "cngw2")]},
                         distribution="on_demand"))


@pytest.fixture
def mn(walk: Walk) -> MobileNode:
    return MobileNode(walk)


def packet(walk: Walk, cn_gateway: str = "cngw2", home: str = HOA) -> list[str]:
    pos = walk.mark()
    walk.execute("ha", walk.ha.on_correspondent_packet(walk.now, home, cn_gateway))
    return walk.trace(pos)


def test_registration_sends_nothing_to_the_cngw(walk: Walk, mn: MobileNode) -> None:
    assert mn.register("fa1").accepted
    assert walk.trace() == [
        "mn -> fa:fa1 RRQ",
        "fa:fa1 -> aaaf:domain-a AMR",
        "aaaf:domain-a -> aaah AMR",
        "aaah -> ha HAR",
        "ha -> aaah HAA",
        "aaah -> aaaf:domain-a AMA",
        "aaaf:domain-a -> fa:fa1 AMA",
        "fa:fa1 SendFlows acc1",
        f"fa:fa1 AddTunnel fa1 {RO1}",                    # responder: waits for CN-GW2
        "fa:fa1 -> mn RRP 0",
    ]
    spec = walk.aaah.sessions[NAI].tunnels[0]
    assert spec.initiator == "cngw2"
    assert walk.aaah.sessions[NAI].distribution == "on_demand"
    (ama,) = [d for d in walk.diameter() if d.name == "AMA" and d.dst == "fa:fa1"]
    assert ama.msg.vpn_info.distribution == "on_demand"   # carried (Mipvpn-Distribution)
    assert walk.gateways.ids("cngw2") == set() and walk.cngw().bindings == {}


def test_first_correspondent_packet_distributes(walk: Walk, mn: MobileNode) -> None:
    mn.register("fa1")
    walk.now += 1
    assert packet(walk) == [
        "ha -> cngw:cngw2 BU",
        f"cngw:cngw2 AddTunnel cngw2 {RO1} initiator",
        "cngw:cngw2 -> ha BAck 0",
    ]
    assert walk.gateways.tunnels["cngw2"][RO1].psk == walk.gateways.tunnels["fa1"][RO1].psk
    assert walk.ha.bindings[NAI].distributed == {"cngw2"}
    assert packet(walk) == []                           # later packets: nothing
    assert packet(walk, home="10.10.0.222") == []        # no such binding
    assert packet(walk, cn_gateway="cngw") == []         # not a dynamic gateway of hers


def test_move_withdraws_then_next_packet_redistributes(walk: Walk, mn: MobileNode) -> None:
    mn.register("fa1")
    packet(walk)
    walk.now += 2
    pos = walk.mark()
    assert mn.register("fa2", "fa1").accepted
    trace = walk.trace(pos)
    assert trace[4:8] == [
        "fa:fa2 -> ha RRQ",
        "ha -> cngw:cngw2 BU delete",
        f"cngw:cngw2 RemoveTunnel cngw2 {RO1}",
        "cngw:cngw2 -> ha BAck 0",
    ]
    assert f"fa:fa2 AddTunnel fa2 {RO2}" in trace          # responder again
    assert walk.ha.bindings[NAI].distributed == set()
    assert walk.gateways.ids("cngw2") == set()
    assert packet(walk) == [
        "ha -> cngw:cngw2 BU",
        f"cngw:cngw2 AddTunnel cngw2 {RO2} initiator",
        "cngw:cngw2 -> ha BAck 0",
    ]
    assert walk.gateways.errors == []


def test_registration_mode_packet_retries_a_failed_bu() -> None:
    """With registration-time distribution the same event re-posts a BU that failed."""
    walk = Walk(topology(destinations={NAI: [("10.32.0.0/24", "cngw2")]}))
    mn = MobileNode(walk)
    walk.lost.add("cngw:cngw2")
    assert mn.register("fa1").accepted
    assert walk.gateways.ids("cngw2") == set()
    walk.lost.clear()
    walk.now += 1
    assert packet(walk) == [
        "ha -> cngw:cngw2 BU",
        f"cngw:cngw2 AddTunnel cngw2 {RO1}",            # the FA initiates in this mode
        "cngw:cngw2 -> ha BAck 0",
    ]
    assert packet(walk) == []


def test_refresh_only_once_distributed(walk: Walk, mn: MobileNode) -> None:
    from controller.core.binding import binding_request
    from controller.proto import mip
    mn.register("fa1")
    raw = binding_request(HOA, mip.ntp_identification(walk.now))
    assert walk.ha.on_mip(walk.now, raw, "cngw:cngw2") == []   # nothing posted yet
    packet(walk)
    pos = walk.mark()
    walk.execute("ha", walk.ha.on_mip(walk.now, raw, "cngw:cngw2"))
    assert [i.name for _r, i in walk.log[pos:] if isinstance(i, MipSent)] == ["BU", "BAck 0"]
