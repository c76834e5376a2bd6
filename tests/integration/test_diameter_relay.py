"""Realms joined through an independent Diameter relay (issue 17): Debian's freeDiameterd,
configured here (``controller.testing.freediameter``), started and stopped by PID,
between the foreign AAAs and the home AAA of one runtime (every role real, Diameter
over loopback TCP, MIPv4 over UDP, recording gateways).  No root needed.

A registration FA1 -> AAAF-A -> relay -> AAAH -> HA and back, then an inter-domain move
to FA3 (FA3 -> AAAF-B -> relay -> AAAH -> HA), over plain TCP and over mutual TLS on
every link; the home AAA saw every AMR from the relay
with the relay's hop-by-hop ids and a Route-Record naming the FA and its AAAF; a
request the relay brings for a domain it does not carry is refused (5003)."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.adapters.diameter_peer import DiameterError, DiameterNode
from controller.proto import diameter as dia
from controller.proto import mip
from controller.runtime import Runtime
from controller.testing import freediameter
from controller.testing.gateways import RecordingGateway

from tests.unit.runtime.test_diameter_relay_links import (RELAY_HOST, RELAY_REALM,
                                                          free_tcp_port, register, topology)


pytestmark = pytest.mark.skipif(not freediameter.available(),
                                reason="freeDiameterd / freediameter-extensions missing")


def make_pki(directory: Path) -> dict[str, tuple[Path, Path, Path]]:
    """One CA; a certificate each for the home AAA, each foreign domain (its AAA and
    its FAs) and the relay: name -> (certificate, key, CA)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.unit.adapters.test_diameter_tls import _cert, _write
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    _write(directory, "ca", _cert("test CA", ca_key, "test CA", ca_key, ca=True), ca_key)
    out = {}
    for name, dns in (("home", ("aaah.home.example",)),
                      ("domain-a", ("aaaf.a.example", "fa1.a.example", "fa2.a.example")),
                      ("domain-b", ("aaaf.b.example", "fa3.b.example")),
                      ("relay", (RELAY_HOST,))):
        key = ec.generate_private_key(ec.SECP256R1())
        crt, pem = _write(directory, name, _cert(dns[0], key, "test CA", ca_key, dns=dns,
                                                 ips=("127.0.0.1",)), key)
        out[name] = (Path(crt), Path(pem), directory / "ca.crt")
    return out


class Recorder:
    """Wraps the home AAA's handler: every request it got and the connection's peer."""

    def __init__(self, rt: Runtime) -> None:
        node = rt.links.nodes["aaah"]
        self.inner = node.handler
        self.seen: list[tuple[Any, str]] = []
        node.handler = self

    async def __call__(self, request: Any, conn: Any) -> Any:
        self.seen.append((request, conn.remote_host))
        return await self.inner(request, conn)


