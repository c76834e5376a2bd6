"""The demo's comparison (mininet_scripts/demo_compare.py): the demo's user has seamless
handover and smooth handoff on, a plain-path MN cloned from it has both off, and the output says per move and
in total what the option gained against the plain path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.config import parse_topology
from controller.proto.nai import is_valid
from mininet_scripts.demo_compare import (CompareError, compare, comparison_lines,
                                          move_ports, summary, with_plain_baseline)

ROOT = Path(__file__).resolve().parents[3]
KEY_A, KEY_H = "ab" * 16, "cd" * 16


def _default() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "topology" / "default.yaml").read_text())


@pytest.mark.parametrize("name", ["default.yaml", "two-domains.yaml"])
def test_baseline_is_a_valid_topology_with_the_option_only_on_the_user(name: str) -> None:
    data = yaml.safe_load((ROOT / "topology" / name).read_text())
    out, user, plain = with_plain_baseline(data, KEY_A, KEY_H)
    topo = parse_topology(out, f"demo {name}")   # the loader's checks: ports, addresses
    assert user == "mn1" and plain in topo.mobile_nodes
    u, p = topo.mobile_nodes[user], topo.mobile_nodes[plain]
    assert topo.vpn_profiles[u.nai].smooth_handoff is True
    assert topo.vpn_profiles[p.nai].smooth_handoff is False
    assert topo.vpn_profiles[u.nai].seamless_handover is True
    assert topo.vpn_profiles[p.nai].seamless_handover is False
    # same path: same access switch, same destinations and security; its own identity
    assert p.attach_switch == u.attach_switch and p.attach_port != u.attach_port
    assert topo.vpn_profiles[p.nai].destinations == topo.vpn_profiles[u.nai].destinations
    assert p.home_address != u.home_address and p.mac != u.mac
    assert p.mn_aaa_key.hex() == KEY_A and p.mn_ha_key.hex() == KEY_H
    assert is_valid(p.nai, need_realm=True)
    # the input is not changed (the file's profile stays as written)
    assert data["vpn_profiles"]["alice@home.example"].get("smooth_handoff") is not True
    assert data["vpn_profiles"]["alice@home.example"].get("seamless_handover") is not True


def test_baseline_port_is_free_on_the_move_target_too() -> None:
    data = _default()
    data["gateways"]["fa2"]["inside"]["port"] = 3          # acc2 port 3 taken
    out, _, plain = with_plain_baseline(data, KEY_A, KEY_H)
    assert out["mobile_nodes"][plain]["attach"] == {"switch": "acc1", "port": 4}
    parse_topology(out, "demo")


def test_baseline_refuses_a_user_without_a_profile() -> None:
    data = _default()
    data["vpn_profiles"] = {}
    with pytest.raises(CompareError, match="no VPN profile"):
        with_plain_baseline(data, KEY_A, KEY_H)


def _side(gaps: list[tuple[float, float]], lost: list[tuple[int, int]],
          whole: tuple[int, int]) -> dict[str, Any]:
    moves = [{"from": f, "to": t,
              "gap_ms": {"cn_to_mn": g[0], "mn_to_cn": g[1]},
              "lost": {"cn_to_mn": n[0], "mn_to_cn": n[1]}}
             for (f, t), g, n in zip([("fa1", "fa2"), ("fa2", "fa1")], gaps, lost)]
    return {"moves": moves, "probe": {"cn_to_mn": {"sent": 9000, "lost": whole[0]},
                                      "mn_to_cn": {"sent": 9000, "lost": whole[1]}}}


OPTION = _side([(2.0, 150.5), (3.0, 120.0)], [(0, 30), (0, 25)], (1, 60))
PLAIN = _side([(45.5, 140.0), (50.0, 130.0)], [(44, 28), (40, 20)], (90, 50))


def test_compare_per_move_and_total() -> None:
    cmp = compare(OPTION, PLAIN)
    first = cmp["moves"][0]
    assert (first["from"], first["to"]) == ("fa1", "fa2")
    assert first["lost"]["cn_to_mn"] == {"option": 0, "plain": 44, "difference": -44}
    assert first["gap_ms"]["cn_to_mn"] == {"option": 2.0, "plain": 45.5, "difference": -43.5}
    assert cmp["total"]["lost"]["cn_to_mn"] == {"option": 0, "plain": 84, "difference": -84}
    assert cmp["total"]["lost"]["mn_to_cn"] == {"option": 55, "plain": 48, "difference": 7}
    assert cmp["total"]["gap_ms"]["mn_to_cn"]["difference"] == pytest.approx(0.5)
    assert cmp["whole_run_lost"]["cn_to_mn"] == {"option": 1, "plain": 90, "difference": -89}


def test_summary_says_what_the_option_gained_in_each_direction() -> None:
    line = summary(compare(OPTION, PLAIN))
    assert line == ("seamless + smooth handoff: downlink gap 2.5 vs 47.8 ms per move "
                    "(45.2 ms shorter), 0 lost vs 84 on the plain path (84 packets fewer); "
                    "uplink gap 135.2 vs 135.0 ms per move (0.2 ms longer), 55 lost vs 48 "
                    "on the plain path (7 packets more)")


def test_one_line_per_mobile_node_with_gap_and_lost_each_way() -> None:
    from mininet_scripts.demo_compare import mn_lines
    option, plain = mn_lines(compare(OPTION, PLAIN), "mn1", "plain")
    assert option == ("mn1 (seamless + smooth handoff): gap per move downlink 2.5 ms, "
                      "uplink 135.2 ms; lost downlink 0, uplink 55 (2 moves)")
    assert plain == ("plain (plain path): gap per move downlink 47.8 ms, uplink 135.0 ms; "
                     "lost downlink 84, uplink 48 (2 moves)")


def test_comparison_lines_carry_every_move_and_the_total() -> None:
    lines = comparison_lines(compare(OPTION, PLAIN), "mn1", "plain")
    text = "\n".join(lines)
    assert "move 1: fa1 -> fa2" in text and "move 2: fa2 -> fa1" in text
    assert "all 2 moves" in text
    row = next(ln for ln in lines if "lost downlink" in ln)      # move 1's row
    assert row.split()[-3:] == ["0", "44", "-44"]
    row = [ln for ln in lines if "lost uplink" in ln][-1]        # the total's row
    assert row.split()[-3:] == ["55", "48", "+7"]
    assert "whole run, lost: downlink 1 vs 90, uplink 60 vs 50" in text
    assert lines[-3].startswith("mn1 (seamless + smooth handoff): gap per move")
    assert lines[-2].startswith("plain (plain path): gap per move")
    assert lines[-1].startswith("seamless + smooth handoff: downlink gap 2.5 vs 47.8 ms")


def test_demo_topology_file_is_private_and_loads(tmp_path: Path) -> None:
    from controller.config import load_topology
    from mininet_scripts.demo import demo_topology
    topo, path, plain, ports = demo_topology(str(ROOT / "topology" / "default.yaml"),
                                             tmp_path)
    assert ports == {"mn1": 2, plain: topo.mobile_nodes[plain].attach_port}
    assert (Path(path).stat().st_mode & 0o777) == 0o600    # it holds the MNs' keys
    again = load_topology(path)
    assert plain in again.mobile_nodes and list(again.mobile_nodes)[0] == "mn1"
    assert again.vpn_profiles["alice@home.example"].smooth_handoff is True
    assert again.vpn_profiles["alice@home.example"].seamless_handover is True
    assert topo.mobile_nodes[plain].nai == "alice.plain@home.example"


def test_print_results_shows_the_comparison(capsys: pytest.CaptureFixture[str]) -> None:
    from mininet_scripts.demo import print_results
    moves = [{**m, "kind": "intra-domain", "phases_ms": {"signalling_total": 9.0}}
             for m in OPTION["moves"]]
    res = {"registration_ms": 12.0, "moves": moves, "mn": "mn1",
           "probe": {"rate_pps": 1000, **OPTION["probe"]},
           "baseline": {"mn": "plain", **PLAIN}, "comparison": compare(OPTION, PLAIN)}
    print_results(res)
    out = capsys.readouterr().out
    assert "mn1, seamless handover and smooth handoff on:" in out
    assert ("seamless + smooth handoff (mn1) against the plain path (plain), same moves:"
            in out)
    assert out.rstrip().endswith("55 lost vs 48 on the plain path (7 packets more)")


def test_move_ports_avoid_a_port_taken_on_the_target() -> None:
    # two-domains.yaml: mn3 sits on acc2's port 2, mn1's attach port
    data = yaml.safe_load((ROOT / "topology" / "two-domains.yaml").read_text())
    out, user, plain = with_plain_baseline(data, KEY_A, KEY_H)
    ports = move_ports(out, [user, plain])
    taken = {2} | {int(m["attach"]["port"]) for m in out["mobile_nodes"].values()
                   if m["attach"]["switch"] == "acc2"}
    assert ports[plain] == out["mobile_nodes"][plain]["attach"]["port"]
    assert ports[user] not in taken and ports[user] != ports[plain]
    assert move_ports(_default_with_plain(), ["mn1", "plain"]) == {"mn1": 2, "plain": 3}


def _default_with_plain() -> dict[str, Any]:
    return with_plain_baseline(_default(), KEY_A, KEY_H)[0]
