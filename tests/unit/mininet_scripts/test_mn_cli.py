"""mininet_scripts/mn_cli.py and mn_custom.py without a terminal or root: the `move`
line parser, the extra commands run from a script over a fake session, and the
Mininet topology `mn --custom mininet_scripts/mn_custom.py --topo mipvpn` builds."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from controller.config import load_topology
from mininet_scripts.mn_cli import MipvpnCLI, MoveError, MoveTarget, parse_move

ROOT = Path(__file__).resolve().parents[3]
TOPO = load_topology(ROOT / "topology" / "default.yaml")
AT_FA1 = {"mn1": ("acc1", 2)}


def test_parse_move_by_fa_or_switch() -> None:
    assert parse_move("mn1 fa2", TOPO, AT_FA1) == MoveTarget("mn1", "fa2", "acc2")
    assert parse_move("  mn1   acc2 ", TOPO, AT_FA1) == MoveTarget("mn1", "fa2", "acc2")


@pytest.mark.parametrize("line, message", [
    ("", "usage: move MN FA   (e.g. `move mn1 fa2`)"),
    ("mn1", "usage: move MN FA"),
    ("mn1 fa2 now", "usage: move MN FA"),
    ("cn1 fa2", "'cn1' is not a mobile node (mobile nodes: mn1)"),
    ("mn1 fa9", "'fa9' is not a foreign agent (foreign agents: fa1, fa2)"),
    ("mn1 core1", "'core1' is not a foreign agent"),
    ("mn1 fa1", "mn1 is already attached to fa1 (acc1)"),
])
def test_parse_move_errors_say_what_to_type(line: str, message: str) -> None:
    with pytest.raises(MoveError) as exc:
        parse_move(line, TOPO, AT_FA1)
    assert message in str(exc.value)


class FakeSession:
    topo = TOPO

    def __init__(self) -> None:
        self.moves: list[MoveTarget] = []
        self.where = dict(AT_FA1)

    def location(self) -> dict[str, tuple[str, int]]:
        return dict(self.where)

    def move(self, target: MoveTarget) -> str:
        self.moves.append(target)
        self.where[target.mn] = (target.switch, 2)
        if target.foreign_agent == "fa1":
            raise RuntimeError("timed out waiting for mn1's re-registration via fa1")
        return f"{target.mn} moved to {target.foreign_agent}"

    def bindings_text(self) -> str:
        return "NAI  FA\nalice@home.example  " + self.where["mn1"][0]

    def handovers_text(self) -> str:
        raise OSError("connection refused")


def run_script(tmp_path: Path, lines: list[str]) -> tuple[FakeSession, str]:
    script = tmp_path / "cmds.txt"
    script.write_text("\n".join(lines) + "\n")
    session, out = FakeSession(), io.StringIO()
    with open(os.devnull) as stdin:
        MipvpnCLI(object(), session, stdin=stdin, script=str(script), stdout=out)
    return session, out.getvalue()


def test_cli_commands_from_a_script(tmp_path: Path) -> None:
    session, out = run_script(tmp_path, [
        "bindings", "move mn1 fa2", "move mn1 fa2", "bindings", "move mn1 fa1",
        "move mn1", "handovers", "move mn1 fa2  # comments are allowed"])
    assert session.moves == [MoveTarget("mn1", "fa2", "acc2"), MoveTarget("mn1", "fa1", "acc1"),
                             MoveTarget("mn1", "fa2", "acc2")]
    lines = out.splitlines()
    assert lines == [
        "NAI  FA", "alice@home.example  acc1",
        "mn1 moved to fa2",
        "*** mn1 is already attached to fa2 (acc2)",
        "NAI  FA", "alice@home.example  acc2",
        "*** move failed: timed out waiting for mn1's re-registration via fa1",
        "*** usage: move MN FA   (e.g. `move mn1 fa2`)",
        "*** cannot read the handovers: connection refused",
        "mn1 moved to fa2"]


def test_cli_completion_and_help(tmp_path: Path) -> None:
    out = io.StringIO()
    with open(os.devnull) as stdin:
        cli = MipvpnCLI(object(), FakeSession(), stdin=stdin, script=os.devnull, stdout=out)
    assert cli.complete_move("m", "move m", 5, 6) == ["mn1"]
    assert cli.complete_move("", "move mn1 ", 9, 9) == ["fa1", "fa2"]
    assert cli.complete_move("fa", "move mn1 fa", 9, 11) == ["fa1", "fa2"]
    cli.onecmd("help move")
    assert "Usage: move MN FA" in out.getvalue()


def test_mn_custom_builds_the_yaml_topology() -> None:
    from mininet_scripts import mn_custom
    topo = mn_custom.topos["mipvpn"](run_dir="/tmp/mipvpn-test", charon=0, mn_client="0")
    assert sorted(topo.switches()) == sorted(TOPO.switches)
    for name, sw in TOPO.switches.items():
        info = topo.nodeInfo(name)
        assert int(info["dpid"], 16) == sw.dpid and info["protocols"] == "OpenFlow13"
    assert sorted(topo.hosts()) == sorted([*TOPO.gateways, *TOPO.hosts, *TOPO.mobile_nodes])
    ha = topo.nodeInfo("ha")
    assert ha["cls"] is mn_custom.GatewayHost and ha["privateDirs"] == ["/run"]
    assert ha["mipvpn_charon"] is False
    mn1 = topo.nodeInfo("mn1")
    assert mn1["cls"] is mn_custom.MobileNodeHost and mn1["mipvpn_mn_client"] is False
    assert str(mn1["mipvpn_run_dir"]) == "/tmp/mipvpn-test"
    ports: dict[tuple[str, str], Any] = {}
    for a, b, info in topo.links(withInfo=True):
        ports[(info["node1"], info["node2"])] = info
    core = ports[("ha", "core1")]
    assert core["port2"] == 10 and core["intfName1"] == "ha-core"
    assert core["params1"] == {"ip": "10.0.0.1/24"} and core["addr1"] == "02:00:00:00:00:01"
    assert ports[("mn1", "acc1")]["port2"] == 2
    trunk = ports[("core1", "core2")]
    assert (trunk["port1"], trunk["port2"]) == (1, 1)
    # what `mn` picks up from the file
    assert mn_custom.controllers["remote"].__name__ == "QuietRemoteController"
    assert mn_custom.CLI is mn_custom.MipvpnMnCLI and "mipvpn" in mn_custom.tests


def test_mn_custom_loads_the_way_mn_does() -> None:
    """`mn` exec()s the file without __file__ and without the repository on sys.path."""
    path = ROOT / "mininet_scripts" / "mn_custom.py"
    customs: dict[str, Any] = {}
    exec(compile(path.read_text(), str(path), "exec"), customs, customs)
    assert customs["REPO"] == ROOT
    assert set(customs["topos"]) == {"mipvpn"}
