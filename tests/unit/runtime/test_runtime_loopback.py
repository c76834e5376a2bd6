"""The real runtime (Diameter over loopback TCP, MIPv4 over UDP) with recording
gateways and a flow sink: a registration and an intra-domain move, no Mininet."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest
import yaml

from controller.config import parse_topology
from controller.loadgen import build_rrq
from controller.testing.gateways import RecordingGateway
from controller.proto import mip
from controller.runtime import Runtime
from tests.unit.runtime.mn_register import register as _register

ROOT = Path(__file__).resolve().parents[3]


def free_port_topology():
    data = yaml.safe_load((ROOT / "topology" / "default.yaml").read_text())
    for dom in data["domains"].values():
        if "aaa" in dom:
            dom["aaa"]["listen"] = "127.0.0.1:0"
        if "home_agent" in dom:
            dom["home_agent"]["diameter_listen"] = "127.0.0.1:0"
            dom["home_agent"]["mip_listen"] = "127.0.0.1:0"
    return parse_topology(data, "default.yaml (ports 0)")


@pytest.fixture
def runtime(tmp_path):
    topo = free_port_topology()
    gws: dict[str, RecordingGateway] = {}

    def factory(name: str) -> RecordingGateway:
        gws[name] = RecordingGateway(name)
        return gws[name]

    mods: list = []
    rt = Runtime(topo, tmp_path, ":memory:", rest=None, gateway_factory=factory,
                 flow_sink=lambda dpid, m: mods.append((dpid, m)), fa_ingress=True,
                 advertise=False)
    rt.start()
    assert asyncio.run_coroutine_threadsafe(rt.wait_links(), rt.loop).result(10)
    rt.recorded = gws  # type: ignore[attr-defined]
    rt.mods = mods  # type: ignore[attr-defined]
    yield rt
    rt.stop()


def register(rt, sock, fa: str, ident: int, previous: str | None = None):
    return _register(rt, fa, ident, previous, sock=sock, mn_fa_key=True)


def test_register_and_move_over_real_sockets(runtime):
    rt = runtime
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    now = time.time()
    rrp = register(rt, sock, "fa1", mip.ntp_identification(now))
    assert rrp.code == 0
    assert ("add", "alice_home.example/ha-fa1") in rt.recorded["fa1"].log
    assert ("add", "alice_home.example/ha-fa1") in rt.recorded["ha"].log
    rrp = register(rt, sock, "fa2", mip.ntp_identification(now + 0.5), previous="fa1")
    assert rrp.code == 0
    ha_log = rt.recorded["ha"].log
    assert ha_log.index(("remove", "alice_home.example/ha-fa1")) < ha_log.index(
        ("add", "alice_home.example/ha-fa2"))
    # FA1 drops its end after the MN's reply went out (NotifyVisitorLeft follows RRP)
    deadline = time.monotonic() + 5
    while ("remove", "alice_home.example/ha-fa1") not in rt.recorded["fa1"].log:
        assert time.monotonic() < deadline, rt.recorded["fa1"].log
        time.sleep(0.005)
    kinds = [h.kind for h in rt.handovers.records]
    assert kinds == ["registration", "intra-domain"]
    assert rt.roles["aaaf:domain-a"].counters["local"] == 1
    sock.close()


def test_each_role_looks_at_the_vpn_databases_version_once_per_message(runtime):
    """Issue 15: the runtime holds ``VpnStore.snapshot`` around each role's handling of
    a message, so a registration (the home AAA and the HA read the user and the
    profile six times) asks SQLite's ``data_version`` once per role that reads."""
    rt = runtime
    sql: list[str] = []
    rt.store._db.set_trace_callback(sql.append)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    rrp = register(rt, sock, "fa1", mip.ntp_identification(time.time()))
    sock.close()
    assert rrp.code == 0
    reads = [q for q in sql if "FROM users" in q or "FROM profiles" in q]
    assert reads, sql
    assert sum("data_version" in q for q in sql) == 2, sql   # the home AAA, the HA


