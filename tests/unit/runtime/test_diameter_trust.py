"""Trust boundaries of the runtime's Diameter listeners (issue 11): who may connect to
which role (the peer table, checked at CER) and what each peer may send (per-command
sender rules, judged by the connection's identity, not by what the request says).

The real Runtime runs in process with recording gateways; clients are our own
DiameterNode (or raw bytes on a socket) on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import replace
from typing import Any

import pytest

from controller.adapters.diameter_peer import DiameterConnectionError, DiameterNode
from controller.loadgen import build_rrq
from controller.testing.gateways import RecordingGateway
from controller.proto import diameter as dia
from controller.proto import mip
from controller.runtime import Runtime

from tests.unit.proto.test_diameter_codec import AMR, HAR, VPN
from tests.unit.runtime.mn_register import register
from tests.unit.runtime.test_runtime_loopback import free_port_topology

AUTHORIZATION_REJECTED = 5003  # RFC 6733 §7.1.5, the number on the wire
AAAF = ("aaaf.a.example", "a.example")
AAAH = ("aaah.home.example", "home.example")
FA1 = ("fa1.a.example", "a.example")
FA2 = ("fa2.a.example", "a.example")
STRANGER = ("x.attacker.test", "attacker.test")


@pytest.fixture
def rt(tmp_path: Any) -> Any:
    topo = free_port_topology()
    gws: dict[str, RecordingGateway] = {}

    def factory(name: str) -> RecordingGateway:
        gws[name] = RecordingGateway(name)
        return gws[name]

    runtime = Runtime(topo, tmp_path, ":memory:", rest=None, gateway_factory=factory,
                      flow_sink=lambda dpid, m: None, fa_ingress=True, advertise=False)
    runtime.start()
    assert asyncio.run_coroutine_threadsafe(runtime.wait_links(), runtime.loop).result(10)
    runtime.recorded = gws  # type: ignore[attr-defined]
    yield runtime
    runtime.stop()


def _mallory_har(rt: Any) -> dia.HaRequest:
    topo = rt.topo
    rrq = build_rrq("mallory@evil.test", "10.10.0.66", topo.gateways["ha"].core.ip,
                    topo.gateways["fa1"].core.ip, 300, b"k" * 16,
                    mip.ntp_identification(time.time()))
    vpn = replace(VPN, nai="mallory@evil.test", home_address="10.10.0.66")
    return replace(HAR, session_id="x.attacker.test;1;1", origin_host=STRANGER[0],
                   origin_realm=STRANGER[1], destination_host="ha.home.example",
                   user_name="mallory@evil.test", reg_request=rrq,
                   home_address="10.10.0.66", vpn_info=vpn, ha_to_fa_key=None,
                   originating_foreign_aaa=None)


def _nothing_set_up(rt: Any) -> None:
    assert rt.roles["ha"].bindings == {}
    assert all(g.log == [] or all(op != "add" or "mallory" not in tid
                                  for op, tid in g.log)
               for g in rt.recorded.values())
    assert not any("mallory" in str(entry) for entry in rt.tunnel_log)


async def _dial(rt: Any, listener: str, who: tuple[str, str], *,
                own: bool = True) -> tuple[DiameterNode, Any]:
    """A client announcing ``who``.  ``own``: it stands for a role of the runtime's own
    process (its connection counts as one the process made, as the real role's does);
    otherwise it is any other local process claiming that identity."""
    node = DiameterNode(who[0], who[1], request_timeout=2.0, watchdog_interval=0)
    if own:
        rt.nodes[f"test:{who[0]}:{id(node)}"] = node
    conn = await node.connect(*rt.bound[listener])
    return node, conn


def _read_message(sock: socket.socket) -> bytes:
    head = b""
    while len(head) < 20:
        chunk = sock.recv(20 - len(head))
        if not chunk:
            return head
        head += chunk
    length = int.from_bytes(head[1:4], "big")
    body = b""
    while len(head) + len(body) < length:
        chunk = sock.recv(length - 20 - len(body))
        if not chunk:
            break
        body += chunk
    return head + body


# ------------------------------------------------------------------ the reproduction


def test_attacker_cer_then_har_gets_3010_and_is_disconnected(rt: Any) -> None:
    """Before issue 11: a CER as x.attacker.test followed by a HAR got 2001 and the HA
    bound mallory@evil.test.  Now: CEA 3010, the connection closed, the HAR unanswered,
    nothing bound, no tunnel, counted."""
    cer = dia.Cer(STRANGER[0], STRANGER[1], ("127.0.0.1",), hop_by_hop=1, end_to_end=1)
    har = replace(_mallory_har(rt), hop_by_hop=2, end_to_end=2)
    sock = socket.create_connection(rt.bound["ha"], timeout=5)
    try:
        sock.sendall(dia.encode(cer) + dia.encode(har))   # both at once, as an attacker would
        cea = dia.decode(_read_message(sock))
        assert isinstance(cea, dia.Cea) and cea.result_code == dia.UNKNOWN_PEER
        rest = b""
        while True:                      # then the HA hangs up, without answering the HAR
            chunk = sock.recv(4096)
            if not chunk:
                break
            rest += chunk
        answers = []
        while rest:
            length = int.from_bytes(rest[1:4], "big")
            answers.append(dia.decode(rest[:length]))
            rest = rest[length:]
        assert not any(getattr(a, "result_code", 0) == dia.SUCCESS for a in answers)
    finally:
        sock.close()
    time.sleep(0.1)
    _nothing_set_up(rt)
    assert rt.nodes["ha"].counters["unknown_peer"] == 1


# ------------------------------------------------------------------ the peer table (CER)


@pytest.mark.parametrize("listener, who", [
    ("ha", STRANGER), ("aaah", STRANGER), ("aaaf:domain-a", STRANGER),
    ("ha", FA1),                      # an FA at the HA's listener
    ("ha", AAAF),                     # an AAAF at the HA's listener
    ("aaah", FA1),                    # an FA straight to the home AAA
    ("aaaf:domain-a", AAAH),          # the home AAA at a foreign AAA's listener
    ("aaaf:domain-a", ("fa1.a.example", "b.example")),    # right host, wrong realm
    ("aaah", ("aaaf.a.example", "home.example")),
])
def test_only_the_topologys_peers_pass_the_capabilities_exchange(
        rt: Any, listener: str, who: tuple[str, str]) -> None:
    async def main() -> None:
        with pytest.raises(DiameterConnectionError, match="3010"):
            await _dial(rt, listener, who)
    asyncio.run(main())
    assert rt.nodes[listener].counters["unknown_peer"] == 1
    assert not [c for c in rt.nodes[listener].connections      # the real peers stay
                if not c.initiator and c.open and (c.remote_host, c.remote_realm) == who]


def test_stranger_with_a_har_at_the_ha_cannot_bind(rt: Any) -> None:
    """The same reproduction through a well-behaved client: no connection, no HAR."""
    async def main() -> None:
        with pytest.raises(DiameterConnectionError, match="3010"):
            await _dial(rt, "ha", STRANGER)
    asyncio.run(main())
    _nothing_set_up(rt)


@pytest.mark.parametrize("listener, who", [
    ("ha", AAAH), ("aaah", AAAF), ("aaaf:domain-a", FA1)])
def test_a_local_process_posing_as_a_role_of_this_process_is_refused(
        rt: Any, listener: str, who: tuple[str, str]) -> None:
    """Loopback proves nothing: another process on this machine announcing the home
    AAA's (AAAF's, FA's) identity from 127.0.0.1 is refused at CER, because the role
    runs in this process and that connection is not one it made; a HAR from it never
    reaches the HA."""
    async def main() -> None:
        with pytest.raises(DiameterConnectionError, match="3010"):
            await _dial(rt, listener, who, own=False)
    asyncio.run(main())
    assert rt.nodes[listener].counters["unknown_peer"] == 1
    _nothing_set_up(rt)


# ------------------------------------------------------------------ per-command rules


def _ask(rt: Any, listener: str, who: tuple[str, str], request: Any) -> Any:
    async def main() -> Any:
        node, conn = await _dial(rt, listener, who)
        try:
            return await node.request(request, peer=conn)
        finally:
            await node.close()
    return asyncio.run(main())


def _amr_from(fa: str, **changes: Any) -> dia.AmRequest:
    base = replace(AMR, session_id=f"{fa}.a.example;7;7", origin_host=f"{fa}.a.example",
                   origin_realm="a.example", destination_realm="home.example",
                   user_name="alice@home.example", destination_host="",
                   originating_foreign_aaa=None, previous_fa="", previous_fa_address="",
                   foreign_agent=fa, service_update=False, hop_by_hop=0, end_to_end=0)
    return replace(base, **changes)


def test_fa_naming_another_fa_is_refused_at_the_aaaf(rt: Any) -> None:
    """FA fa1 sends an AMR naming fa2: the AAAF would release fa2's keys to fa1."""
    ans = _ask(rt, "aaaf:domain-a", FA1, _amr_from("fa1", foreign_agent="fa2"))
    assert ans.result_code == AUTHORIZATION_REJECTED
    assert rt.roles["aaaf:domain-a"].counters["proxied"] == 0
    assert rt.counters["refused_peer:aaaf:domain-a"] == 1


def test_fa_claiming_another_origin_host_is_refused_at_the_aaaf(rt: Any) -> None:
    ans = _ask(rt, "aaaf:domain-a", FA1, _amr_from("fa2"))    # says it is fa2 throughout
    assert ans.result_code == AUTHORIZATION_REJECTED
    assert rt.roles["aaaf:domain-a"].counters["proxied"] == 0


@pytest.mark.parametrize("changes", [
    {"originating_foreign_aaa": ("b.example", "aaaf.b.example")},   # another AAAF
    {"originating_foreign_aaa": None},                               # none at all
    {"foreign_agent": "fa9", "origin_host": "fa9.a.example"},       # not of its domain
    {"origin_host": "fa1.b.example"},                               # FA host of no domain
])
def test_spoofed_claims_in_an_amr_at_the_aaah(rt: Any, changes: dict[str, Any]) -> None:
    amr = _amr_from("fa1", originating_foreign_aaa=("a.example", "aaaf.a.example"))
    ans = _ask(rt, "aaah", AAAF, replace(amr, **changes))
    assert ans.result_code == AUTHORIZATION_REJECTED
    assert rt.counters["refused_peer:aaah"] == 1
    assert rt.roles["aaah"].pending == {}


def test_aaaf_sending_har_to_the_aaah_is_refused(rt: Any) -> None:
    har = replace(_mallory_har(rt), origin_host=AAAF[0], origin_realm=AAAF[1],
                  hop_by_hop=0, end_to_end=0)
    ans = _ask(rt, "aaah", AAAF, har)
    assert ans.result_code == AUTHORIZATION_REJECTED
    assert rt.counters["refused_peer:aaah"] == 1


def test_aaah_sending_amr_to_the_ha_and_a_har_claiming_another_origin(rt: Any) -> None:
    amr = _amr_from("fa1", originating_foreign_aaa=("a.example", "aaaf.a.example"))
    assert _ask(rt, "ha", AAAH, amr).result_code == AUTHORIZATION_REJECTED
    har = replace(_mallory_har(rt), hop_by_hop=0, end_to_end=0)   # origin x.attacker.test
    assert _ask(rt, "ha", AAAH, har).result_code == AUTHORIZATION_REJECTED
    assert rt.counters["refused_peer:ha"] == 2
    _nothing_set_up(rt)


def test_the_legitimate_registration_still_works(rt: Any) -> None:
    assert register(rt).code == 0
    assert rt.topo.mobile_nodes["mn1"].nai in rt.roles["ha"].bindings
    assert not any(k.startswith("refused_peer") and v for k, v in rt.counters.items())
    assert all(n.counters["unknown_peer"] == 0 for n in rt.nodes.values())


# ------------------------------------------------------------------ connection cap


def test_over_the_cap_the_oldest_connection_without_cer_makes_room(tmp_path: Any) -> None:
    import yaml
    from controller.config import parse_topology
    from tests.unit.runtime.test_runtime_loopback import ROOT
    data = yaml.safe_load((ROOT / "topology" / "default.yaml").read_text())
    for dom in data["domains"].values():
        if "aaa" in dom:
            dom["aaa"]["listen"] = "127.0.0.1:0"
        if "home_agent" in dom:
            dom["home_agent"]["diameter_listen"] = "127.0.0.1:0"
            dom["home_agent"]["mip_listen"] = "127.0.0.1:0"
    data["domains"]["domain-a"]["aaa"]["max_connections"] = 3    # its 2 FAs + 1
    topo = parse_topology(data, "cap.yaml")
    runtime = Runtime(topo, tmp_path, ":memory:", rest=None,
                      gateway_factory=RecordingGateway, flow_sink=lambda d, m: None,
                      advertise=False)
    runtime.start()
    socks: list[socket.socket] = []
    try:
        assert asyncio.run_coroutine_threadsafe(runtime.wait_links(), runtime.loop
                                                ).result(10)
        node = runtime.nodes["aaaf:domain-a"]
        assert node.max_connections == 3
        for _ in range(2):
            s = socket.create_connection(runtime.bound["aaaf:domain-a"], timeout=5)
            socks.append(s)
        time.sleep(0.2)
        first, newer = socks
        # full: the oldest connection without a CER makes room (anyone can open
        # those); the newer one stays open until its own CER deadline
        assert first.recv(1) == b""
        newer.settimeout(0.3)
        with pytest.raises(socket.timeout):
            newer.recv(1)
        assert node.counters["connection_cap"] == 1
        assert all(c.open for c in node.connections if c.remote_host)  # the FAs stay
    finally:
        for s in socks:
            s.close()
        runtime.stop()


def test_connections_without_cer_cannot_lock_out_our_own_links(rt: Any) -> None:
    """Before: connections that never send a CER, kept at 80 by an attacker who opens
    a new one whenever one closes, filled the HA's cap (64) and the AAAH's link, once
    dropped, stayed down.  Now our own process's links always get in, and a full
    listener closes the oldest connection without CER."""
    import threading
    stop = threading.Event()
    filler: list[socket.socket] = []

    def keep_filling() -> None:
        while not stop.is_set():
            for s in list(filler):
                try:
                    s.setblocking(False)
                    if s.recv(1) == b"":
                        filler.remove(s)
                        s.close()
                except BlockingIOError:
                    pass
                except OSError:
                    filler.remove(s)
                    s.close()
            while len(filler) < 80 and not stop.is_set():
                try:
                    filler.append(socket.create_connection(rt.bound["ha"], timeout=1))
                except OSError:
                    break
            time.sleep(0.01)

    thread = threading.Thread(target=keep_filling, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        node, conn = rt.routes["aaah"]["ha.home.example"]
        rt.loop.call_soon_threadsafe(conn.close)      # the AAAH -> HA link drops
        time.sleep(0.2)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if conn.open and not conn.closed.is_set():
                break
            time.sleep(0.05)
        assert conn.open and not conn.closed.is_set(), "the AAAH -> HA link stayed down"
        assert rt.nodes["ha"].counters["connection_cap"] > 0
    finally:
        stop.set()
        thread.join(5)
        for s in filler:
            s.close()
