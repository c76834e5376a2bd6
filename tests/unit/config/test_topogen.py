"""controller.topogen: a compact ``generate`` spec expands to a topology config.py accepts;
the same spec gives the same topology; errors name the file and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.cli import main
from controller.config import ConfigError, check_config, load_topology, parse_topology
from controller.topogen import cell_graph, expand, template_of

ROOT = Path(__file__).resolve().parents[3]


def doc(**generate: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"cells": "4x4", "domains": 2, "mns": 100, "seed": 1}
    spec.update(generate)
    return {"name": "g", "generate": spec}


def test_grid_4x4_100_mns_validates() -> None:
    topo = parse_topology(doc(), "g.yaml")
    fas = [g for g in topo.gateways.values() if g.kind == "foreign_agent"]
    assert len(fas) == 16 and len(topo.mobile_nodes) == 100
    access = [s for s in topo.switches.values() if s.role == "access"]
    assert len(access) == 16 and all(topo.access_switch_of(f.name) for f in fas)
    # two foreign domains with an AAAF each, eight cells each, a home domain with the HA
    assert len(topo.foreign_agents_of("dom1")) == 8 == len(topo.foreign_agents_of("dom2"))
    assert topo.domains["dom1"].aaa is not None and topo.domains["dom2"].aaa is not None
    assert topo.home_domain().name == "home"
    assert [g.name for g in topo.gateways.values() if g.kind == "cn_gateway"] == ["cngw1"]
    # every MN has a profile; every MN's port is free on every access switch
    assert set(topo.vpn_profiles) == {m.nai for m in topo.mobile_nodes.values()}
    ports = [m.attach_port for m in topo.mobile_nodes.values()]
    assert len(set(ports)) == 100 and 1 not in ports


def test_same_spec_same_topology_other_seed_other_draw() -> None:
    assert expand(doc()) == expand(doc())
    a, b = expand(doc(seed=1)), expand(doc(seed=2))
    attach = [m["attach"]["switch"] for m in a["mobile_nodes"].values()]
    assert attach != [m["attach"]["switch"] for m in b["mobile_nodes"].values()]
    assert a["mobile_nodes"]["mn1"]["mn_aaa_key"] != b["mobile_nodes"]["mn1"]["mn_aaa_key"]
    assert (a["mobile_nodes"]["mn1"]["mn_aaa_key"]
            != a["mobile_nodes"]["mn1"]["mn_ha_key"])


def test_templates_are_drawn_by_weight() -> None:
    d = doc(mns=400, templates={"basic": {"weight": 3},
                                "gold": {"weight": 1, "qos": {"rate_kbps": 5000, "dscp": 46},
                                         "smooth_handoff": True, "mn_ha": False,
                                         "lifetime": 120}})
    topo = parse_topology(d, "g.yaml")
    drawn = template_of(d)
    gold = [mn for mn, t in drawn.items() if t == "gold"]
    assert 60 < len(gold) < 140        # ~100 of 400
    for mn in gold:
        conf = topo.mobile_nodes[mn]
        prof = topo.vpn_profiles[conf.nai]
        assert prof.qos.rate_kbps == 5000 and prof.smooth_handoff
        assert conf.mn_ha_spi == 0 and conf.lifetime == 120
    basic = next(mn for mn, t in drawn.items() if t == "basic")
    assert topo.vpn_profiles[topo.mobile_nodes[basic].nai].qos.rate_kbps == 0
    assert topo.mobile_nodes[basic].mn_ha_spi != 0


def test_round_robin_placement_and_explicit_graph() -> None:
    d = doc(cells={"count": 3, "edges": [[0, 1], [1, 2]]}, domains=1, mns=6,
            placement="round_robin")
    topo = parse_topology(d, "g.yaml")
    assert [m.attach_switch for m in topo.mobile_nodes.values()] == \
        ["acc1", "acc2", "acc3"] * 2
    g = cell_graph(d["generate"])
    assert sorted(g.edges) == [("acc1", "acc2"), ("acc2", "acc3")]


def test_cell_graph_of_a_grid() -> None:
    g = cell_graph({"cells": "3x3", "mns": 1, "domains": 3})
    assert g.number_of_nodes() == 9 and g.number_of_edges() == 12
    assert set(g.neighbors("acc5")) == {"acc2", "acc4", "acc6", "acc8"}
    assert g.nodes["acc1"]["pos"] == (0.0, 0.0) and g.nodes["acc6"]["pos"] == (2.0, 1.0)
    assert [g.nodes[f"acc{k}"]["domain"] for k in (1, 4, 7)] == ["dom1", "dom2", "dom3"]


def test_explicit_sections_merge_over_generated() -> None:
    d = doc(mns=2)
    d["vpn_profiles"] = {"user1@home.example": {
        "destinations": [{"prefix": "10.30.0.0/24", "gateway": "cngw1"}],
        "qos": {"rate_kbps": 42, "dscp": 0}}}
    d["user_allowance"] = {"dscp": [0, 46]}
    topo = parse_topology(d, "g.yaml")
    assert topo.vpn_profiles["user1@home.example"].qos.rate_kbps == 42
    assert topo.vpn_profiles["user2@home.example"].qos.rate_kbps == 0
    assert topo.user_allowance is not None


@pytest.mark.parametrize("change, where", [
    ({"cells": "4by4"}, "generate.cells: '4by4' is not ROWSxCOLS"),
    ({"cells": "20x20"}, "generate.cells: '20x20' must have 1..240 cells"),
    ({"cells": {"count": 3, "edges": [[0, 1]]}}, "generate.cells.edges: the cell graph "
                                                 "is not connected"),
    ({"cells": {"count": 3, "edges": [[0, 5]]}}, "generate.cells.edges[0]"),
    ({"domains": 17}, "generate.domains: 17 domains for 16 cells"),
    ({"mns": "many"}, "generate.mns: expected an integer"),
    ({"colour": "red"}, "generate.colour: unknown key"),
    ({"placement": "near"}, "generate.placement: 'near' is not one of"),
    ({"templates": {"t": {"wieght": 2}}}, "generate.templates.t.wieght: unknown key"),
    ({"templates": {"t": {"qos": {"rate_kbps": -1}}}},
     "vpn_profiles.user1@home.example.qos.rate_kbps"),
])
def test_errors_name_file_and_key(change: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_topology(doc(**change), "exp.yaml")
    assert str(err.value).startswith("exp.yaml: ") and where in str(err.value)


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match=r"^g.yaml: generate.mns: missing required key"):
        parse_topology({"name": "g", "generate": {"cells": "2x2"}}, "g.yaml")


def test_check_config_accepts_the_shipped_generated_topologies(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for name in ("grid-4x4.yaml", "grid-2x2.yaml"):
        path = ROOT / "topology" / name
        assert check_config(path) == []
        assert main(["check-config", str(path)]) == 0
        assert f"{path}: OK" in capsys.readouterr().out
    assert len(load_topology(ROOT / "topology" / "grid-4x4.yaml").mobile_nodes) == 100
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\ngenerate: {cells: 2x2, mns: 1, domains: 9}\n")
    assert main(["check-config", str(bad)]) == 1
    assert f"{bad}: generate.domains: 9 domains for 4 cells" in capsys.readouterr().err