def test_garbage_at_the_mip_sockets_is_counted_logged_once_and_service_goes_on(
        runtime, caplog):
    """Issue 5: truncated, wrong-type, bad-extension and random datagrams at the HA's
    and an FA's UDP sockets are counted as malformed, reported in one rate-limited
    warning per role, and the roles keep serving a real registration."""
    import logging
    import os
    rt = runtime
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    mn = rt.topo.mobile_nodes["mn1"]
    good = build_rrq(mn.nai, mn.home_address, rt.topo.gateways["ha"].core.ip,
                     rt.topo.gateways["fa1"].core.ip, mn.mn_aaa_spi, mn.mn_aaa_key,
                     mip.ntp_identification(time.time()), ha_spi=mn.mn_ha_spi,
                     ha_key=mn.mn_ha_key)
    garbage = [b"", b"\x01", good[:20], bytes([99]) + good[1:],   # truncated, wrong type
               good[:24] + bytes([131, 200]) + good[26:],          # extension too long
               good[:24] + bytes([100, 0]),                        # unknown critical ext.
               os.urandom(300), b"\xf3" * 30]                      # random, BAck garbage
    targets = [rt.mip["ha"].address, rt.ingress["fa:fa1"].address]
    for target in targets:
        for raw in garbage:
            sock.sendto(raw, target)
    deadline = time.monotonic() + 5
    ha, fa = rt.roles["ha"], rt.roles["fa:fa1"]
    while time.monotonic() < deadline and (ha.counters["malformed"] < 4
                                           or fa.counters["malformed"] < 4):
        time.sleep(0.05)
    assert ha.counters["malformed"] >= 4 and fa.counters["malformed"] >= 4
    with caplog.at_level(logging.WARNING, logger="mipvpn.runtime"):
        rt.log_malformed(1000.0)
        rt.log_malformed(1001.0)           # within the interval: nothing more
    lines = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert sum(line.startswith("ha:") for line in lines) == 1
    assert sum(line.startswith("fa:fa1:") for line in lines) == 1
    sock.sendto(good, rt.ingress["fa:fa1"].address)     # still serving
    data, _ = sock.recvfrom(2048)
    assert mip.decode(data).code == 0


def test_a_seamless_move_keeps_the_old_tunnel_standing_after_the_has_answer(tmp_path):
    """Issue 14: with ``seamless_handover`` (no S bit) the HA adds HA<->FA2 first,
    answers, and its removal of HA<->FA1 runs after the walk.  FA1 is a neighbour of
    FA2, so the HA prepares that very tunnel: the removals keep its live CHILD_SA
    standing at both ends (``stand_live``) instead of removing it and standing a
    new one up; it no longer carries anything (not in ``tunnels_up``)."""
    data = yaml.safe_load((ROOT / "topology" / "default.yaml").read_text())
    for dom in data["domains"].values():
        if "aaa" in dom:
            dom["aaa"]["listen"] = "127.0.0.1:0"
        if "home_agent" in dom:
            dom["home_agent"]["diameter_listen"] = "127.0.0.1:0"
            dom["home_agent"]["mip_listen"] = "127.0.0.1:0"
    data["vpn_profiles"]["alice@home.example"]["seamless_handover"] = True
    gws: dict[str, RecordingGateway] = {}

    def factory(name: str) -> RecordingGateway:
        gws[name] = RecordingGateway(name)
        return gws[name]

    rt = Runtime(parse_topology(data, "default.yaml (seamless)"), tmp_path, ":memory:",
                 rest=None, gateway_factory=factory, flow_sink=lambda dpid, m: None,
                 fa_ingress=True, advertise=False)
    rt.start()
    try:
        assert asyncio.run_coroutine_threadsafe(rt.wait_links(), rt.loop).result(10)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        now = time.time()
        assert register(rt, sock, "fa1", mip.ntp_identification(now)).code == 0
        assert register(rt, sock, "fa2", mip.ntp_identification(now + 0.5),
                        previous="fa1").code == 0
        sock.close()
        old, new = ("keep", "alice_home.example/ha-fa1"), "alice_home.example/ha-fa2"
        deadline = time.monotonic() + 5
        while old not in gws["ha"].log or old not in gws["fa1"].log:
            assert time.monotonic() < deadline, (gws["ha"].log, gws["fa1"].log)
            time.sleep(0.005)
        log = gws["ha"].log
        added = next(i for i, e in enumerate(log) if e[1] == new and e[0].startswith("add"))
        assert added < log.index(old)
        assert ("remove", old[1]) not in log + gws["fa1"].log
        assert ("stand", old[1]) not in log + gws["fa1"].log
        assert old[1] not in gws["ha"].tunnels_up
    finally:
        rt.stop()
