"""Diameter between domains over TLS, configured in the topology YAML (issue 5; RFC 6733
§13): ``domains.<d>.aaa.tls: {cert, key, ca, verify_peer}``.  Certificates are made
here with ``cryptography`` (a test CA, the home AAA's and the foreign AAA's
certificates, and a second CA nobody trusts).  The runtime is split in two processes'
worth of roles (home: AAAH + HA + CN-GW; foreign: AAAF + FAs), a registration goes
through the TLS link; with the wrong CA the link is not established, and says so."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from controller.config import ConfigError, check_config, load_topology
from controller.loadgen import build_rrq
from controller.testing.gateways import RecordingGateway
from controller.proto import mip
from controller.runtime import Runtime

from tests.unit.adapters.test_diameter_tls import _cert, _write
from tests.unit.runtime.mn_register import register

ROOT = Path(__file__).resolve().parents[3]
HOME_AAA = "aaah.home.example"
FOREIGN_AAA = "aaaf.a.example"
FOREIGN_ROLES = ("aaaf:domain-a", "fa:fa1", "fa:fa2")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """certs/ with ca.crt, aaah.{crt,key}, aaaf.{crt,key}, other-ca.crt."""
    tmp = tmp_path_factory.mktemp("tlsconf") / "certs"
    tmp.mkdir()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    _write(tmp, "ca", _cert("test CA", ca_key, "test CA", ca_key, ca=True), ca_key)
    # a domain's certificate names every Diameter identity of the domain that presents
    # it: domain A's AAAF and, dialling that AAAF over TLS too (issue 11), its FAs
    for name, dns in (("aaah", (HOME_AAA,)),
                      ("aaaf", (FOREIGN_AAA, "fa1.a.example", "fa2.a.example"))):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(tmp, name, _cert(dns[0], key, "test CA", ca_key, dns=dns,
                                ips=("127.0.0.1",)), key)
    other_key = ec.generate_private_key(ec.SECP256R1())
    _write(tmp, "other-ca", _cert("other CA", other_key, "other CA", other_key, ca=True),
           other_key)
    return tmp


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_topology(dirpath: Path, pki: Path, *, foreign_ca: str = "ca.crt",
                   home_tls: bool = True, foreign_tls: bool = True,
                   aaah_port: int = 0) -> Path:
    """The default topology with TLS on the inter-domain link, cert paths relative to
    the YAML file (its directory holds a copy of ``certs/``)."""
    data = yaml.safe_load((ROOT / "topology" / "default.yaml").read_text())
    if not (dirpath / "certs").exists():
        shutil.copytree(pki, dirpath / "certs")
    doms = data["domains"]
    doms["home"]["aaa"]["listen"] = f"127.0.0.1:{aaah_port}"
    doms["home"]["home_agent"]["diameter_listen"] = "127.0.0.1:0"
    doms["home"]["home_agent"]["mip_listen"] = "127.0.0.1:0"
    doms["domain-a"]["aaa"]["listen"] = "127.0.0.1:0"
    if home_tls:
        doms["home"]["aaa"]["tls"] = {"cert": "certs/aaah.crt", "key": "certs/aaah.key",
                                      "ca": "certs/ca.crt", "verify_peer": True}
    if foreign_tls:
        doms["domain-a"]["aaa"]["tls"] = {"cert": "certs/aaaf.crt",
                                          "key": "certs/aaaf.key",
                                          "ca": f"certs/{foreign_ca}"}
    path = dirpath / "topo.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ------------------------------------------------------------------ configuration


def test_tls_config_loads_with_paths_relative_to_the_yaml(tmp_path: Path, pki: Path,
                                                          monkeypatch) -> None:
    path = write_topology(tmp_path, pki)
    monkeypatch.chdir("/")          # relative to the file, not to the working directory
    topo = load_topology(path)
    tls = topo.domains["home"].aaa.tls
    assert tls is not None and tls.verify_peer is True
    assert tls.cert == str((tmp_path / "certs" / "aaah.crt").resolve())
    assert topo.domains["domain-a"].aaa.tls.ca == str((tmp_path / "certs" / "ca.crt")
                                                      .resolve())
    assert check_config(path) == []


@pytest.mark.parametrize("edit, key, reason", [
    (lambda t: t["domains"]["home"]["aaa"]["tls"].update(cert="certs/nope.crt"),
     "domains.home.aaa.tls.cert", "nope.crt' does not exist"),
    (lambda t: t["domains"]["home"]["aaa"]["tls"].pop("ca"),
     "domains.home.aaa.tls.ca", "missing required key"),
    (lambda t: t["domains"]["home"]["aaa"]["tls"].update(key="certs/aaaf.key"),
     "domains.home.aaa.tls.key", "not a PEM certificate and its private key"),
    (lambda t: t["domains"]["domain-a"]["aaa"]["tls"].update(ca="certs/aaaf.key"),
     "domains.domain-a.aaa.tls.ca", "no PEM CA certificate"),
    (lambda t: t["domains"]["home"]["aaa"]["tls"].update(verify_peer="yes"),
     "domains.home.aaa.tls.verify_peer", "expected true or false"),
    (lambda t: t["domains"]["home"]["aaa"]["tls"].update(port=1),
     "domains.home.aaa.tls.port", "unknown key"),
    (lambda t: t["domains"]["domain-a"]["aaa"].pop("tls"),
     "domains.domain-a.aaa.tls", "the home AAA listens over TLS"),
    (lambda t: t["domains"]["home"]["aaa"].pop("tls"),
     "domains.domain-a.aaa.tls", "the home AAA has no TLS"),
])
def test_tls_config_errors_name_file_and_key(tmp_path: Path, pki: Path, edit: Any,
                                             key: str, reason: str) -> None:
    path = write_topology(tmp_path, pki)
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as err:
        load_topology(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: {key}: "), msg
    assert reason in msg, msg
    assert check_config(path) == [msg]          # what `mipvpn check-config` prints


def test_unreadable_key_file(pki: Path) -> None:
    """A key file the controller's user cannot read is named.  Root reads every file,
    so as root (CI) the check runs in a child process that has dropped to ``nobody``;
    the files sit in a directory ``nobody`` may enter (pytest's tmp_path may not be)."""
    import os
    import tempfile
    with tempfile.TemporaryDirectory(prefix="mipvpn-tlsconf-") as tmp:
        dirpath = Path(tmp)
        dirpath.chmod(0o755)
        path = write_topology(dirpath, pki)
        for f in (dirpath / "certs").iterdir():
            f.chmod(0o644)
        path.chmod(0o644)
        (dirpath / "certs" / "aaah.key").chmod(0)
        msg = _config_error_as_unprivileged(path) if os.geteuid() == 0 else _config_error(path)
    assert msg is not None, "the unreadable key file was accepted"
    assert re.search(r"domains\.home\.aaa\.tls\.key: .* is not readable", msg), msg


def _config_error(path: Path) -> str | None:
    try:
        load_topology(path)
    except ConfigError as exc:
        return str(exc)
    return None


def _config_error_as_unprivileged(path: Path, uid: int = 65534, gid: int = 65534
                                  ) -> str | None:
    """``_config_error`` in a forked child running as ``uid``/``gid`` (nobody)."""
    import json
    import os
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop root, load, report through the pipe, never return
        code = 0
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            out = {"error": _config_error(path), "uid": os.geteuid()}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            out, code = {"crash": repr(exc)}, 1
        os.write(w, json.dumps(out).encode())
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    out = json.loads(data or b"{}")
    assert "crash" not in out and out.get("uid") == uid, out
    return out["error"]


# ------------------------------------------------------------------ split runtime


def start_split(topo_path: Path) -> tuple[Runtime, Runtime, dict[str, RecordingGateway]]:
    topo = load_topology(topo_path)
    gws: dict[str, RecordingGateway] = {}

    def factory(name: str) -> RecordingGateway:
        gws[f"{len(gws)}:{name}"] = gw = RecordingGateway(name)
        return gw
    run_dir = topo_path.parent
    home = Runtime(topo, run_dir / "home", ":memory:", rest=None, gateway_factory=factory,
                   flow_sink=lambda dpid, mods: None, advertise=False,
                   roles=[k for k in _all_roles(topo) if k not in FOREIGN_ROLES])
    home.start()
    foreign = Runtime(topo, run_dir / "foreign", ":memory:", rest=None,
                      gateway_factory=factory, flow_sink=lambda dpid, mods: None,
                      fa_ingress=True, advertise=False, roles=FOREIGN_ROLES)
    foreign.start()
    return home, foreign, gws


def _all_roles(topo: Any) -> list[str]:
    from controller.adapters.store import VpnStore
    from controller.core.roles import build_roles
    store = VpnStore(":memory:")
    store.seed(topo)
    return list(build_roles(topo, store).roles)


def test_registration_across_domains_over_tls(tmp_path: Path, pki: Path) -> None:
    path = write_topology(tmp_path, pki, aaah_port=free_port())
    home, foreign, gws = start_split(path)
    try:
        assert asyncio.run_coroutine_threadsafe(foreign.wait_links(), foreign.loop
                                                ).result(15)
        conn = foreign.routes["aaaf:domain-a"]["home.example"][1]
        sslobj = conn.writer.get_extra_info("ssl_object")
        assert sslobj is not None and sslobj.version() in ("TLSv1.2", "TLSv1.3")
        assert conn.peer_cert_names() == [HOME_AAA]
        # the home side saw the AAAF's certificate (mutual TLS)
        srv = home.nodes["aaah"].peer_for_host(FOREIGN_AAA)
        assert srv is not None and srv.peer_cert_names()[0] == FOREIGN_AAA
        # FA -> AAAF runs over TLS with domain A's certificate too (issue 11); the
        # AAAH -> HA link stays plain TCP (the topology gives the HA no tls)
        fa_conn = foreign.routes["fa:fa1"]["a.example"][1]
        assert fa_conn.writer.get_extra_info("ssl_object") is not None
        assert fa_conn.peer_cert_names()[0] == FOREIGN_AAA
        ha_conn = home.routes["aaah"]["ha.home.example"][1]
        assert ha_conn.writer.get_extra_info("ssl_object") is None
        mn = foreign.topo.mobile_nodes["mn1"]
        assert register(foreign).code == 0
        assert mn.nai in home.roles["ha"].bindings
        assert mn.nai in foreign.roles["fa:fa1"].visitors
        tid = "alice_home.example/ha-fa1"
        ends = {g.name for g in gws.values() if ("add", tid) in g.log}
        assert ends == {"ha", "fa1"}
    finally:
        foreign.stop()
        home.stop()


def test_wrong_ca_no_link_and_it_says_so(tmp_path: Path, pki: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="mipvpn.runtime")
    path = write_topology(tmp_path, pki, foreign_ca="other-ca.crt",
                          aaah_port=free_port())
    home, foreign, _gws = start_split(path)
    try:
        up = asyncio.run_coroutine_threadsafe(foreign.wait_links(2.0), foreign.loop
                                              ).result(10)
        assert up is False
        assert "home.example" not in foreign.routes.get("aaaf:domain-a", {})
        assert foreign.counters["diameter_link_failures"] >= 1
        # (domain A's FAs, trusting the other CA too, fail to reach their AAAF alike)
        lines = [r.getMessage() for r in caplog.records
                 if "not established" in r.getMessage()
                 and "aaaf:domain-a" in r.getMessage()]
        assert lines and "TLS" in lines[0], lines
        assert "CERTIFICATE_VERIFY_FAILED" in lines[0], lines
        exposed = foreign.metrics.exposition(foreign).decode()
        assert 'mipvpn_diameter_link_failures_total{node="aaaf.a.example"}' in exposed
        # the home AAA accepted nothing
        assert home.nodes["aaah"].peer_for_host(FOREIGN_AAA) is None
        # a registration through that domain is refused at once, nothing set up
        topo = foreign.topo
        mn = topo.mobile_nodes["mn1"]
        raw = build_rrq(mn.nai, mn.home_address, topo.gateways["ha"].core.ip,
                        topo.gateways["fa1"].core.ip, mn.mn_aaa_spi, mn.mn_aaa_key,
                        mip.ntp_identification(time.time()))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        sock.sendto(raw, foreign.ingress["fa:fa1"].address)
        rrp = mip.decode(sock.recvfrom(2048)[0])
        sock.close()
        # 88: with domain A's CA wrong, its FAs cannot reach their AAAF either (FA ->
        # AAAF runs over TLS too, issue 11): the FA refuses at once, as for a timeout
        assert rrp.code == mip.CODE_FA_HA_UNREACHABLE
        assert "fa:fa1" not in foreign.routes
        assert home.roles["ha"].bindings == {} and foreign.roles["fa:fa1"].visitors == {}
    finally:
        foreign.stop()
        home.stop()
