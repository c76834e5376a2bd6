"""Claims 20 and 21: moves with route optimisation.  After the HA rewrites (claim 20,
intra-domain, AAAF answers locally) or receives (claim 21, inter-domain, through the
home AAA) the VPN information for the new FA, it sends a Binding Update to CN-GW2,
which deletes its tunnel to the old FA and sets one to the new FA, acknowledges, and
only then the HA replies."""

from __future__ import annotations

import pytest

from controller.core.actions import AddTunnel, RemoveTunnel
from tests.unit.harness import MobileNode, Walk, topology

NAI = "alice@home.example"
OWNER = "alice_home.example"
RO1, RO2, RO3 = (f"{OWNER}/cngw2-fa{i}" for i in (1, 2, 3))

INTRA_RO_MOVE = [
    "mn -> fa:fa2 RRQ",
    "fa:fa2 -> aaaf:domain-a AMR",
    "aaaf:domain-a -> fa:fa2 AMA",
    "fa:fa2 RelayToHomeAgent",
    "fa:fa2 -> ha RRQ",
    "ha -> cngw:cngw2 BU",
    f"cngw:cngw2 RemoveTunnel cngw2 {RO1}",
    f"cngw:cngw2 AddTunnel cngw2 {RO2}",
    "cngw:cngw2 -> ha BAck 0",
    "ha -> fa:fa2 RRP 0",
    "fa:fa2 SendFlows acc2",
    f"fa:fa2 AddTunnel fa2 {RO2} initiator",
    "fa:fa2 -> mn RRP 0",
    "fa:fa2 NotifyVisitorLeft fa1",
    f"fa:fa1 RemoveTunnel fa1 {RO1}",
    "fa:fa1 SendFlows acc1",
]

INTER_RO_MOVE = [
    "mn -> fa:fa3 RRQ",
    "fa:fa3 -> aaaf:domain-b AMR",
    "aaaf:domain-b -> aaah AMR",
    "aaah -> ha HAR",
    "ha -> cngw:cngw2 BU",
    f"cngw:cngw2 RemoveTunnel cngw2 {RO1}",
    f"cngw:cngw2 AddTunnel cngw2 {RO3}",
    "cngw:cngw2 -> ha BAck 0",
    "ha -> aaah HAA",
    "aaah -> aaaf:domain-b AMA",
    "aaaf:domain-b -> fa:fa3 AMA",
    "fa:fa3 SendFlows acc3",
    f"fa:fa3 AddTunnel fa3 {RO3} initiator",
    "fa:fa3 -> mn RRP 0",
    "fa:fa3 NotifyVisitorLeft fa1",
    f"fa:fa1 RemoveTunnel fa1 {RO1}",
    "fa:fa1 SendFlows acc1",
]


@pytest.fixture
def walk() -> Walk:
    return Walk(topology(destinations={NAI: [("10.32.0.0/24", "cngw2")]}))


@pytest.fixture
def mn(walk: Walk) -> MobileNode:
    node = MobileNode(walk)
    assert node.register("fa1").accepted
    walk.now += 2.0
    return node


def move(walk: Walk, mn: MobileNode, to: str, previous: str = "fa1"):  # type: ignore[no-untyped-def]
    pos = walk.mark()
    return pos, mn.register(to, previous)


# ------------------------------------------------------------------ claim 20


def test_intra_domain_ro_move_exact_walk(walk: Walk, mn: MobileNode) -> None:
    issued = walk.gateways.tunnels["cngw2"][RO1].psk
    pos, rrp = move(walk, mn, "fa2")
    assert walk.trace(pos) == INTRA_RO_MOVE
    assert rrp is not None and rrp.accepted
    # the AAAF rewrote its cached FA<->CN-GW information, with a fresh key (issue 11)
    cached = walk.aaaf().sessions[NAI].vpn_info
    assert [t.tunnel_id for t in cached.tunnels] == [RO2]
    assert cached.tunnels[0].psk != issued and len(cached.tunnels[0].psk) == 32
    # the HA rewrote its copy the same way and posted it
    ha_info = walk.ha.bindings[NAI].vpn_info
    assert ha_info.tunnels == cached.tunnels
    cn = walk.cngw().bindings[mn.conf.home_address]
    assert cn.tunnels == cached.tunnels
    assert walk.gateways.tunnels["cngw2"][RO2].remote.address == "10.0.0.12"
    assert walk.gateways.tunnels["fa2"][RO2].psk == walk.gateways.tunnels["cngw2"][RO2].psk
    assert walk.gateways.ids("cngw2") == {RO2} and walk.gateways.ids("fa1") == set()
    assert walk.gateways.errors == []


