"""controller.config: the default topology loads; every class of error names file and key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from controller.config import (
    ConfigError,
    Topology,
    check_config,
    load_topology,
    parse_topology,
)

ROOT = Path(__file__).resolve().parents[3]
DEFAULT = ROOT / "topology" / "default.yaml"
SOURCE = "topology/test.yaml"


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT.read_text())


def test_default_loads() -> None:
    topo = load_topology(DEFAULT)
    assert isinstance(topo, Topology)
    assert topo.source == str(DEFAULT)
    assert set(topo.switches) == {"core1", "core2", "home", "corp", "acc1", "acc2"}
    assert topo.switches["acc1"].dpid == 0x401
    assert topo.switches["acc1"].foreign_agent == "fa1"
    fa1 = topo.gateways["fa1"]
    assert fa1.core.ip == "10.0.0.11" and fa1.core.prefixlen == 24
    assert fa1.core.cidr == "10.0.0.11/24" and fa1.core.network == "10.0.0.0/24"
    assert (fa1.inside.switch, fa1.inside.port) == ("acc1", 1)
    assert topo.gateways["cngw"].gateway_type == "static"
    assert topo.hosts["cn1"].gateway == "10.30.0.1"
    assert topo.links[0].a_switch == "core1" and topo.links[0].b_port == 1
    mn = topo.mobile_nodes["mn1"]
    assert mn.mn_aaa_key == bytes.fromhex("00112233445566778899aabbccddeeff")
    assert "mn_aaa_key" not in repr(mn) and "0011" not in repr(mn)
    assert (mn.attach_switch, mn.attach_port) == ("acc1", 2)
    assert topo.domains["home"].aaa is not None
    assert topo.domains["home"].aaa.listen_port == 3868
    assert topo.domains["home"].home_agent is not None
    assert topo.domains["home"].home_agent.mip_listen_port == 4341
    prof = topo.vpn_profiles["alice@home.example"]
    assert prof.destinations[0].gateway == "cngw"
    assert prof.security.esp == "aes128gcm16-ecp256"   # with PFS
    # helpers
    assert [g.name for g in topo.foreign_agents_of("domain-a")] == ["fa1", "fa2"]
    assert topo.access_switch_of("fa2").name == "acc2"
    assert topo.domain_of_gateway("fa1").realm == "a.example"
    assert topo.home_domain().name == "home"
    assert check_config(DEFAULT) == []


def test_frozen() -> None:
    topo = load_topology(DEFAULT)
    with pytest.raises(AttributeError):
        topo.name = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        topo.gateways["fa1"].core.ip = "1.2.3.4"  # type: ignore[misc]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for p in parents:
            d = d[p]
        d[last] = value
    return mutate


def _del(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for p in parents:
            d = d[p]
        del d[last]
    return mutate


# (id, mutation, expected key path in the message, expected reason fragment)
CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("unknown-top", _set("colour", "blue"), "colour", "unknown key"),
    ("unknown-nested", _set("gateways.fa1.core.vlan", 3), "gateways.fa1.core.vlan", "unknown key"),
    ("missing-top", _del("switches"), "switches", "missing required key"),
    ("missing-nested", _del("gateways.fa1.core.mac"), "gateways.fa1.core.mac", "missing"),
    ("type-dpid", _set("switches.core1.dpid", "0x101"), "switches.core1.dpid", "integer"),
    ("type-bool-port", _set("hosts.cn1.port", True), "hosts.cn1.port", "integer"),
    ("type-mapping", _set("gateways.fa1", [1, 2]), "gateways.fa1", "mapping"),
    ("bad-role", _set("switches.core1.role", "edge"), "switches.core1.role", "not one of"),
    ("bad-iface-ip", _set("gateways.fa1.core.ip", "10.0.0.300/24"), "gateways.fa1.core.ip",
     "'10.0.0.300/24' is not an IPv4 interface"),
    ("iface-no-prefix", _set("gateways.fa1.core.ip", "10.0.0.3"), "gateways.fa1.core.ip",
     "not an IPv4 interface"),
    ("bad-mac", _set("gateways.ha.core.mac", "02:00:00:00:00"), "gateways.ha.core.mac",
     "not a MAC"),
    ("mac-as-int", _set("hosts.cn1.mac", 7200), "hosts.cn1.mac", "quote MACs"),
    ("bad-cidr", _set("domains.corp.prefixes", ["10.30.0.1/24"]), "domains.corp.prefixes[0]",
     "not an IPv4 network"),
    ("bad-gw-ip", _set("hosts.cn1.gateway", "10.30.0.256"), "hosts.cn1.gateway",
     "not an IPv4 address"),
    ("gw-off-subnet", _set("hosts.cn1.gateway", "10.31.0.1"), "hosts.cn1.gateway", "not in"),
    ("bad-listen", _set("domains.home.aaa.listen", "127.0.0.1"), "domains.home.aaa.listen",
     "host:port"),
    ("dup-dpid", _set("switches.core2.dpid", 0x101), "switches.core2.dpid", "already used"),
    ("dup-port", _set("gateways.fa2.core.port", 11), "gateways.fa2.core.switch",
     "core2:11 is already used"),
    ("dup-port-link", _set("links", [["core1:10", "core2:1"]]), "links[0][0]",
     "core1:10 is already used"),
    ("undef-switch", _set("hosts.cn1.switch", "nowhere"), "hosts.cn1.switch",
     "'nowhere' is not defined"),
    ("undef-link-switch", _set("links", [["core1:1", "core9:1"]]), "links[0][1]",
     "'core9' is not defined"),
    ("bad-link-end", _set("links", [["core1-1", "core2:1"]]), "links[0][0]", "switch:port"),
    ("undef-domain", _set("gateways.ha.domain", "mars"), "gateways.ha.domain",
     "'mars' is not defined"),
    ("undef-ha", _set("mobile_nodes.mn1.home_agent", "ha9"), "mobile_nodes.mn1.home_agent",
     "'ha9' is not defined"),
    ("ha-wrong-kind", _set("mobile_nodes.mn1.home_agent", "fa1"), "mobile_nodes.mn1.home_agent",
     "not a home_agent"),
    ("hoa-outside", _set("mobile_nodes.mn1.home_address", "10.99.0.1"),
     "mobile_nodes.mn1.home_address", "not in the home prefixes"),
    ("attach-not-access", _set("mobile_nodes.mn1.attach.switch", "home"),
     "mobile_nodes.mn1.attach.switch", "not an access switch"),
    ("access-fa-undef", _set("switches.acc1.foreign_agent", "fa9"),
     "switches.acc1.foreign_agent", "'fa9' is not defined"),
    ("access-fa-wrong-kind", _set("switches.acc1.foreign_agent", "ha"),
     "switches.acc1.foreign_agent", "not a foreign_agent"),
    ("access-no-fa", _del("switches.acc1.foreign_agent"), "switches.acc1.foreign_agent",
     "missing"),
    ("fa-on-core", _set("switches.core1.foreign_agent", "fa1"), "switches.core1.foreign_agent",
     "only an access switch"),
    ("gateway-type-not-cngw", _set("gateways.ha.gateway_type", "dynamic"),
     "gateways.ha.gateway_type", "only a cn_gateway"),
    ("bad-gateway-type", _set("gateways.cngw.gateway_type", "sometimes"),
     "gateways.cngw.gateway_type", "not one of"),
    ("profile-gw-not-cngw", _set("vpn_profiles.alice@home\\.example", None), "", ""),
    ("key-short", _set("mobile_nodes.mn1.mn_aaa_key", "0011"), "mobile_nodes.mn1.mn_aaa_key",
     "16 bytes"),
    ("key-not-hex", _set("mobile_nodes.mn1.mn_aaa_key", "zz" * 16),
     "mobile_nodes.mn1.mn_aaa_key", "16 bytes"),
    ("dscp-range", _set("vpn_profiles.alice@home\\.example", None), "", ""),
    ("gw-name-long", _set("gateways.fa1", None), "", ""),
]


def _profile(d: dict[str, Any]) -> dict[str, Any]:
    return d["vpn_profiles"]["alice@home.example"]


def _special(case_id: str, d: dict[str, Any]) -> tuple[str, str]:
    """Mutations whose key contains dots (NAIs) or that rename things."""
    if case_id == "profile-gw-not-cngw":
        _profile(d)["destinations"][0]["gateway"] = "fa1"
        return "vpn_profiles.alice@home.example.destinations[0].gateway", "not a cn_gateway"
    if case_id == "dscp-range":
        _profile(d)["qos"]["dscp"] = 64
        return "vpn_profiles.alice@home.example.qos.dscp", "out of range"
    if case_id == "gw-name-long":
        d["gateways"]["averyverylongname"] = d["gateways"].pop("cngw")
        _profile(d)["destinations"][0]["gateway"] = "averyverylongname"
        return "gateways.averyverylongname", "longer than"
    raise AssertionError(case_id)


@pytest.mark.parametrize(("case_id", "mutate", "key", "reason"), CASES,
                         ids=[c[0] for c in CASES])
def test_errors_name_file_and_key(base: dict[str, Any], case_id: str,
                                  mutate: Callable[[dict[str, Any]], None],
                                  key: str, reason: str) -> None:
    data = copy.deepcopy(base)
    if key == "":
        key, reason = _special(case_id, data)
    else:
        mutate(data)
    with pytest.raises(ConfigError) as info:
        parse_topology(data, SOURCE)
    msg = str(info.value)
    assert msg.startswith(f"{SOURCE}: {key}: "), msg
    assert reason in msg, msg


def test_bad_iface_message_exact(base: dict[str, Any]) -> None:
    data = copy.deepcopy(base)
    data["gateways"]["fa1"]["core"]["ip"] = "10.0.0.300/24"
    with pytest.raises(ConfigError, match=r"^topology/default\.yaml: gateways\.fa1\.core\.ip: "
                                          r"'10\.0\.0\.300/24' is not an IPv4 interface"):
        parse_topology(data, "topology/default.yaml")


def test_key_value_never_in_message(base: dict[str, Any]) -> None:
    data = copy.deepcopy(base)
    data["mobile_nodes"]["mn1"]["mn_aaa_key"] = "secretsecretsecret"
    with pytest.raises(ConfigError) as info:
        parse_topology(data, SOURCE)
    assert "secret" not in str(info.value)


def test_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match=rf"^{SOURCE}: expected a mapping"):
        parse_topology(["x"], SOURCE)


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nswitches:\n  core1: {dpid: 1, role: core\n")
    with pytest.raises(ConfigError) as info:
        load_topology(bad)
    msg = str(info.value)
    assert msg.startswith(f"{bad}: line ") and "YAML syntax error" in msg
    assert check_config(bad) == [msg]


def test_yaml_duplicate_key_rejected(tmp_path: Path) -> None:
    text = DEFAULT.read_text().replace("  core2: {dpid: 0x102", "  core1: {dpid: 0x102")
    dup = tmp_path / "dup.yaml"
    dup.write_text(text)
    with pytest.raises(ConfigError, match=r"line \d+.*duplicate key 'core1'"):
        load_topology(dup)


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=rf"^{missing}: cannot read"):
        load_topology(missing)


def test_optional_sections(base: dict[str, Any]) -> None:
    data = copy.deepcopy(base)
    for key in ("hosts", "links", "mobile_nodes", "vpn_profiles"):
        del data[key]
    topo = parse_topology(data, SOURCE)
    assert topo.hosts == {} and topo.links == () and topo.mobile_nodes == {}


def test_dynamic_cn_gateway(base: dict[str, Any]) -> None:
    data = copy.deepcopy(base)
    data["gateways"]["cngw"]["gateway_type"] = "dynamic"
    assert parse_topology(data, SOURCE).gateways["cngw"].gateway_type == "dynamic"


@pytest.mark.parametrize("prefix", ["0.0.0.0/0", "10.30.0.0/16", "10.31.0.0/24"])
def test_profile_prefix_beyond_its_gateway_is_an_error(base: dict[str, Any],
                                                       prefix: str) -> None:
    """Issue 11: the HA refuses VPN information whose correspondent selectors reach
    beyond the networks behind the gateway (129 at every registration); the loader
    says so at once, naming the key."""
    data = copy.deepcopy(base)
    data["vpn_profiles"]["alice@home.example"]["destinations"] = [
        {"prefix": prefix, "gateway": "cngw"}]
    with pytest.raises(ConfigError) as info:
        parse_topology(data, SOURCE)
    assert str(info.value).startswith(
        f"{SOURCE}: vpn_profiles.alice@home.example.destinations[0].prefix: "), info.value
    assert "not within the networks behind 'cngw'" in str(info.value)
