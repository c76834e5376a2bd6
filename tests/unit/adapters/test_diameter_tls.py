"""Diameter over TLS (RFC 6733 §13, TLS from the start) between two domains' nodes.

Certificates are made here with ``cryptography``: a test CA, the home AAA server's
certificate, the foreign AAA's client certificate, and a self-signed impostor.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from controller.adapters.diameter_peer import (DiameterConnectionError, DiameterError,
                                               DiameterNode, tls_client_context,
                                               tls_server_context)
from controller.proto import diameter as d

from tests.unit.proto.test_diameter_codec import AMR
from tests.unit.proto.test_diameter_errors import answer_all, run

HOST = "127.0.0.1"
HOME = "aaah.home.example"
FOREIGN = "aaaf.foreign.example"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool = False,
          dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                          False, False), critical=True)
    return b.sign(issuer_key, hashes.SHA256())


def _write(tmp: Path, name: str, cert: x509.Certificate, key: Any) -> tuple[str, str]:
    cpath, kpath = tmp / f"{name}.crt", tmp / f"{name}.key"
    cpath.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kpath.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    kpath.chmod(0o600)
    return str(cpath), str(kpath)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("mipvpn test CA", ca_key, "mipvpn test CA", ca_key, ca=True)
    ca_path, _ = _write(tmp, "ca", ca, ca_key)
    out: dict[str, Any] = {"ca": ca_path}
    for name, dns in [("home", (HOME,)), ("foreign", (FOREIGN,)), ("other", ("x.example",))]:
        key = ec.generate_private_key(ec.SECP256R1())
        out[name] = _write(tmp, name, _cert(dns[0], key, "mipvpn test CA", ca_key, dns=dns,
                                            ips=("127.0.0.1",)), key)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    out["rogue"] = _write(tmp, "rogue", _cert(HOME, rogue_key, HOME, rogue_key,
                                              dns=(HOME,), ips=("127.0.0.1",)), rogue_key)
    return out


def _server_ctx(pki: dict[str, Any], who: str = "home") -> ssl.SSLContext:
    return tls_server_context(*pki[who], cafile=pki["ca"])


def _client_ctx(pki: dict[str, Any], who: str | None = "foreign") -> ssl.SSLContext:
    if who is None:
        return tls_client_context(pki["ca"])
    return tls_client_context(pki["ca"], *pki[who])


def test_mutual_tls_amr_ama(pki: dict[str, Any]) -> None:
    async def main() -> None:
        home = DiameterNode(HOME, "home.example", handler=answer_all)
        port = await home.listen(HOST, 0, ssl=_server_ctx(pki))
        fa = DiameterNode(FOREIGN, "foreign.example", watchdog_interval=0.05)
        conn = await fa.connect(HOST, port, ssl=_client_ctx(pki), server_hostname=HOME)
        sslobj = conn.writer.get_extra_info("ssl_object")
        assert sslobj is not None and sslobj.version() in ("TLSv1.2", "TLSv1.3")
        assert conn.peer_cert_names() == [HOME]
        ans = await fa.request(replace(AMR, hop_by_hop=0, end_to_end=0))
        assert ans.result_code == d.SUCCESS
        await asyncio.sleep(0.2)
        assert fa.counters["dwa_received"] >= 2          # watchdog over TLS too
        srv = home.peer_for_host(FOREIGN)
        assert srv is not None and srv.peer_cert_names() == [FOREIGN]
        await fa.close()
        await home.close()
    run(main())


def test_tls_refusals(pki: dict[str, Any]) -> None:
    async def main() -> None:
        home = DiameterNode(HOME, "home.example", handler=answer_all, cer_timeout=0.5)
        port = await home.listen(HOST, 0, ssl=_server_ctx(pki))

        # 1. a server whose certificate our CA did not sign
        rogue = DiameterNode(HOME, "home.example", handler=answer_all)
        rogue_port = await rogue.listen(HOST, 0, ssl=tls_server_context(*pki["rogue"]))
        fa = DiameterNode(FOREIGN, "foreign.example", request_timeout=1.0)
        with pytest.raises(DiameterConnectionError, match="TLS"):
            await fa.connect(HOST, rogue_port, ssl=_client_ctx(pki), server_hostname=HOME)
        # 2. the right server under the wrong name
        with pytest.raises(DiameterConnectionError, match="TLS"):
            await fa.connect(HOST, port, ssl=_client_ctx(pki), server_hostname="evil.example")
        # 3. a client without a certificate (mutual TLS required)
        with pytest.raises(DiameterError):
            await fa.connect(HOST, port, ssl=_client_ctx(pki, None), server_hostname=HOME)
        # 4. a client whose certificate does not name its Origin-Host: CEA 3010
        liar = DiameterNode("aaaf.liar.example", "foreign.example", request_timeout=1.0)
        with pytest.raises(DiameterConnectionError, match="capabilities"):
            await liar.connect(HOST, port, ssl=_client_ctx(pki, "other"),
                               server_hostname=HOME)
        assert home.counters["peer_identity_mismatch"] == 1
        # 5. a server whose certificate does not name the Origin-Host it announces
        imposter = DiameterNode("aaah.other.example", "home.example", handler=answer_all)
        imp_port = await imposter.listen(HOST, 0, ssl=_server_ctx(pki, "home"))
        with pytest.raises(DiameterConnectionError, match="not a name"):
            await fa.connect(HOST, imp_port, ssl=_client_ctx(pki), server_hostname=HOME)
        # 6. plain TCP to the TLS port
        plain = DiameterNode(FOREIGN, "foreign.example", request_timeout=1.0)
        with pytest.raises(DiameterError):
            await plain.connect(HOST, port)
        # after all that, a good peer is still served
        good = DiameterNode(FOREIGN, "foreign.example")
        await good.connect(HOST, port, ssl=_client_ctx(pki), server_hostname=HOME)
        ans = await good.request(replace(AMR, hop_by_hop=0, end_to_end=0))
        assert ans.result_code == d.SUCCESS and home.counters["task_error"] == 0
        for node in (good, plain, imposter, liar, fa, rogue, home):
            await node.close()
    run(main())      # and nothing reached the loop's exception handler


def test_reconnect_over_tls(pki: dict[str, Any]) -> None:
    async def main() -> None:
        home = DiameterNode(HOME, "home.example", handler=answer_all)
        port = await home.listen(HOST, 0, ssl=_server_ctx(pki))
        fa = DiameterNode(FOREIGN, "foreign.example", watchdog_interval=0.1,
                          request_timeout=0.5)
        conn = await fa.connect(HOST, port, ssl=_client_ctx(pki), server_hostname=HOME,
                                reconnect=True, backoff=(0.05, 0.1))
        await home.close()
        home = DiameterNode(HOME, "home.example", handler=answer_all)
        await home.listen(HOST, port, ssl=_server_ctx(pki))
        for _ in range(300):
            if conn.open and conn.generation > 1:
                break
            await asyncio.sleep(0.01)
        assert conn.open and conn.writer.get_extra_info("ssl_object") is not None
        assert (await fa.request(AMR)).result_code == d.SUCCESS
        await fa.close()
        await home.close()
    run(main())
