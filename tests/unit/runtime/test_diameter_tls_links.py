"""TLS on every Diameter link (issue 11): FA -> AAAF (``domains.<foreign>.aaa.tls``)
and AAAH -> HA (``domains.<home>.home_agent.tls``) besides AAAF -> AAAH; the dialling
side presents its domain's certificate.  And ``verify_peer: false``: the server's
certificate only, clients without one admitted by source address alone.

Certificates are made here with ``cryptography``; one Runtime runs every role."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from controller.adapters.diameter_peer import (DiameterConnectionError, DiameterNode,
                                               tls_client_context, tls_server_context)
from controller.config import load_topology
from controller.core import peers
from controller.testing.gateways import RecordingGateway
from controller.proto import mip
from controller.runtime import Runtime

from tests.unit.adapters.test_diameter_tls import _cert, _write
from tests.unit.runtime.mn_register import register as _register

ROOT = Path(__file__).resolve().parents[3]
HA_HOST, AAAH_HOST, AAAF_HOST = "ha.home.example", "aaah.home.example", "aaaf.a.example"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("tlslinks") / "certs"
    tmp.mkdir()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    _write(tmp, "ca", _cert("test CA", ca_key, "test CA", ca_key, ca=True), ca_key)
    for name, dns in (("ha", (HA_HOST,)), ("aaah", (AAAH_HOST,)),
                      ("domain-a", (AAAF_HOST, "fa1.a.example", "fa2.a.example")),
                      ("aaaf-only", (AAAF_HOST,))):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(tmp, name, _cert(dns[0], key, "test CA", ca_key, dns=dns,
                                ips=("127.0.0.1",)), key)
    other = ec.generate_private_key(ec.SECP256R1())
    _write(tmp, "other-ca", _cert("other CA", other, "other CA", other, ca=True), other)
    return tmp


def _tls(name: str, ca: str = "ca", verify: bool = True) -> dict[str, Any]:
    return {"cert": f"certs/{name}.crt", "key": f"certs/{name}.key",
            "ca": f"certs/{ca}.crt", "verify_peer": verify}


def write_topology(dirpath: Path, pki: Path, *, ha_ca: str = "ca",
                   domain_cert: str = "domain-a", domain_ca: str = "ca",
                   aaaf_verify: bool = True) -> Path:
    data = yaml.safe_load((ROOT / "topology" / "default.yaml").read_text())
    if not (dirpath / "certs").exists():
        shutil.copytree(pki, dirpath / "certs")
    doms = data["domains"]
    doms["home"]["aaa"]["listen"] = "127.0.0.1:0"
    doms["home"]["aaa"]["tls"] = _tls("aaah")
    doms["home"]["home_agent"]["diameter_listen"] = "127.0.0.1:0"
    doms["home"]["home_agent"]["mip_listen"] = "127.0.0.1:0"
    doms["home"]["home_agent"]["tls"] = _tls("ha", ha_ca)
    doms["domain-a"]["aaa"]["listen"] = "127.0.0.1:0"
    doms["domain-a"]["aaa"]["tls"] = _tls(domain_cert, domain_ca, aaaf_verify)
    path = dirpath / "topo.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def start(path: Path) -> Runtime:
    topo = load_topology(path)
    rt = Runtime(topo, path.parent / "run", ":memory:", rest=None,
                 gateway_factory=RecordingGateway, flow_sink=lambda d, m: None,
                 fa_ingress=True, advertise=False)
    rt.start()
    return rt


def register(rt: Runtime) -> int:
    return int(_register(rt).code)


def links_up(rt: Runtime, timeout: float) -> bool:
    return bool(asyncio.run_coroutine_threadsafe(rt.wait_links(timeout), rt.loop
                                                 ).result(timeout + 5))


def test_every_link_over_mutual_tls(tmp_path: Path, pki: Path) -> None:
    rt = start(write_topology(tmp_path, pki))
    try:
        assert links_up(rt, 10)
        fa = rt.routes["fa:fa1"]["a.example"][1]
        assert fa.writer.get_extra_info("ssl_object") is not None
        assert fa.peer_cert_names()[0] == AAAF_HOST
        ha = rt.routes["aaah"][HA_HOST][1]
        assert ha.writer.get_extra_info("ssl_object") is not None
        assert ha.peer_cert_names() == [HA_HOST]
        # the servers saw the clients' certificates (mutual TLS)
        at_ha = rt.nodes["ha"].peer_for_host(AAAH_HOST)
        assert at_ha is not None and at_ha.peer_cert_names() == [AAAH_HOST]
        at_aaaf = rt.nodes["aaaf:domain-a"].peer_for_host("fa1.a.example")
        assert at_aaaf is not None and "fa1.a.example" in at_aaaf.peer_cert_names()
        assert register(rt) == 0
        assert "alice@home.example" in rt.roles["ha"].bindings
    finally:
        rt.stop()


def test_aaah_to_ha_refused_with_a_wrong_ca(tmp_path: Path, pki: Path) -> None:
    rt = start(write_topology(tmp_path, pki, ha_ca="other-ca"))   # HA trusts another CA
    try:
        assert not links_up(rt, 1.5)
        assert HA_HOST not in rt.routes.get("aaah", {})
        assert rt.link_failures.get("aaah", 0) >= 1
        assert not [c for c in rt.nodes["ha"].connections if c.open]
        assert register(rt) != 0
        assert rt.roles["ha"].bindings == {}
    finally:
        rt.stop()


def test_fa_to_aaaf_refused_with_a_wrong_ca(tmp_path: Path, pki: Path) -> None:
    rt = start(write_topology(tmp_path, pki, domain_ca="other-ca"))
    try:
        assert not links_up(rt, 1.5)
        assert "fa:fa1" not in rt.routes and "fa:fa2" not in rt.routes
        assert rt.link_failures.get("fa:fa1", 0) >= 1
        assert not [c for c in rt.nodes["aaaf:domain-a"].connections
                    if c.open and not c.initiator]
        assert register(rt) == mip.CODE_FA_HA_UNREACHABLE
    finally:
        rt.stop()


def test_fa_certificate_must_name_the_fa(tmp_path: Path, pki: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """Domain A's certificate names only its AAAF: the FAs presenting it are refused
    (CEA 3010: Origin-Host not in the certificate)."""
    caplog.set_level(logging.WARNING)
    rt = start(write_topology(tmp_path, pki, domain_cert="aaaf-only"))
    try:
        assert not links_up(rt, 1.5)
        assert "fa:fa1" not in rt.routes
        assert rt.nodes["aaaf:domain-a"].counters["peer_identity_mismatch"] >= 1
        assert "'fa1.a.example'" in caplog.text or "'fa2.a.example'" in caplog.text
    finally:
        rt.stop()


# ------------------------------------------------------------------ verify_peer: false


def test_verify_peer_false_means_server_certificate_only(tmp_path: Path,
                                                         pki: Path) -> None:
    """A client without a certificate is then judged by its source address (loopback
    here: admitted); a client with one by its certificate.  The policy sees which."""
    path = write_topology(tmp_path, pki, aaaf_verify=False)
    topo = load_topology(path)
    assert topo.domains["domain-a"].aaa.tls.verify_peer is False
    table = peers.build_peer_table(topo)
    seen: list[tuple[str, str, bool]] = []

    def policy(host: str, realm: str, address: str, tls: bool, **_: Any) -> Any:
        seen.append((host, address, tls))
        return peers.admit(table, "aaaf:domain-a", host, realm, address, tls)

    certs = tmp_path / "certs"

    async def main() -> None:
        tls = topo.domains["domain-a"].aaa.tls
        srv = DiameterNode(AAAF_HOST, "a.example", allowed_peers=policy)
        port = await srv.listen("127.0.0.1", 0, ssl=tls_server_context(
            tls.cert, tls.key, tls.ca, require_client_cert=False))
        bare = DiameterNode("fa1.a.example", "a.example", watchdog_interval=0)
        await bare.connect("127.0.0.1", port, ssl=tls_client_context(str(certs / "ca.crt")),
                           server_hostname=AAAF_HOST)
        mutual = DiameterNode("fa2.a.example", "a.example", watchdog_interval=0)
        await mutual.connect("127.0.0.1", port, ssl=tls_client_context(
            str(certs / "ca.crt"), str(certs / "domain-a.crt"), str(certs / "domain-a.key")),
            server_hostname=AAAF_HOST)
        stranger = DiameterNode("x.attacker.test", "a.example", watchdog_interval=0)
        with pytest.raises(DiameterConnectionError, match="3010"):
            await stranger.connect("127.0.0.1", port,
                                   ssl=tls_client_context(str(certs / "ca.crt")),
                                   server_hostname=AAAF_HOST)
        for node in (bare, mutual, stranger, srv):
            await node.close()
    asyncio.run(main())
    assert ("fa1.a.example", "127.0.0.1", False) in seen
    assert ("fa2.a.example", "127.0.0.1", True) in seen
    # off loopback, without a certificate, only a configured address passes
    assert peers.admit(table, "aaaf:domain-a", "fa1.a.example", "a.example",
                       "192.0.2.7", False) is not None
    assert peers.admit(table, "aaaf:domain-a", "fa1.a.example", "a.example",
                       "192.0.2.7", True) is None