def test_cngw_deletes_old_before_adding_new(walk: Walk, mn: MobileNode) -> None:
    pos, _ = move(walk, mn, "fa2")
    ops = [(type(a).__name__, getattr(a, "tunnel_id", None) or a.side.tunnel_id)
           for role, a in walk.of_type((AddTunnel, RemoveTunnel), pos) if role.startswith(
               "cngw")]
    assert ops == [("RemoveTunnel", RO1), ("AddTunnel", RO2)]


def test_move_back_and_forth_ro(walk: Walk, mn: MobileNode) -> None:
    move(walk, mn, "fa2")
    walk.now += 2
    pos, rrp = move(walk, mn, "fa1", previous="fa2")
    assert rrp is not None and rrp.accepted
    assert walk.gateways.ids("cngw2") == {RO1} and walk.gateways.ids("fa1") == {RO1}
    assert walk.gateways.ids("fa2") == set() and walk.gateways.errors == []
    assert walk.cngw().bindings[mn.conf.home_address].tunnels[0].b.address == "10.0.0.11"


def test_denied_ro_move_leaves_cngw_alone(walk: Walk, mn: MobileNode) -> None:
    pos, rrp = move(walk, mn, "fa2")
    walk.now += 1
    ident = walk.ha.bindings[NAI].identification
    pos = walk.mark()
    rrp = mn.register("fa1", "fa2", identification=ident)     # replay: 133
    assert rrp is not None and rrp.code == 133
    assert "ha -> cngw:cngw2 BU" not in walk.trace(pos)
    assert walk.gateways.ids("cngw2") == {RO2}


# ------------------------------------------------------------------ claim 21


def test_inter_domain_ro_move_exact_walk(walk: Walk, mn: MobileNode) -> None:
    old_psk = walk.gateways.tunnels["cngw2"][RO1].psk
    pos, rrp = move(walk, mn, "fa3")
    assert walk.trace(pos) == INTER_RO_MOVE
    assert rrp is not None and rrp.accepted
    # the home AAA knows the old FA by its address (another domain) and says so
    (amr,) = [d for d in walk.diameter(pos) if d.name == "AMR" and d.src == "aaaf:domain-b"]
    assert amr.msg.previous_fa == "" and amr.msg.previous_fa_address == "10.0.0.11"
    assert walk.aaah.sessions[NAI].previous_foreign_agent == "fa1"
    # fresh security information from the home AAA, the same at both ends
    new_psk = walk.gateways.tunnels["cngw2"][RO3].psk
    assert new_psk != old_psk and walk.gateways.tunnels["fa3"][RO3].psk == new_psk
    assert walk.aaaf("domain-b").sessions[NAI].vpn_info.tunnels[0].psk == new_psk
    assert walk.ha.bindings[NAI].care_of_address == "10.0.0.13"
    assert walk.gateways.ids("cngw2") == {RO3}
    assert walk.gateways.ids("fa1") == set() and walk.gateways.errors == []


def test_inter_then_intra_domain_b_back_to_a(walk: Walk, mn: MobileNode) -> None:
    move(walk, mn, "fa3")
    walk.now += 2
    pos, rrp = move(walk, mn, "fa2", previous="fa3")
    assert rrp is not None and rrp.accepted
    assert "aaah -> ha HAR" in walk.trace(pos)      # another domain: home AAA again
    assert walk.gateways.ids("cngw2") == {RO2} and walk.gateways.ids("fa3") == set()
    assert walk.gateways.errors == []
