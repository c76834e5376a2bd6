"""Claim 24: the user customises their VPN profile in the home AAA's database (the REST
API writes the same store) so that the destination is behind a gateway of the dynamic
type, and the MN sends a Registration Request with a service-update request (CVSE
vendor 32473 type 2).  The FA flags the AMR (Mipvpn-Service-Update); the AAAF never
answers such an AMR locally; the AAAH re-reads the profile and recomputes the VPN set
path; the binding survives; the HA-anchored path gives way to FA<->CN-GW."""

from __future__ import annotations

import pytest

from controller.core.aaa_home import Destination, VpnProfile
from controller.core.vpn import QosSpec, SecuritySpec
from controller.proto import mip
from tests.unit.harness import MobileNode, Walk, topology

NAI = "alice@home.example"
OWNER = "alice_home.example"
HA1, HA2 = f"{OWNER}/ha-fa1", f"{OWNER}/ha-fa2"
RO1, RO2 = f"{OWNER}/cngw2-fa1", f"{OWNER}/cngw2-fa2"
STATIC = "static/ha-cngw"


@pytest.fixture
def walk() -> Walk:
    return Walk(topology())          # alice: 10.30.0.0/24 via cngw (static)


@pytest.fixture
def mn(walk: Walk) -> MobileNode:
    node = MobileNode(walk)
    assert node.register("fa1").accepted
    assert walk.gateways.ids("fa1") == {HA1}
    return node


def customise(walk: Walk) -> None:
    """What PUT /v1/profiles/{nai} does (claim 24, first step)."""
    walk.store.put_profile(VpnProfile(NAI, (Destination("10.32.0.0/24", "cngw2"),),
                                      SecuritySpec("aes256-sha256-ecp256", "aes256gcm16"),
                                      QosSpec()), now=walk.now)


def test_service_update_switches_to_route_optimised(walk: Walk, mn: MobileNode) -> None:
    customise(walk)
    walk.now += 5
    pos = walk.mark()
    rrp = mn.register("fa1", service_update=True)
    assert rrp is not None and rrp.accepted
    assert walk.trace(pos) == [
        "mn -> fa:fa1 RRQ",
        "fa:fa1 -> aaaf:domain-a AMR",
        "aaaf:domain-a -> aaah AMR",
        "aaah -> ha HAR",
        f"ha RemoveTunnel ha {HA1}",
        "ha -> cngw:cngw2 BU",
        f"cngw:cngw2 AddTunnel cngw2 {RO1}",
        "cngw:cngw2 -> ha BAck 0",
        "ha -> aaah HAA",
        "aaah -> aaaf:domain-a AMA",
        "aaaf:domain-a -> fa:fa1 AMA",
        f"fa:fa1 RemoveTunnel fa1 {HA1}",
        "fa:fa1 SendFlows acc1",
        f"fa:fa1 AddTunnel fa1 {RO1} initiator",
        "fa:fa1 -> mn RRP 0",
    ]
    amrs = [d.msg for d in walk.diameter(pos) if d.name == "AMR"]
    assert [a.service_update for a in amrs] == [True, True]
    assert any(" Mark service_update" in p for p in walk.trace(pos, marks=True))
    assert walk.gateways.ids("ha") == {STATIC} and walk.gateways.ids("fa1") == {RO1}
    assert walk.gateways.tunnels["fa1"][RO1].security.esp == "aes256gcm16"
    assert walk.ha.bindings[NAI].care_of_address == "10.0.0.11"   # the binding survives
    assert walk.gateways.errors == []


def test_service_update_on_intra_domain_move_goes_home(walk: Walk, mn: MobileNode) -> None:
    customise(walk)
    walk.now += 2
    pos = walk.mark()
    rrp = mn.register("fa2", "fa1", service_update=True)
    assert rrp is not None and rrp.accepted
    trace = walk.trace(pos)
    assert trace[:4] == ["mn -> fa:fa2 RRQ", "fa:fa2 -> aaaf:domain-a AMR",
                         "aaaf:domain-a -> aaah AMR", "aaah -> ha HAR"]
    assert walk.aaaf().counters["local"] == 0
    assert walk.gateways.ids("fa2") == {RO2} and walk.gateways.ids("fa1") == set()
    assert walk.gateways.ids("cngw2") == {RO2} and walk.gateways.ids("ha") == {STATIC}


def test_without_service_update_the_move_keeps_the_old_path(walk: Walk,
                                                            mn: MobileNode) -> None:
    customise(walk)
    walk.now += 2
    pos = walk.mark()
    assert mn.register("fa2", "fa1").accepted
    assert "aaaf:domain-a -> aaah AMR" not in walk.trace(pos)   # answered locally
    assert walk.gateways.ids("fa2") == {HA2}


def test_switch_back_to_ha_anchored_deletes_at_the_cngw(walk: Walk, mn: MobileNode) -> None:
    customise(walk)
    walk.now += 5
    mn.register("fa1", service_update=True)
    walk.store.put_profile(VpnProfile(NAI, (Destination("10.30.0.0/24", "cngw"),),
                                      SecuritySpec(), QosSpec()), now=walk.now)
    walk.now += 5
    pos = walk.mark()
    assert mn.register("fa1", service_update=True).accepted
    trace = walk.trace(pos)
    assert trace[4:8] == [f"ha AddTunnel ha {HA1}", "ha -> cngw:cngw2 BU delete",
                          f"cngw:cngw2 RemoveTunnel cngw2 {RO1}", "cngw:cngw2 -> ha BAck 0"]
    assert walk.gateways.ids("fa1") == {HA1} and walk.gateways.ids("cngw2") == set()


def test_rrq_carries_the_service_update_cvse(walk: Walk, mn: MobileNode) -> None:
    msg = mip.decode(mn.rrq("fa1", service_update=True))
    ext = msg.vendor_extension(32473, mip.CVSE_SERVICE_UPDATE)
    assert isinstance(ext, mip.CriticalVendorExtension) and ext.data == b""
    assert mip.CVSE_SERVICE_UPDATE == 2
    assert [type(e) for e in msg.extensions] == [mip.NaiExtension,
                                                 mip.CriticalVendorExtension,
                                                 mip.MnHaAuth, mip.GeneralizedAuth,
                                                 mip.MnFaAuth]   # issue 11


def test_service_update_right_after_a_registration_is_not_held(walk: Walk,
                                                                mn: MobileNode) -> None:
    """The FA drops retransmissions of a registration in progress; a service-update
    request a second later is a new registration, not one of them."""
    customise(walk)
    walk.now += 1
    rrp = mn.register("fa1", service_update=True)
    assert rrp is not None and rrp.accepted
    assert walk.gateways.ids("fa1") == {RO1}