@pytest.fixture(params=["tcp", "tls"])
def relayed(request: pytest.FixtureRequest, tmp_path: Path
            ) -> Iterator[tuple[Runtime, freediameter.FreeDiameterRelay, Recorder]]:
    """One runtime, every role; freeDiameterd between both foreign domains and the
    home AAA: plain TCP on loopback, or mutual TLS from the start on every link (the
    domains' ``aaa.tls``; the relay's certificate from the same CA)."""
    port = free_tcp_port()
    pki = make_pki(tmp_path / "certs") if request.param == "tls" else None
    topo = topology(port, ["domain-a", "domain-b"], pki)
    gws: dict[str, RecordingGateway] = {}

    def factory(name: str) -> RecordingGateway:
        gws[name] = RecordingGateway(name)
        return gws[name]

    rt = Runtime(topo, tmp_path / "run", ":memory:", rest=None, gateway_factory=factory,
                 flow_sink=lambda d, m: None, fa_ingress=True, advertise=False)
    rt.start()
    relay = None
    try:
        home = topo.domains["home"]
        aaah_port = rt.links.bound["aaah"][1]
        relay = freediameter.FreeDiameterRelay(
            tmp_path / "relay", RELAY_HOST, RELAY_REALM, ("127.0.0.1", port),
            routes={home.realm: home.aaa.host},
            connect=[(home.aaa.host, "127.0.0.1", aaah_port)],
            allow=[topo.domains[d].aaa.host for d in ("domain-a", "domain-b")],
            tls=pki["relay"] if pki else None)
        pid = relay.start()
        assert pid > 0
        up = asyncio.run_coroutine_threadsafe(rt.wait_links(20), rt.loop).result(30)
        assert up, relay.log_text()[-3000:]
        # our links are up; the relay's own link to the home AAA may still be opening
        opened = re.compile(r"STATE_OPEN'\s+'" + re.escape(home.aaa.host) + "'")
        deadline = time.monotonic() + 20
        while not opened.search(relay.log_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert opened.search(relay.log_text()), relay.log_text()[-3000:]
        rt.recorded = gws  # type: ignore[attr-defined]
        yield rt, relay, Recorder(rt)
    finally:
        rt.stop()
        if relay is not None:
            relay.stop()
            assert not relay.running()


def test_registration_and_inter_domain_move_through_freediameter(relayed: Any) -> None:
    rt, relay, recorder = relayed
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    sent_hops: list[int] = []
    for key in ("aaaf:domain-a", "aaaf:domain-b"):
        node = rt.links.nodes[key]

        def hop(original: Any = node.next_hop_by_hop) -> int:
            sent_hops.append(original())
            return sent_hops[-1]
        node.next_hop_by_hop = hop  # type: ignore[method-assign]
    now = time.time()
    try:
        t0 = time.perf_counter()
        rrp = register(rt, "fa1", mip.ntp_identification(now), sock=sock)
        first = time.perf_counter() - t0
        assert rrp.code == mip.CODE_ACCEPTED, relay.log_text()[-3000:]
        t0 = time.perf_counter()
        rrp = register(rt, "fa3", mip.ntp_identification(now + 0.5), previous="fa1", sock=sock)
        move = time.perf_counter() - t0
        assert rrp.code == mip.CODE_ACCEPTED, relay.log_text()[-3000:]
    finally:
        sock.close()
    print(f"\nthrough freeDiameter: registration {first * 1000:.1f} ms, "
          f"inter-domain move {move * 1000:.1f} ms")
    ha_log = rt.recorded["ha"].log  # type: ignore[attr-defined]
    assert ("add", "alice_home.example/ha-fa1") in ha_log
    assert ("add", "alice_home.example/ha-fa3") in ha_log
    assert [h.kind for h in rt.handovers.records] == ["registration", "inter-domain"]
    # every AMR reached the home AAA from the relay, saying where it came from
    amrs = [(r, peer) for r, peer in recorder.seen if isinstance(r, dia.AmRequest)]
    assert len(amrs) == 2
    assert {peer for _, peer in amrs} == {RELAY_HOST}
    assert rt.counters["relayed:aaah"] == 2          # GET /v1/counters shows it
    assert [r.route_record for r, _ in amrs] == [("fa1.a.example", "aaaf.a.example"),
                                                 ("fa3.b.example", "aaaf.b.example")]
    # the AAAFs' requests left with their hop-by-hop ids; the AAAH saw the relay's own
    assert len(sent_hops) == 2
    assert not {r.hop_by_hop for r, _ in amrs} & set(sent_hops)
    at_relay = rt.links.nodes["aaah"].peer_for_host(RELAY_HOST)
    assert at_relay is not None and at_relay.open
    if rt.topo.domains["home"].aaa.tls is not None:     # mutual TLS, names checked
        assert at_relay.peer_cert_names() == [RELAY_HOST]
        to_relay = rt.links.routes["aaaf:domain-b"]["home.example"][1]
        assert to_relay.peer_cert_names() == [RELAY_HOST]


def test_home_aaa_refuses_a_relayed_request_of_an_uncarried_domain(
        tmp_path: Path) -> None:
    """The relay carries only domain B; domain A's AAA is not behind it.  A request
    domain A's AAA sends through the relay anyway is refused by the home AAA (5003)."""
    port = free_tcp_port()
    topo = topology(port, ["domain-b"])
    rt = Runtime(topo, tmp_path / "run", ":memory:", rest=None,
                 gateway_factory=RecordingGateway, flow_sink=lambda d, m: None,
                 fa_ingress=True, advertise=False)
    rt.start()
    home = topo.domains["home"]
    relay = freediameter.FreeDiameterRelay(
        tmp_path / "relay", RELAY_HOST, RELAY_REALM, ("127.0.0.1", port),
        routes={home.realm: home.aaa.host},
        connect=[(home.aaa.host, "127.0.0.1", rt.links.bound["aaah"][1])],
        allow=["aaaf.a.example", "aaaf.b.example"])
    relay.start()

    async def through_relay() -> Any:
        node = DiameterNode("aaaf.a.example", "a.example", watchdog_interval=0)
        try:
            for _ in range(100):
                try:
                    conn = await node.connect("127.0.0.1", port)
                    break
                except (OSError, DiameterError):
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("relay never answered CER")
            for _ in range(100):     # until the relay has its route to the home AAA
                if rt.links.nodes["aaah"].peer_for_host(RELAY_HOST) is not None:
                    break
                await asyncio.sleep(0.1)
            amr = dia.AmRequest(
                "aaaf.a.example;1;1", "fa1.a.example", "a.example", home.realm,
                "alice@home.example", b"\x01" * 40, 300, 20, 12, 28,
                originating_foreign_aaa=("a.example", "aaaf.a.example"),
                foreign_agent="fa1", route_record=("fa1.a.example",))
            return await node.request(amr, peer=conn)
        finally:
            await node.close()

    try:
        answer = asyncio.run(through_relay())
    finally:
        rt.stop()
        relay.stop()
    assert answer.result_code == dia.AUTHORIZATION_REJECTED
    assert answer.origin_host == home.aaa.host
    assert rt.counters.get("refused_peer:aaah", 0) == 1
