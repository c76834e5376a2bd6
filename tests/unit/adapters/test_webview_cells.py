"""The web view's cells (issue 16: the MNs moving between cells live): the layout the
page draws (a generated grid as generated, else a row per foreign domain) and the JSON
of ``/v1/view`` following a mobile node from cell to cell in a walk over the real roles.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from controller.adapters.webview import (cell_layout, generate_spec_of, install_web_view,
                                         snapshot)
from controller.config import load_topology
from controller.core.actions import Mark
from controller.core.handover import HandoverLog
from controller.testing.walk import DEFAULT_TOPOLOGY, TWO_DOMAINS, MobileNode, Walk

from tests.unit.rest_fakes import OPERATOR, make_auth

ROOT = Path(__file__).resolve().parents[3]
GRID_2X2 = ROOT / "topology" / "grid-2x2.yaml"
GRID_4X4 = ROOT / "topology" / "grid-4x4.yaml"


def positions(layout: dict[str, Any]) -> dict[str, tuple[float, float]]:
    return {c["switch"]: (c["x"], c["y"]) for c in layout["cells"]}


def test_a_generated_grid_is_drawn_as_generated() -> None:
    topo = load_topology(GRID_4X4)
    layout = cell_layout(topo, generate_spec_of(topo.source))
    pos = positions(layout)
    assert [c["switch"] for c in layout["cells"]] == [f"acc{k}" for k in range(1, 17)]
    assert pos["acc1"] == (0.0, 0.0) and pos["acc4"] == (3.0, 0.0)
    assert pos["acc5"] == (0.0, 1.0) and pos["acc16"] == (3.0, 3.0)
    assert len(layout["cell_edges"]) == 2 * 4 * 3                     # grid neighbours
    assert ["acc1", "acc2"] in layout["cell_edges"] and ["acc1", "acc5"] in layout["cell_edges"]
    assert ["acc4", "acc5"] not in layout["cell_edges"]
    fa = {c["switch"]: (c["foreign_agent"], c["domain"]) for c in layout["cells"]}
    assert fa["acc1"] == ("fa1", "dom1") and fa["acc16"][0] == "fa16"


def test_without_a_generate_spec_one_row_per_foreign_domain(tmp_path: Path) -> None:
    two = load_topology(TWO_DOMAINS)
    assert generate_spec_of(two.source) is None
    layout = cell_layout(two, generate_spec_of(two.source))
    domains = {c["switch"]: c["domain"] for c in layout["cells"]}
    rows = {c["switch"]: c["y"] for c in layout["cells"]}
    assert set(domains) == {"acc1", "acc2", "acc3"} and layout["cell_edges"] == []
    assert (rows["acc1"] == rows["acc2"]) == (domains["acc1"] == domains["acc2"])
    assert rows["acc3"] != rows["acc1"] or domains["acc3"] == domains["acc1"]
    # a spec that does not name the topology's cells (or a file gone) falls back too
    grid = load_topology(GRID_2X2)
    assert positions(cell_layout(grid, {"cells": "3x3", "mns": 1})) == positions(
        cell_layout(grid))
    assert generate_spec_of(str(tmp_path / "gone.yaml")) is None
    assert positions(cell_layout(load_topology(DEFAULT_TOPOLOGY))) == {
        "acc1": (0.0, 0.0), "acc2": (1.0, 0.0)}


class WalkRuntime:
    """What the view reads of a runtime, over a walk: its topology and roles, and a
    handover log fed with the walk's timing marks (as the runtime's executor does)."""

    def __init__(self, walk: Walk) -> None:
        self.walk = walk
        self.topo = walk.topo
        self.roles = walk.roles
        self.tunnel_log: dict[Any, dict[str, Any]] = {}
        self.datapaths: set[int] = set()
        self.handovers = HandoverLog()
        self._seen = 0

    def catch_up(self) -> None:
        for _role, item in self.walk.log[self._seen:]:
            if isinstance(item, Mark):
                self.handovers.mark(item.nai, item.phase, self.walk.now, item.extra)
        self._seen = len(self.walk.log)


def cells_of(view: dict[str, Any]) -> dict[str, str | None]:
    return {m["name"]: m["cell"] for m in view["mobile_nodes"]}


def test_the_view_follows_a_mobile_node_from_cell_to_cell() -> None:
    topo = load_topology(GRID_2X2)
    walk = Walk(topo)
    rt = WalkRuntime(walk)
    layout = cell_layout(topo, generate_spec_of(topo.source))
    app = FastAPI()
    install_web_view(app, rt, make_auth().operator)
    client = TestClient(app)
    op = {"Authorization": f"Bearer {OPERATOR}"}
    assert client.get("/v1/view").status_code == 401                  # read-only, token

    before = client.get("/v1/view", headers=op).json()
    assert before["cells"] == layout["cells"] and before["cell_edges"] == layout["cell_edges"]
    assert set(cells_of(before).values()) == {None}                    # nobody registered

    mn = MobileNode(walk, "mn1")
    assert topo.mobile_nodes["mn1"].attach_switch == "acc4"
    assert mn.register("fa4").code == 0
    rt.catch_up()
    at_home = client.get("/v1/view", headers=op).json()
    assert cells_of(at_home)["mn1"] == "acc4" and cells_of(at_home)["mn2"] is None
    mn1 = next(m for m in at_home["mobile_nodes"] if m["name"] == "mn1")
    assert (mn1["foreign_agent"], mn1["registered"]) == ("fa4", True)

    walk.now += 5
    assert mn.register("fa3", previous_fa="fa4").code == 0            # same domain
    walk.now += 5
    assert mn.register("fa1", previous_fa="fa3").code == 0            # to the other domain
    rt.catch_up()
    after = client.get("/v1/view", headers=op).json()
    assert cells_of(after)["mn1"] == "acc1"
    # across domains the new FA knows the old one by its care-of address only
    assert [(h["from"], h["to"], h["accepted"]) for h in after["handovers"]] == [
        ("", "fa4", True), ("fa4", "fa3", True), (topo.gateways["fa3"].core.ip, "fa1", True)]
    assert [h["kind"] for h in after["handovers"]] == [
        "registration", "intra-domain", "inter-domain"]
    assert after == snapshot(rt, layout)                          # the stream's events too


def test_the_view_of_the_walk_without_the_app() -> None:
    walk = Walk()
    rt = WalkRuntime(walk)
    view = snapshot(SimpleNamespace(topo=rt.topo, roles=rt.roles, tunnel_log={},
                                    datapaths=set(), handovers=rt.handovers))
    assert [c["switch"] for c in view["cells"]] == ["acc1", "acc2"]
    assert cells_of(view) == {"mn1": None}
