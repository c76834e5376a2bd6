"""The runtime with ``diameter_relays`` (issue 17), without freeDiameter: a small relay
of our own (a ``DiameterNode`` that forwards as RFC 6733 §6.1.9 says: Route-Record
appended, its own hop-by-hop ids, a Proxy-Info of its own that must come back) sits
between domain B's AAAF and the home AAA.  The real relay is freeDiameterd in
tests/integration/test_diameter_relay.py."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.adapters.diameter_peer import DiameterNode, PeerConnection
from controller.config import parse_topology
from controller.proto import diameter as dia
from controller.proto import mip
from controller.runtime import Runtime
from controller.testing.gateways import RecordingGateway
from tests.unit.runtime.mn_register import register

ROOT = Path(__file__).resolve().parents[3]
RELAY_HOST, RELAY_REALM = "dra.transit.example", "transit.example"
STATE = b"dra-state-1"


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def topology(relay_port: int, carries: list[str],
             pki: dict[str, tuple[Path, Path, Path]] | None = None) -> Any:
    data = yaml.safe_load((ROOT / "topology" / "two-domains.yaml").read_text())
    for dname, dom in data["domains"].items():
        if pki is not None and "aaa" in dom:
            crt, key, ca = pki[dname]
            dom["aaa"]["tls"] = {"cert": str(crt), "key": str(key), "ca": str(ca)}
        if "aaa" in dom:
            dom["aaa"]["listen"] = "127.0.0.1:0"
        if "home_agent" in dom:
            dom["home_agent"]["diameter_listen"] = "127.0.0.1:0"
            dom["home_agent"]["mip_listen"] = "127.0.0.1:0"
    data["diameter_relays"] = {"dra": {"host": RELAY_HOST, "realm": RELAY_REALM,
                                       "listen": f"127.0.0.1:{relay_port}",
                                       "carries": carries}}
    return parse_topology(data, "two-domains.yaml (relay)")


def _proxy_info() -> bytes:
    def avp(code: int, data: bytes) -> bytes:
        raw = struct.pack("!II", code, (0x40 << 24) | (8 + len(data))) + data
        return raw + b"\0" * (-len(raw) % 4)
    return avp(280, RELAY_HOST.encode()) + avp(33, STATE)


class StubRelay:
    """Accepts the AAAFs, dials the home AAA, forwards requests to it."""

    def __init__(self) -> None:
        self.node = DiameterNode(RELAY_HOST, RELAY_REALM, handler=self.forward,
                                 watchdog_interval=0)
        self.home: PeerConnection | None = None
        self.answers: list[Any] = []

    async def forward(self, req: Any, conn: PeerConnection) -> Any:
        assert self.home is not None
        out = replace(req, route_record=(*req.route_record, conn.remote_host),
                      proxy_info=(*req.proxy_info, _proxy_info()))
        answer = await self.node.request(out, peer=self.home)
        self.answers.append(answer)
        # a relay strips the Proxy-Info it added before answering downstream
        return replace(answer, proxy_info=answer.proxy_info[:-1])


@pytest.fixture
def through_stub(tmp_path: Path) -> Iterator[tuple[Runtime, StubRelay]]:
    port = free_tcp_port()
    rt = Runtime(topology(port, ["domain-b"]), tmp_path / "run", ":memory:", rest=None,
                 gateway_factory=RecordingGateway, flow_sink=lambda d, m: None,
                 fa_ingress=True, advertise=False)
    rt.start()
    relay = StubRelay()

    async def up() -> None:
        await relay.node.listen("127.0.0.1", port)
        relay.home = await relay.node.connect("127.0.0.1", rt.links.bound["aaah"][1])
    asyncio.run_coroutine_threadsafe(up(), rt.loop).result(10)
    try:
        assert asyncio.run_coroutine_threadsafe(rt.wait_links(10), rt.loop).result(15)
        yield rt, relay
    finally:
        asyncio.run_coroutine_threadsafe(relay.node.close(), rt.loop).result(10)
        rt.stop()


def test_carried_domain_goes_through_the_relay_direct_one_does_not(
        through_stub: tuple[Runtime, StubRelay]) -> None:
    rt, relay = through_stub
    # domain B's AAAF dialled the relay for the home realm; domain A's the home AAA
    via_b = rt.links.routes["aaaf:domain-b"]["home.example"][1]
    via_a = rt.links.routes["aaaf:domain-a"]["home.example"][1]
    assert via_b.remote_host == RELAY_HOST and via_a.remote_host == "aaah.home.example"
    assert rt.links.nodes["aaaf:domain-b"].routes["home.example"] is via_b
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    now = time.time()
    try:
        assert register(rt, "fa1", mip.ntp_identification(now), sock=sock).code == 0
        assert relay.answers == []                      # domain A: direct
        rrp = register(rt, "fa3", mip.ntp_identification(now + 0.5), "fa1", sock=sock)
        assert rrp.code == mip.CODE_ACCEPTED
    finally:
        sock.close()
    # the home AAA answered the relay's request with the relay's Proxy-Info, in order
    assert len(relay.answers) == 1
    ama = relay.answers[0]
    assert ama.result_code == dia.SUCCESS and ama.proxy_info == (_proxy_info(),)
    assert rt.counters["relayed:aaah"] == 1
    assert [h.kind for h in rt.handovers.records] == ["registration", "inter-domain"]
