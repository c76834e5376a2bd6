"""mininet_scripts/scenario.py without root: the scenario schema (the `iperf` step, the
QoS checks and the rate/DSCP expectations of scenario `qos`, claims 8 and 9), the
verdicts on measured rates, and the parsers that read meters and tc classes.

Every error names the file and the key, as the runner's other errors do.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mininet_scripts.iperf import (classes_for, parse_htb_rates, parse_meters,
                                   parse_u32_filters)
from mininet_scripts.scenario import (ScenarioError, ScenarioRun, list_scenarios,
                                      load_scenario, resolve, scenario_topology)

BASE: dict[str, Any] = {
    "name": "t",
    "topology": "topology/two-domains.yaml",
    "timeline": [
        {"iperf": {"name": "alice-up", "mn": "mn1", "cn": "cn1", "direction": "up"}},
        {"iperf": {"name": "alice-down", "mn": "mn1", "cn": "cn1", "direction": "down",
                   "seconds": 3, "offer_kbit": 20000, "length": 1200}},
        {"iperf": {"name": "carol-tcp", "mn": "mn3", "cn": "cn1", "direction": "up",
                   "protocol": "tcp"}},
        {"check": {"qos_path": {"mn1": 5000}, "qos_gone": {"mn1": ["fa1"]}, "within": 2}},
    ],
    "expect": {"rate_within": {"alice-up": {"kbit": 5000, "tolerance": 0.1},
                               "alice-down": {"kbit": 5000}},
               "rate_at_least": {"carol-tcp": 15000},
               "dscp": {"alice-up": 46}},
}


def _load(tmp_path: Path, spec: dict[str, Any]) -> dict[str, Any]:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_scenario(path)


def _error(tmp_path: Path, spec: dict[str, Any]) -> str:
    with pytest.raises(ScenarioError) as exc:
        _load(tmp_path, spec)
    msg = str(exc.value)
    assert msg.startswith(str(tmp_path / "s.yaml") + ": "), msg
    return msg


def _with(path: str, value: Any, delete: bool = False) -> dict[str, Any]:
    """BASE with one key (dotted path, list indices as numbers) set or deleted."""
    spec = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node: Any = spec
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if delete:
        del node[last]
    else:
        node[last] = value
    return spec


def test_every_shipped_scenario_loads_and_qos_is_one() -> None:
    names = [n for n, _ in list_scenarios()]
    assert "qos" in names
    for name in names:
        assert load_scenario(resolve(name))["name"] == name


def test_the_qos_scenario_measures_what_the_issue_asks() -> None:
    spec = load_scenario(resolve("qos"))
    steps = [s["iperf"] for s in spec["timeline"] if "iperf" in s]
    assert {s["direction"] for s in steps} == {"up", "down"}
    within = spec["expect"]["rate_within"]
    assert within and all(b["tolerance"] <= 0.10 for b in within.values())
    assert {b["kbit"] for b in within.values()} == {5000, 2000}   # two different limits
    assert spec["expect"]["rate_at_least"]                         # and one without
    moved = [s for s in spec["timeline"] if "move" in s]
    assert moved and any(n.startswith("alice-moved") for n in within)


def test_a_valid_spec_loads(tmp_path: Path) -> None:
    assert _load(tmp_path, BASE)["name"] == "t"


@pytest.mark.parametrize("path, value, words", [
    ("timeline.0.iperf.direction", "sideways", ["timeline[0].iperf.direction",
                                                "'sideways'", "up (MN -> CN)"]),
    ("timeline.0.iperf.seconds", 0, ["timeline[0].iperf.seconds", "1-60"]),
    ("timeline.0.iperf.seconds", "5", ["timeline[0].iperf.seconds"]),
    ("timeline.0.iperf.protocol", "sctp", ["timeline[0].iperf.protocol", "udp or tcp"]),
    ("timeline.0.iperf.offer_kbit", -5, ["timeline[0].iperf.offer_kbit"]),
    ("timeline.0.iperf.offer_kbit", 1.5, ["timeline[0].iperf.offer_kbit"]),
    ("timeline.0.iperf.length", 9000, ["timeline[0].iperf.length", "64-1400"]),
    ("timeline.0.iperf.name", "", ["timeline[0].iperf.name"]),
    ("timeline.0.iperf.rate", 5, ["timeline[0].iperf", "unknown keys ['rate']"]),
    ("timeline.0.iperf", "mn1", ["timeline[0].iperf", "a mapping"]),
    ("timeline.2.iperf.offer_kbit", 100, ["timeline[2].iperf", "UDP only"]),
    ("timeline.1.iperf.name", "alice-up", ["timeline[1].iperf.name", "used twice"]),
    ("timeline.3.check.qos_path", {"mn1": 0}, ["timeline[3].check.qos_path"]),
    ("timeline.3.check.qos_path", ["mn1"], ["timeline[3].check.qos_path"]),
    ("timeline.3.check.qos_gone", {"mn1": "fa1"}, ["timeline[3].check.qos_gone"]),
    ("timeline.3.check.meters", {}, ["timeline[3].check", "unknown keys ['meters']"]),
    ("expect.rate_within.alice-up.tolerance", 10, ["expect.rate_within.alice-up.tolerance",
                                                   "between 0 and 1"]),
    ("expect.rate_within.alice-up.kbit", "5M", ["expect.rate_within.alice-up.kbit"]),
    ("expect.rate_within.alice-up", 5000, ["expect.rate_within.alice-up",
                                           "{kbit: K, tolerance: T}"]),
    ("expect.rate_within.bob-up", {"kbit": 2000}, ["expect.rate_within.bob-up",
                                                   "no iperf step named 'bob-up'",
                                                   "alice-down, alice-up, carol-tcp"]),
    ("expect.rate_at_least.carol-tcp", -1, ["expect.rate_at_least.carol-tcp"]),
    ("expect.rate_at_least.nobody", 1, ["expect.rate_at_least.nobody", "no iperf step"]),
    ("expect.dscp.alice-up", 64, ["expect.dscp.alice-up", "0-63"]),
    ("expect.dscp.alice-up", True, ["expect.dscp.alice-up"]),
    ("expect.rate_limit", {}, ["expect", "unknown keys ['rate_limit']"]),
    ("expect.lost_less", ["mn1"], ["expect.lost_less", "[mnA, mnB]"]),
    ("expect.lost_less", ["mn1", "mn2", "down"], ["expect.lost_less", "cn_to_mn"]),
    ("expect.report_lost", "mn1", ["expect.report_lost"]),
])
def test_bad_values_name_the_key(tmp_path: Path, path: str, value: Any,
                                 words: list[str]) -> None:
    msg = _error(tmp_path, _with(path, value))
    for word in words:
        assert word in msg, msg


@pytest.mark.parametrize("key", ["name", "mn", "cn", "direction"])
def test_missing_iperf_keys_are_named(tmp_path: Path, key: str) -> None:
    msg = _error(tmp_path, _with(f"timeline.0.iperf.{key}", None, delete=True))
    assert f"timeline[0].iperf.{key}: missing" in msg


@pytest.mark.parametrize("path, value, words", [
    ("timeline.0.iperf.mn", "mn9", ["timeline[0].iperf.mn", "no mobile node 'mn9'"]),
    ("timeline.0.iperf.cn", "cn9", ["timeline[0].iperf.cn", "no host 'cn9'", "['cn1', 'cn2']"]),
    ("timeline.3.check.qos_path", {"mn9": 1000}, ["check.qos_path", "'mn9'"]),
    ("timeline.3.check.qos_gone", {"mn1": ["fa9"]}, ["check.qos_gone.mn1",
                                                      "no gateway 'fa9'"]),
])
def test_names_the_topology_lacks_are_named(tmp_path: Path, path: str, value: Any,
                                            words: list[str]) -> None:
    spec = _load(tmp_path, _with(path, value))
    with pytest.raises(ScenarioError) as exc:
        scenario_topology(spec, tmp_path)
    for word in words:
        assert word in str(exc.value), exc.value


def _verdicts(rates: dict[str, dict[str, Any]], expect: dict[str, Any]) -> list[str]:
    run = ScenarioRun.__new__(ScenarioRun)      # no network: only the verdicts
    run.spec = {"expect": expect}
    run.rates = rates
    run.failed = []
    run._expect({"moves": [], "probes": []})
    return run.failed


def test_rate_and_dscp_verdicts() -> None:
    rates = {"a": {"kbit": 4550.0, "dscp": {"46": 50}},
             "b": {"kbit": 5600.0, "dscp": {"46": 49, "0": 1}},
             "c": {"kbit": 16000.0, "dscp": {"46/bad-checksum": 50}},
             "d": {"error": "iperf3 failed"}}
    assert _verdicts(rates, {"rate_within": {"a": {"kbit": 5000, "tolerance": 0.1}},
                             "rate_at_least": {"c": 15000}, "dscp": {"a": 46}}) == []
    failed = _verdicts(rates, {
        "rate_within": {"a": {"kbit": 5000, "tolerance": 0.05}, "b": {"kbit": 5000},
                        "d": {"kbit": 5000}},
        "rate_at_least": {"a": 5000}, "dscp": {"b": 46, "c": 46}})
    assert failed == [
        "iperf a: 4550 kbit/s, not within 5% of 5000 kbit/s",
        "iperf b: 5600 kbit/s, not within 10% of 5000 kbit/s",   # default tolerance
        "iperf d: no rate measured",
        "iperf a: 4550 kbit/s, less than 5000 kbit/s",
        "iperf b: DS field of the packets received {'46': 49, '0': 1}, expected all 46 "
        "with valid checksums",
        "iperf c: DS field of the packets received {'46/bad-checksum': 50}, expected all "
        "46 with valid checksums"]


# ------------------------------------------------------------------ what the path holds

METERS = """OFPST_METER_CONFIG reply (OF1.3) (xid=0x2):
meter=4 kbps burst stats bands=
type=drop rate=5000 burst_size=2000
meter=5 kbps burst stats bands=
type=drop rate=5000 burst_size=2000
meter=7 pktps stats bands=
type=drop rate=100
"""

CLASSES = """class htb 1:11 root leaf 11: prio 0 rate 2Mbit ceil 2Mbit burst 16Kb cburst 16Kb
class htb 1:10 root leaf 10: prio 0 rate 5Mbit ceil 5Mbit burst 16Kb cburst 16Kb
class htb 1:12 root prio 0 rate 1500Kbit ceil 1500Kbit burst 1599b cburst 1599b
"""

FILTERS = """filter parent 1: protocol ip pref 16 u32 chain 0
filter parent 1: protocol ip pref 16 u32 chain 0 fh 800: ht divisor 1
filter parent 1: protocol ip pref 16 u32 chain 0 fh 800::800 order 2048 key ht 800 bkt 0 *flowid 1:10 not_in_hw
  match 0a0a0064/ffffffff at 12
  match 0a1e0000/ffffff00 at 16
