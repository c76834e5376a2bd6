"""The cross-role dispatch (``controller.core.dispatch``) as the walk harness uses it:
the same one the runtime's executor uses, so the unit tests cover QoS (claims 8, 9)
and the cleanup after a move between domains."""

from __future__ import annotations

import yaml

from controller.config import parse_topology
from controller.core import flows
from controller.core.actions import SendFlows, VisitorMoved
from controller.core.dispatch import Dispatch, kind_of, name_of
from controller.core.vpn import QosSpec
from tests.unit.harness import TWO_DOMAINS, MobileNode, Walk

LIMIT = QosSpec(rate_kbps=5000, dscp=46)
NAI = "alice@home.example"


def _with_qos(qos: QosSpec) -> Walk:
    data = yaml.safe_load(TWO_DOMAINS.read_text(encoding="utf-8"))
    data["vpn_profiles"][NAI]["qos"] = {"rate_kbps": qos.rate_kbps, "dscp": qos.dscp}
    return Walk(parse_topology(data, str(TWO_DOMAINS)))


def test_walk_installs_the_visitors_meters() -> None:
    """Claims 8, 9: a registration walked through the harness installs the MN's
    meters and metered steering on its FA's switch (the FA plans its QoS)."""
    walk = _with_qos(LIMIT)
    mn = MobileNode(walk, "mn1")
    pos = walk.mark()
    assert mn.register("fa1").accepted
    sent = [m for role, a in walk.of_type(SendFlows, pos) if role == "fa:fa1"
            for m in a.mods]
    fa = walk.fa("fa1")
    assert [m for m in sent if isinstance(m, flows.MeterMod)] == list(
        flows.mn_meters(mn.port, LIMIT))
    assert {m.flow.meter for m in sent if isinstance(m, flows.FlowMod) and m.op == "add"
            } == set(flows.mn_meter_ids(mn.port))
    assert tuple(fa.intended_flows()) == flows.qos_flow_mods(mn.mac, mn.port,
                                                             fa.conf.fa_port, LIMIT)
    assert set(walk.meters[fa.conf.access_dpid]) == set(flows.mn_meter_ids(mn.port))


def test_walk_without_qos_installs_plain_steering() -> None:
    walk = _with_qos(QosSpec())
    mn = MobileNode(walk, "mn1")
    pos = walk.mark()
    assert mn.register("fa1").accepted
    sent = [m for _r, a in walk.of_type(SendFlows, pos) for m in a.mods]
    assert not any(isinstance(m, flows.MeterMod) for m in sent)
    fa = walk.fa("fa1")
    assert tuple(fa.intended_flows()) == flows.install_mn(mn.mac, mn.port, fa.conf.fa_port)


def test_move_between_domains_makes_the_old_fa_drop_its_visitor() -> None:
    """fa1 (domain A) cannot be named by fa3 (domain B) as a peer: no
    NotifyVisitorLeft; the dispatch's cleanup after the FA's VisitorMoved drops the
    visitor, its tunnel end and its steering at fa1."""
    walk = Walk(parse_topology(yaml.safe_load(TWO_DOMAINS.read_text(encoding="utf-8")),
                               str(TWO_DOMAINS)))
    mn = MobileNode(walk, "mn1")
    assert mn.register("fa1").accepted
    assert NAI in walk.fa("fa1").visitors
    old_tunnels = walk.gateways.ids("fa1")
    assert old_tunnels
    walk.now += 5
    pos = walk.mark()
    assert mn.register("fa3").accepted
    assert NAI in walk.fa("fa3").visitors
    assert NAI not in walk.fa("fa1").visitors
    assert walk.fa("fa1").intended_flows() == []
    removed = {tid for op, gw, tid in walk.gateways.history if op == "remove" and gw == "fa1"}
    assert removed and removed <= old_tunnels
    assert any(role == "fa:fa1" and any(m == flows.remove_mn(mn.mac)[0] for m in a.mods)
               for role, a in walk.of_type(SendFlows, pos))


def test_left_elsewhere_spares_the_new_fa_and_fas_without_the_mn() -> None:
    walk = Walk(parse_topology(yaml.safe_load(TWO_DOMAINS.read_text(encoding="utf-8")),
                               str(TWO_DOMAINS)))
    assert MobileNode(walk, "mn1").register("fa1").accepted
    d = Dispatch(walk.roles)
    assert d.left_elsewhere(walk.now, VisitorMoved(NAI, "fa1")) == []
    follow = d.left_elsewhere(walk.now, VisitorMoved(NAI, "fa3"))
    assert [key for key, _a in follow] == ["fa:fa1"]
    assert d.registered_elsewhere("fa:fa3", NAI)
    assert not d.registered_elsewhere("fa:fa1", NAI)


def test_gateways_owned_and_tunnels_wanted() -> None:
    walk = Walk(parse_topology(yaml.safe_load(TWO_DOMAINS.read_text(encoding="utf-8")),
                               str(TWO_DOMAINS)))
    d = walk.dispatch
    static = walk.aaah.static_tunnels()
    assert {"ha", "fa1", "fa2", "fa3"} <= d.owned_gateways(static)
    assert d.tunnels_wanted("fa1", static) == {}
    assert MobileNode(walk, "mn1").register("fa1").accepted
    wanted = d.tunnels_wanted("fa1", static)
    assert set(wanted) == walk.gateways.ids("fa1")
    assert kind_of("fa:fa1") == "fa" and name_of("fa:fa1") == "fa1"
    assert kind_of("ha") == "ha" and name_of("ha") == ""
