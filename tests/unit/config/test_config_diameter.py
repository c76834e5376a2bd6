"""The topology's Diameter keys of issue 11 (``peer_addresses``, ``max_connections``,
``home_agent.tls``), the peer table built from them, the warnings of
``mipvpn check-config`` for listeners in clear, and OpenFlow over TLS options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controller import cli
from controller.config import ConfigError, config_warnings, load_topology, parse_topology
from controller.config.openflow import openflow_tls
from controller.config.schema import DEFAULT_MAX_CONNECTIONS
from controller.core import peers
from controller.launcher import openflow_options

from tests.unit.runtime.test_diameter_tls_links import pki, write_topology  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[3]


def default() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "topology" / "default.yaml").read_text())


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ------------------------------------------------------------------ schema


def test_peer_addresses_and_caps_parse() -> None:
    data = default()
    data["domains"]["domain-a"]["aaa"]["peer_addresses"] = ["192.0.2.7", "2001:db8::7"]
    data["domains"]["domain-a"]["aaa"]["max_connections"] = 8
    data["domains"]["home"]["home_agent"]["max_connections"] = 2
    data["gateways"]["fa1"]["peer_addresses"] = ["198.51.100.1"]
    topo = parse_topology(data, "t.yaml")
    assert topo.domains["domain-a"].aaa.peer_addresses == ("192.0.2.7", "2001:db8::7")
    assert topo.domains["domain-a"].aaa.max_connections == 8
    assert topo.domains["home"].aaa.max_connections == DEFAULT_MAX_CONNECTIONS == 64
    assert topo.domains["home"].home_agent.max_connections == 2
    assert topo.gateways["fa1"].peer_addresses == ("198.51.100.1",)
    table = peers.build_peer_table(topo)
    aaaf = table.peer("aaah", "AAAF.A.example.")           # case, trailing dot
    assert aaaf is not None and aaaf.addresses == {"192.0.2.7", "2001:db8::7"}
    assert aaaf.members == {"fa1", "fa2"}
    fa1 = table.peer("aaaf:domain-a", "fa1.a.example")
    assert fa1 is not None and fa1.addresses == {"198.51.100.1"}
    assert peers.admit(table, "aaaf:domain-a", "fa1.a.example", "a.example",
                       "198.51.100.1", False) is None
    assert peers.admit(table, "aaaf:domain-a", "fa2.a.example", "a.example",
                       "198.51.100.1", False) is not None   # fa1's address, not fa2's
    assert peers.admit(table, "aaaf:domain-a", "fa2.a.example", "a.example",
                       "::ffff:127.0.0.1", False) is None   # loopback, v4-mapped


def test_the_table_has_exactly_the_topologys_peers() -> None:
    topo = load_topology(ROOT / "topology" / "two-domains.yaml")
    table = peers.build_peer_table(topo)
    assert set(table.listeners["ha"]) == {topo.domains["home"].aaa.host}
    assert set(table.listeners["aaah"]) == {
        d.aaa.host for d in topo.domains.values() if d.aaa and not d.home_agent}
    for name, dom in topo.domains.items():
        if dom.aaa is None or dom.home_agent is not None:
            continue
        assert set(table.listeners[f"aaaf:{name}"]) == {
            f"{gw.name}.{dom.realm}" for gw in topo.foreign_agents_of(name)}
    # a specific listen address of a peer is one it may dial from
    data = default()
    data["domains"]["domain-a"]["aaa"]["listen"] = "10.9.0.5:3869"
    aaaf = peers.build_peer_table(parse_topology(data)).peer("aaah", "aaaf.a.example")
    assert aaaf is not None and aaaf.addresses == {"10.9.0.5"}


@pytest.mark.parametrize("edit, key, reason", [
    (lambda t: t["domains"]["domain-a"]["aaa"].update(peer_addresses=["10.0.0.300"]),
     "domains.domain-a.aaa.peer_addresses[0]", "not an IP address"),
    (lambda t: t["domains"]["domain-a"]["aaa"].update(peer_addresses=["0.0.0.0"]),
     "domains.domain-a.aaa.peer_addresses[0]", "wildcard"),
    (lambda t: t["domains"]["domain-a"]["aaa"].update(peer_addresses="10.0.0.1"),
     "domains.domain-a.aaa.peer_addresses", "expected a list"),
    (lambda t: t["gateways"]["ha"].update(peer_addresses=["10.0.0.1"]),
     "gateways.ha.peer_addresses", "only a foreign_agent"),
    (lambda t: t["domains"]["home"]["aaa"].update(max_connections=0),
     "domains.home.aaa.max_connections", "out of range"),
    (lambda t: t["domains"]["home"]["home_agent"].update(max_connections="many"),
     "domains.home.home_agent.max_connections", "expected an integer"),
])
def test_schema_errors_name_the_key(edit: Any, key: str, reason: str) -> None:
    data = default()
    edit(data)
    with pytest.raises(ConfigError) as err:
        parse_topology(data, "t.yaml")
    assert str(err.value).startswith(f"t.yaml: {key}: "), str(err.value)
    assert reason in str(err.value)


def test_home_agent_tls_needs_the_home_aaa_tls(tmp_path: Path, pki: Path) -> None:  # noqa: F811
    path = write_topology(tmp_path, pki)
    data = yaml.safe_load(path.read_text())
    for dom in ("home", "domain-a"):
        del data["domains"][dom]["aaa"]["tls"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError, match=r"domains.home.aaa.tls: missing: the home agent "
                                          r"listens over TLS"):
        load_topology(path)


# ------------------------------------------------------------------ warnings


def test_warnings_for_listeners_in_clear(tmp_path: Path, pki: Path,  # noqa: F811
                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = default()
    data["domains"]["home"]["aaa"]["listen"] = "0.0.0.0:3868"
    data["domains"]["home"]["home_agent"]["diameter_listen"] = "10.0.0.9:3870"
    path = write(tmp_path, data)
    found = config_warnings(path, ("0.0.0.0", 6653))
    assert len(found) == 3, found
    assert any("domains.home.aaa.listen: warning: Diameter on 0.0.0.0:3868" in w
               for w in found)
    assert any("domains.home.home_agent.diameter_listen: warning" in w for w in found)
    assert any("--of-listen: warning: OpenFlow on 0.0.0.0:6653" in w for w in found)
    assert not any("OpenFlow" in w for w in config_warnings(path, ("127.0.0.1", 6653)))
    assert len(config_warnings(path, ("0.0.0.0", 6653), openflow_tls=True)) == 2
    # the default topology (loopback only) has none
    assert config_warnings(ROOT / "topology" / "default.yaml", ("127.0.0.1", 6653)) == []
    # with TLS on every Diameter listener, none either
    (tmp_path / "tls").mkdir()
    tls_path = write_topology(tmp_path / "tls", pki)
    tdata = yaml.safe_load(tls_path.read_text())
    tdata["domains"]["home"]["aaa"]["listen"] = "0.0.0.0:3868"
    tdata["domains"]["home"]["home_agent"]["diameter_listen"] = "0.0.0.0:3870"
    tls_path.write_text(yaml.safe_dump(tdata, sort_keys=False))
    assert config_warnings(tls_path) == []
    # check-config prints them and still succeeds
    capsys.readouterr()
    assert cli.main(["check-config", str(path), "--of-listen", "0.0.0.0:6653"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("warning:") == 3, captured.err
    assert f"{path}: OK" in captured.out


def test_check_config_exit_status_with_warnings(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = default()
    data["domains"]["domain-a"]["aaa"]["listen"] = "0.0.0.0:3869"
    path = write(tmp_path, data)
    assert cli.main(["check-config", str(path)]) == 0
    captured = capsys.readouterr()
    assert "domains.domain-a.aaa.listen: warning" in captured.err
    assert f"{path}: OK" in captured.out


# ------------------------------------------------------------------ OpenFlow over TLS


def test_openflow_tls_options(tmp_path: Path, pki: Path,  # noqa: F811
                              capsys: pytest.CaptureFixture[str]) -> None:
    assert openflow_tls(None, None) is None
    assert openflow_options("127.0.0.1", 6653, None) == {
        "ofp_listen_host": "127.0.0.1", "ofp_tcp_listen_port": 6653}
    tls = openflow_tls(str(pki / "ha.crt"), str(pki / "ha.key"), str(pki / "ca.crt"))
    assert tls is not None
    opts = openflow_options("0.0.0.0", 6653, tls)
    assert opts["ofp_ssl_listen_port"] == 6653
    assert (opts["ctl_cert"], opts["ctl_privkey"], opts["ca_certs"]) == (
        tls.cert, tls.key, tls.ca)
    # os-ken 4 knows every option we set
    from os_ken import cfg
    from os_ken.base.app_manager import AppManager  # noqa: F401  (as the launcher does)
    import os_ken.controller.controller  # noqa: F401
    for name in opts:
        assert hasattr(cfg.CONF, name), name
    with pytest.raises(ValueError, match="--of-tls-key: .* go together"):
        openflow_tls(str(pki / "ha.crt"), None)
    with pytest.raises(ValueError, match="--of-tls-cert: file"):
        openflow_tls(str(tmp_path / "nope.crt"), str(pki / "ha.key"))
    with pytest.raises(ValueError, match="not a PEM"):
        openflow_tls(str(pki / "ha.crt"), str(pki / "aaah.key"))
    # check-config: no OpenFlow warning with TLS; a bad option is an error
    data = default()
    path = write(tmp_path, data)
    assert cli.main(["check-config", str(path), "--of-listen", "0.0.0.0:6653",
                     "--of-tls-cert", str(pki / "ha.crt"),
                     "--of-tls-key", str(pki / "ha.key")]) == 0
    assert "warning" not in capsys.readouterr().err
    assert cli.main(["check-config", str(path), "--of-tls-cert", str(pki / "ha.crt")]) == 1
    assert "go together" in capsys.readouterr().err