filter parent 1: protocol ip pref 17 u32 chain 0
filter parent 1: protocol ip pref 17 u32 chain 0 fh 801: ht divisor 1
filter parent 1: protocol ip pref 17 u32 chain 0 fh 801::800 order 2048 key ht 801 bkt 0 *flowid 1:11 not_in_hw
  match 0a1e0000/ffffff00 at 12
  match 0a0a0065/ffffffff at 16
"""


def test_parsers_read_meters_classes_and_filters() -> None:
    assert parse_meters(METERS) == {4: 5000, 5: 5000}          # pktps meters left out
    assert parse_htb_rates(CLASSES) == {"1:11": 2000.0, "1:10": 5000.0, "1:12": 1500.0}
    filters = parse_u32_filters(FILTERS)
    assert filters == [("1:10", [(0x0A0A0064, 0xFFFFFFFF, 12), (0x0A1E0000, 0xFFFFFF00, 16)]),
                       ("1:11", [(0x0A1E0000, 0xFFFFFF00, 12), (0x0A0A0065, 0xFFFFFFFF, 16)])]
    assert classes_for(filters, "10.10.0.100") == {"1:10"}    # source: uplink at an FA
    assert classes_for(filters, "10.10.0.101") == {"1:11"}    # destination: at the HA
    assert classes_for(filters, "10.30.0.1") == set()         # a prefix is not a host
    assert parse_meters("") == {} and parse_htb_rates("") == {} \
        and parse_u32_filters("") == []


@pytest.mark.parametrize("name", [n for n, _ in list_scenarios()])
def test_every_shipped_scenario_validates(name: str, tmp_path: Path) -> None:
    """Every file under scenarios/ passes the schema and names only topology nodes
    (catches a key one change adds to a scenario and another's validation refuses)."""
    spec = load_scenario(resolve(name))
    topo, _ = scenario_topology(spec, tmp_path)
    from mininet_scripts.scenario import check_names
    check_names(spec, topo)


def test_lost_less_may_name_a_direction(tmp_path: Path) -> None:
    for value in (["mn1", "mn2"], ["mn1", "mn2", "cn_to_mn"], ["mn1", "mn2", "mn_to_cn"]):
        assert _load(tmp_path, _with("expect.lost_less", value))["expect"]["lost_less"] == value


@pytest.mark.parametrize("value", [
    100, {"mn_to_cn": 100, "cn_to_mn": 200}, {"cn_to_mn": 5},
    {"mn1": 100, "mn2": {"cn_to_mn": 10}}])
def test_per_move_bounds_load(tmp_path: Path, value: Any) -> None:
    spec = _load(tmp_path, _with("expect.move_max_lost", value))
    assert spec["expect"]["move_max_lost"] == value
    scenario_topology(spec, tmp_path)         # the MNs it names exist


@pytest.mark.parametrize("value, words", [
    (-1, ["expect.move_max_gap_ms", "a number >= 0"]),
    ("100", ["expect.move_max_gap_ms"]),
    ({"mn_to_cn": "x"}, ["expect.move_max_gap_ms.mn_to_cn"]),
    ({"mn1": {"down": 5}}, ["expect.move_max_gap_ms.mn1", "mn_to_cn"]),
    ({}, ["expect.move_max_gap_ms", "empty"]),
])
def test_bad_per_move_bounds_name_the_key(tmp_path: Path, value: Any,
                                          words: list[str]) -> None:
    msg = _error(tmp_path, _with("expect.move_max_gap_ms", value))
    for word in words:
        assert word in msg, msg


def test_per_move_bound_naming_an_unknown_mn(tmp_path: Path) -> None:
    spec = _load(tmp_path, _with("expect.move_max_gap_ms", {"mn9": 100}))
    with pytest.raises(ScenarioError) as exc:
        scenario_topology(spec, tmp_path)
    assert "expect.move_max_gap_ms" in str(exc.value) and "'mn9'" in str(exc.value)
