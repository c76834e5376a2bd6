"""QoS planning (claims 8, 9): the MN's meters and DSCP at its access switch, their
OpenFlow messages, and the gateway-side tc/nftables plan (no root, no kernel)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.adapters import openflow
from controller.adapters.qos import (GatewayQos, U32Key, dscp_rewrite, htb_burst_bytes,
                                     nft_dscp_rule, selector_pairs, u32_keys)
from controller.core import flows
from controller.core.flows import ETH_IPV4, FlowMod, MeterMod
from controller.core.vpn import QosSpec, TunnelEnd, TunnelSpec, VpnInfo
from tests.unit.fakeoftable import FakeOFTable

MN = "02:00:00:00:01:00"
OTHER = "02:00:00:00:02:00"
MN_PORT, FA_PORT = 2, 1
LIMIT = QosSpec(rate_kbps=5000, dscp=46)


def flow_mods(mods: tuple[flows.Mod, ...]) -> list[FlowMod]:
    return [m for m in mods if isinstance(m, FlowMod)]


def meters(mods: tuple[flows.Mod, ...]) -> list[MeterMod]:
    return [m for m in mods if isinstance(m, MeterMod)]


def table(mods: tuple[flows.Mod, ...]) -> FakeOFTable:
    t = FakeOFTable()
    t.apply(flow_mods(mods))
    return t


# ------------------------------------------------------------------ switch side (core)


def test_no_qos_is_exactly_install_mn() -> None:
    assert flows.qos_flow_mods(MN, MN_PORT, FA_PORT, QosSpec()) == \
        flows.install_mn(MN, MN_PORT, FA_PORT)


def test_rate_limit_meters_both_directions_by_port() -> None:
    mods = flows.qos_flow_mods(MN, MN_PORT, FA_PORT, QosSpec(rate_kbps=5000))
    up, down = flows.mn_meter_ids(MN_PORT)
    assert (up, down) == (4, 5)
    assert meters(mods) == [MeterMod("delete", 4), MeterMod("delete", 5),
                            MeterMod("add", 4, 5000, 2000), MeterMod("add", 5, 5000, 2000)]
    t = table(mods)
    # forwarding is what install_mn gives, each direction through its meter
    assert t.lookup(MN_PORT, MN, "02:00:00:00:21:01", ETH_IPV4) == [FA_PORT]
    assert t.lookup(FA_PORT, "02:00:00:00:21:01", MN, ETH_IPV4) == [MN_PORT]
    assert t.winner(in_port=MN_PORT, eth_src=MN, eth_dst="x", eth_type=ETH_IPV4).meter == up
    assert t.winner(in_port=FA_PORT, eth_src="x", eth_dst=MN).meter == down
    # the MN's flows keep its cookie: remove_mn still removes everything
    t.apply(flows.remove_mn(MN))
    assert len(t) == 0


def test_dscp_marks_only_the_ipv4_uplink() -> None:
    t = table(flows.qos_flow_mods(MN, MN_PORT, FA_PORT, LIMIT))
    ip_up = t.winner(in_port=MN_PORT, eth_src=MN, eth_dst="x", eth_type=ETH_IPV4)
    assert ip_up.actions == (("set_dscp", 46), ("output", FA_PORT))
    assert ip_up.meter == 4 and ip_up.priority == flows.PRIO_MN_IP
    arp_up = t.winner(in_port=MN_PORT, eth_src=MN, eth_dst="x", eth_type=0x0806)
    assert arp_up.actions == (("output", FA_PORT),) and arp_up.meter == 4
    down = t.winner(in_port=FA_PORT, eth_src="x", eth_dst=MN, eth_type=ETH_IPV4)
    assert down.actions == (("output", MN_PORT),)


def test_dscp_without_rate_adds_no_meter() -> None:
    mods = flows.qos_flow_mods(MN, MN_PORT, FA_PORT, QosSpec(dscp=10))
    assert meters(mods) == []
    assert all(m.flow.meter == 0 for m in flow_mods(mods))
    assert any(("set_dscp", 10) in m.flow.actions for m in flow_mods(mods))


@pytest.mark.parametrize("rate,burst", [(100, 1000), (5000, 2000), (100_000, 40_000)])
def test_meter_burst_holds_a_tso_segment(rate: int, burst: int) -> None:
    assert flows.meter_burst_kbit(rate) == burst
    assert burst * 1000 // 8 >= 64 * 1024


def test_meter_ids_unique_per_port_and_within_ovs_limit() -> None:
    ids = [i for port in range(1, 0xFF00) for i in flows.mn_meter_ids(port)]
    assert len(set(ids)) == len(ids)
    assert min(ids) >= 1 and max(ids) < 262_144


def test_with_mn_qos_rewrites_an_fa_installation() -> None:
    mods = flows.install_mn(MN, MN_PORT, FA_PORT) + flows.install_mn(OTHER, 3, FA_PORT)
    out = flows.with_mn_qos(mods, {MN: LIMIT})
    assert sorted(map(repr, out)) == sorted(map(repr, flows.qos_flow_mods(
        MN, MN_PORT, FA_PORT, LIMIT) + flows.install_mn(OTHER, 3, FA_PORT)))
    t = table(out)
    assert t.lookup(3, OTHER, "x", ETH_IPV4) == [FA_PORT]
    assert t.winner(in_port=3, eth_src=OTHER, eth_dst="x").meter == 0


def test_with_mn_qos_identity_cases() -> None:
    install = flows.install_mn(MN, MN_PORT, FA_PORT)
    assert flows.with_mn_qos(install, {}) == install
    assert flows.with_mn_qos(install, {MN: QosSpec()}) == install
    assert flows.with_mn_qos(install, {OTHER: LIMIT}) == install
    removal = flows.remove_mn(MN)          # leaving: meters stay, no flow refers to them
    assert flows.with_mn_qos(removal, {MN: LIMIT}) == removal
    planned = flows.qos_flow_mods(MN, MN_PORT, FA_PORT, LIMIT)   # already planned by the FA
    assert flows.with_mn_qos(planned, {MN: LIMIT}) == planned


@dataclass
class _Visitor:
    mn_mac: str
    vpn_info: VpnInfo


def _info(qos: QosSpec) -> VpnInfo:
    t = TunnelSpec("alice/ha-fa1", TunnelEnd("ha", "10.0.0.1", ("10.30.0.0/24",)),
                   TunnelEnd("fa1", "10.0.0.11", ("10.10.0.100/32",)), psk=b"k", qos=qos)
    static = TunnelSpec("static/ha-cngw", TunnelEnd("ha", "10.0.0.1", ("10.10.0.0/24",)),
                        TunnelEnd("cngw", "10.0.0.31", ("10.30.0.0/24",)), psk=b"")
    return VpnInfo("alice@home.example", "10.10.0.100", "ha", "fa1", (static, t))


def test_visitors_qos_reads_the_profile_from_the_fa_tunnels() -> None:
    visitors = [_Visitor(MN.upper(), _info(LIMIT)), _Visitor(OTHER, _info(QosSpec()))]
    assert flows.visitors_qos(visitors, "fa1") == {MN: LIMIT}
    assert flows.mn_qos(_info(LIMIT), "ha") == LIMIT
    assert flows.mn_qos(_info(LIMIT), "cngw") == QosSpec()


# ------------------------------------------------------------------ OpenFlow messages


class _Dp:
    ofproto = ofp
    ofproto_parser = parser
    id = 0x401


def test_messages_ordered_flow_deletes_meters_then_flow_adds() -> None:
    msgs = openflow.flow_mod_msgs(_Dp(), flows.qos_flow_mods(MN, MN_PORT, FA_PORT, LIMIT))
    kinds = [(type(m).__name__, m.command) for m in msgs]
    assert kinds == [("OFPFlowMod", ofp.OFPFC_DELETE),
                     ("OFPMeterMod", ofp.OFPMC_DELETE), ("OFPMeterMod", ofp.OFPMC_DELETE),
                     ("OFPMeterMod", ofp.OFPMC_ADD), ("OFPMeterMod", ofp.OFPMC_ADD),
                     ("OFPFlowMod", ofp.OFPFC_ADD), ("OFPFlowMod", ofp.OFPFC_ADD),
                     ("OFPFlowMod", ofp.OFPFC_ADD)]
    add = msgs[3]
    assert add.meter_id == 4
    assert add.flags == ofp.OFPMF_KBPS | ofp.OFPMF_BURST | ofp.OFPMF_STATS
    (band,) = add.bands
    assert isinstance(band, parser.OFPMeterBandDrop)
    assert (band.rate, band.burst_size) == (5000, 2000)
    ip_up = next(m for m in msgs[5:] if m.priority == flows.PRIO_MN_IP)
    meter_inst, apply_inst = ip_up.instructions
    assert isinstance(meter_inst, parser.OFPInstructionMeter) and meter_inst.meter_id == 4
    set_field, output = apply_inst.actions
    assert (set_field.key, set_field.value) == ("ip_dscp", 46)
    assert output.port == FA_PORT
    for m in msgs:           # every message encodes
        m.datapath = _Dp()
        m.serialize()


# ------------------------------------------------------------------ gateway side (plan)


def test_selector_pairs_and_u32_keys() -> None:
    pairs = selector_pairs(("10.10.0.100/32",), ("10.30.0.0/24", "10.31.0.0/16", "::/0"))
    assert [(str(s), str(d)) for s, d in pairs] == [("10.10.0.100/32", "10.30.0.0/24"),
                                                   ("10.10.0.100/32", "10.31.0.0/16")]
    src, dst = pairs[0]
    assert u32_keys(src, dst) == [U32Key(0x0A0A0064, 0xFFFFFFFF, 12),
                                  U32Key(0x0A1E0000, 0xFFFFFF00, 16)]
    assert u32_keys(src, dst)[1].as_pyroute2() == "0x0a1e0000/0xffffff00+16"
    anywhere = ipaddress.IPv4Network("0.0.0.0/0")
    assert u32_keys(anywhere, anywhere) == [U32Key(0, 0, 0)]


def test_dscp_rewrite_keeps_ecn_and_header() -> None:
    mask, xor = dscp_rewrite(46)
    first16 = bytes([0x45, 0x02])                      # version/IHL, ECN=ECT(0)
    out = bytes((b & m) ^ x for b, m, x in zip(first16, mask, xor))
    assert out == bytes([0x45, 0xBA])                  # EF, ECN kept
    with pytest.raises(ValueError):
        dscp_rewrite(64)


def test_nft_rule_matches_selectors_then_rewrites_with_checksum() -> None:
    src, dst = selector_pairs(("10.30.0.0/24",), ("10.10.0.100/32",))[0]
    exprs = nft_dscp_rule(src, dst, 46)
    names = [dict(e["attrs"])["NFTA_EXPR_NAME"] for e in exprs]
    assert names == ["payload", "bitwise", "cmp"] * 2 + ["payload", "bitwise", "payload"]
    write = dict(dict(exprs[-1]["attrs"])["NFTA_EXPR_DATA"]["attrs"])
    assert (write["NFTA_PAYLOAD_OFFSET"], write["NFTA_PAYLOAD_LEN"]) == (0, 2)
    assert (write["NFTA_PAYLOAD_CSUM_TYPE"], write["NFTA_PAYLOAD_CSUM_OFFSET"]) == (1, 10)
    cmp_src = dict(dict(exprs[2]["attrs"])["NFTA_EXPR_DATA"]["attrs"])
    assert cmp_src["NFTA_CMP_DATA"]["attrs"][0][1] == bytes([10, 30, 0, 0])


def test_htb_burst() -> None:
    assert htb_burst_bytes(5000) == 16_000
    assert htb_burst_bytes(100_000) == 125_000


def test_gateway_without_namespace_is_a_no_op(tmp_path) -> None:  # type: ignore[no-untyped-def]
    qos = GatewayQos("fa1", tmp_path / "fa1" / "charon.vici")
    side = _info(LIMIT).tunnels[1].side_for("fa1")
    qos.apply(side)
    qos.remove(side.tunnel_id)
    assert qos.applied() == {}
    qos.close()


# ------------------------------------------------------------------ runtime wiring


def test_fa_plans_the_visitors_meters_and_the_runtime_sends_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """QoS (claims 8, 9) is planned by the FA (its steering carries the visitor's
    meters and DSCP: ``intended_flows``); the runtime sends flow actions as they are.
    (It used to add the meters itself, reaching into the FA's visitors.)"""
    import asyncio

    from controller.config import load_topology
    from controller.core.actions import SendFlows
    from controller.core.visitors import Visitor
    from controller.runtime import Runtime
    from tests.unit.harness import DEFAULT_TOPOLOGY

    sent: list[tuple[int, tuple[flows.Mod, ...]]] = []
    rt = Runtime(load_topology(DEFAULT_TOPOLOGY), tmp_path, ":memory:", rest=None,
                 gateway_factory=lambda name: object(), advertise=False, persist=False,
                 flow_sink=lambda dpid, mods: sent.append((dpid, mods)))
    assert rt.gateway_qos == {}          # fake gateways: no tc
    fa = rt.fa("fa1")
    fa.visitors["alice@home.example"] = Visitor(
        "alice@home.example", "10.10.0.100", "10.0.0.1", MN, MN_PORT, _info(LIMIT),
        1800, 1e9)
    planned = tuple(fa.intended_flows())
    assert planned == flows.with_mn_qos(flows.install_mn(MN, MN_PORT, fa.conf.fa_port),
                                        {MN: LIMIT})
    assert planned == flows.qos_flow_mods(MN, MN_PORT, fa.conf.fa_port, LIMIT)
    asyncio.run(rt.execute("fa:fa1", [SendFlows(0x401, planned)]))
    asyncio.run(rt.execute("fa:fa1", [SendFlows(0x401, flows.remove_mn(MN))]))
    assert sent == [(0x401, planned), (0x401, flows.remove_mn(MN))]
