"""controller/metrics.py: what a Prometheus scrape shows, from records and from a real
loopback runtime (registration + intra-domain move), served at GET /metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import urllib.request
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from controller.core.handover import HandoverRecord
from controller.metrics import Metrics, format_handover, log_handover
from controller.proto import mip


def _record(previous: str = "", accepted: bool = True, code: int = 0) -> HandoverRecord:
    rec = HandoverRecord(1, "alice@home.example", "fa2", previous)
    t = 100.0
    rec.marks = {"rrq_at_fa": t, "ama_at_fa": t + 0.004, "fa_setup": t + 0.005,
                 "flows_installed": t + 0.006, "tunnel_up": t + 0.012, "rrp_sent": t + 0.013}
    if previous:
        rec.marks["aaaf_local"] = t + 0.001
    rec.accepted, rec.code = accepted, code
    return rec


def test_handover_done_counts_observes_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    reg = CollectorRegistry()
    m = Metrics(reg, process=False)
    caplog.set_level(logging.INFO, logger="mipvpn.handover")
    m.handover_done(_record())
    m.handover_done(_record(previous="fa1"))
    m.handover_done(_record(previous="fa1", accepted=False, code=65))
    get = reg.get_sample_value
    assert get("mipvpn_registrations_total", {"code": "0", "kind": "registration"}) == 1
    assert get("mipvpn_registrations_total", {"code": "0", "kind": "intra-domain"}) == 1
    assert get("mipvpn_registrations_total", {"code": "65", "kind": "intra-domain"}) == 1
    assert get("mipvpn_handovers_total", {"kind": "intra-domain", "result": "accepted"}) == 1
    assert get("mipvpn_handovers_total", {"kind": "intra-domain", "result": "denied"}) == 1
    assert get("mipvpn_handovers_total", {"kind": "registration", "result": "accepted"}) is None
    labels = {"kind": "intra-domain", "phase": "controller_total"}
    assert get("mipvpn_handover_phase_seconds_count", labels) == 2
    assert get("mipvpn_handover_phase_seconds_sum", labels) == pytest.approx(0.026)
    # 13 ms lands in the 25 ms bucket, not in the 10 ms one
    assert get("mipvpn_handover_phase_seconds_bucket", {**labels, "le": "0.01"}) == 0
    assert get("mipvpn_handover_phase_seconds_bucket", {**labels, "le": "0.025"}) == 2
    lines = [r for r in caplog.records if r.name == "mipvpn.handover"]
    assert [r.levelname for r in lines] == ["INFO", "INFO", "WARNING"]
    assert "registration of alice@home.example via fa2: accepted (code 0) in 13.0 ms" \
        in lines[0].getMessage()
    assert "intra-domain move of alice@home.example: fa1 -> fa2: accepted" \
        in lines[1].getMessage()
    assert "aaa_round_trip 4.0" in lines[1].getMessage()
    assert "denied (code 65)" in lines[2].getMessage()


def test_handover_done_looks_each_label_set_up_once(monkeypatch) -> None:
    """Issue 15: the children of the per-registration metrics are kept, so a second
    registration of the same kind calls ``labels()`` no more; the counts still add."""
    reg = CollectorRegistry()
    m = Metrics(reg, process=False)
    calls: list[dict[str, str]] = []
    real = type(m.handover_phase_seconds).labels

    def counting(self, *a, **kw):  # type: ignore[no-untyped-def]
        calls.append(kw)
        return real(self, *a, **kw)

    monkeypatch.setattr(type(m.handover_phase_seconds), "labels", counting)
    m.handover_done(_record())
    first = len(calls)
    m.handover_done(_record())
    m.flow_mods_sent("s1", 3)
    m.flow_mods_sent("s1", 2)
    assert first > 0 and len(calls) == first      # the phase histogram: once per phase
    assert reg.get_sample_value("mipvpn_registrations_total",
                                {"code": "0", "kind": "registration"}) == 2
    assert reg.get_sample_value("mipvpn_flow_mods_sent_total", {"switch": "s1"}) == 5


def test_format_without_phases() -> None:
    rec = HandoverRecord(3, "bob@home.example", "fa1", "")
    rec.accepted, rec.code = False, None
    assert format_handover(rec) == ("registration of bob@home.example via fa1: "
                                    "denied (code None)")
    log_handover(rec)  # does not raise


def _fake_runtime(malformed: int) -> SimpleNamespace:
    closed = asyncio.Event()
    conn_up = SimpleNamespace(remote_host="aaah.home.example", open=True, closed=closed)
    conn_down = SimpleNamespace(remote_host="", open=False, closed=closed)
    node = SimpleNamespace(origin_host="aaaf.a.example", counters={"framing_error": 2})
    fa_node = SimpleNamespace(origin_host="fa1.a.example", counters={})
    return SimpleNamespace(
        roles={"ha": SimpleNamespace(bindings={"alice": 1, "bob": 2}, counters={}),
               "fa:fa1": SimpleNamespace(counters={"malformed": malformed})},
        tunnel_log={("ha", "a"): {"gateway": "ha", "state": "up"},
                    ("ha", "b"): {"gateway": "ha", "state": "up"},
                    ("fa1", "a"): {"gateway": "fa1", "state": "failed"}},
        datapaths={0x401: object()},
        topo=SimpleNamespace(switches={"acc1": SimpleNamespace(dpid=0x401),
                                       "acc2": SimpleNamespace(dpid=0x402)}),
        routes={"aaaf:domain-a": {"home.example": (node, conn_up)},
                "fa:fa1": {"a.example": (fa_node, conn_down)}},
        nodes={"aaaf:domain-a": node}, counters={"malformed": 0, "packet_in": 7})


def test_refresh_reads_state_and_grows_counters() -> None:
    reg = CollectorRegistry()
    m = Metrics(reg, process=False)
    m.refresh(_fake_runtime(malformed=3))
    get = reg.get_sample_value
    assert get("mipvpn_bindings_active") == 2
    assert get("mipvpn_tunnels", {"gateway": "ha", "state": "up"}) == 2
    assert get("mipvpn_tunnels", {"gateway": "fa1", "state": "failed"}) == 1
    assert get("mipvpn_switch_connected", {"switch": "acc1"}) == 1
    assert get("mipvpn_switch_connected", {"switch": "acc2"}) == 0
    assert get("mipvpn_diameter_peer_up",
               {"node": "aaaf.a.example", "peer": "aaah.home.example"}) == 1
    assert get("mipvpn_diameter_peer_up", {"node": "fa1.a.example", "peer": "a.example"}) == 0
    assert get("mipvpn_malformed_packets_dropped_total", {"role": "fa:fa1"}) == 3
    assert get("mipvpn_malformed_packets_dropped_total",
               {"role": "diameter:aaaf.a.example"}) == 2
    assert get("mipvpn_packet_in_total") == 7
    # a second scrape adds only what grew; a tunnel that went away leaves the gauge
    rt = _fake_runtime(malformed=5)
    del rt.tunnel_log[("fa1", "a")]
    m.refresh(rt)
    assert get("mipvpn_malformed_packets_dropped_total", {"role": "fa:fa1"}) == 5
    assert get("mipvpn_packet_in_total") == 7
    assert get("mipvpn_tunnels", {"gateway": "fa1", "state": "failed"}) is None
    text = m.exposition(rt).decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"mipvpn_registrations", "mipvpn_handovers", "mipvpn_handover_phase_seconds",
            "mipvpn_bindings_active", "mipvpn_tunnels", "mipvpn_flow_mods_sent",
            "mipvpn_malformed_packets_dropped", "mipvpn_diameter_peer_up"} <= names


def test_two_instances_do_not_collide() -> None:
    Metrics(process=True)
    Metrics(process=True)  # each has its own registry: no "Duplicated timeseries"


# ------------------------------------------------------------ the real runtime + REST


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return bytes(resp.read())


def test_scrape_after_registration_and_move(tmp_path, caplog) -> None:
    from controller.testing.gateways import RecordingGateway
    from controller.runtime import Runtime
    from tests.unit.runtime.test_runtime_loopback import free_port_topology, register

    caplog.set_level(logging.INFO, logger="mipvpn.handover")
    port = _free_port()
    rt = Runtime(free_port_topology(), tmp_path, ":memory:", rest=("127.0.0.1", port),
                 gateway_factory=RecordingGateway, flow_sink=lambda dpid, m: None,
                 fa_ingress=True, advertise=False)
    rt.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert asyncio.run_coroutine_threadsafe(rt.wait_links(), rt.loop).result(10)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        now = time.time()
        assert register(rt, sock, "fa1", mip.ntp_identification(now)).code == 0
        assert register(rt, sock, "fa2", mip.ntp_identification(now + 0.5),
                        previous="fa1").code == 0
        sock.sendto(b"\x01\x00garbage", rt.ingress["fa:fa1"].address)  # malformed RRQ
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                text = _get(base + "/metrics").decode()
                break
            except OSError:
                assert time.monotonic() < deadline, "REST never answered"
                time.sleep(0.05)
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(text) for s in f.samples}

        def val(name: str, **labels: str) -> float | None:
            return samples.get((name, tuple(sorted(labels.items()))))

        assert val("mipvpn_registrations_total", code="0", kind="registration") == 1
        assert val("mipvpn_registrations_total", code="0", kind="intra-domain") == 1
        assert val("mipvpn_handovers_total", kind="intra-domain", result="accepted") == 1
        assert val("mipvpn_handover_phase_seconds_count", kind="intra-domain",
                   phase="controller_total") == 1
        assert val("mipvpn_bindings_active") == 1
        assert val("mipvpn_flow_mods_sent_total", switch="acc2") > 0
        assert val("mipvpn_diameter_peer_up", node="aaaf.a.example",
                   peer="aaah.home.example") == 1
        deadline = time.monotonic() + 5
        while val("mipvpn_malformed_packets_dropped_total", role="fa:fa1") != 1:
            assert time.monotonic() < deadline, text
            time.sleep(0.05)
            text = _get(base + "/metrics").decode()
            samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for f in text_string_to_metric_families(text) for s in f.samples}
        # /metrics stays out of the OpenAPI schema
        assert "/metrics" not in json.loads(_get(base + "/openapi.json"))["paths"]
        lines = [r.getMessage() for r in caplog.records if r.name == "mipvpn.handover"]
        assert any(line.startswith("registration of alice@home.example via fa1: accepted")
                   for line in lines), lines
        assert any(line.startswith("intra-domain move of alice@home.example: fa1 -> fa2")
                   for line in lines), lines
    finally:
        sock.close()
        rt.stop()


def test_trust_refusals_exported() -> None:
    """Issue 11: what the trust boundaries refused is visible to Prometheus: the
    listeners' unknown peers and cap, the sender rules, the HA's refusals, FA-HA
    authentication, unmatched replies, and moves the AAAF sent home."""
    rt = _fake_runtime(malformed=0)
    rt.nodes["aaaf:domain-a"].counters.update(unknown_peer=3, connection_cap=1)
    rt.counters["refused_peer:ha"] = 2
    rt.roles["ha"].counters.update(refused=4, refused_unknown_nai=1,
                                   refused_vpn_info=3, fa_auth_failed=5)
    rt.roles["fa:fa1"].counters["reply_unmatched"] = 6
    rt.roles["aaaf:domain-a"] = SimpleNamespace(counters={},
                                                home_because={"mn_fa_auth": 7})
    reg = CollectorRegistry()
    Metrics(reg, process=False).refresh(rt)
    get = reg.get_sample_value
    name = "mipvpn_trust_refusals_total"
    assert get(name, {"where": "diameter:aaaf.a.example", "reason": "unknown_peer"}) == 3
    assert get(name, {"where": "diameter:aaaf.a.example", "reason": "connection_cap"}) == 1
    assert get(name, {"where": "ha", "reason": "sender_rules"}) == 2
    assert get(name, {"where": "ha", "reason": "unknown_nai"}) == 1
    assert get(name, {"where": "ha", "reason": "vpn_info"}) == 3
    assert get(name, {"where": "ha", "reason": "fa_auth_failed"}) == 5
    assert get(name, {"where": "fa:fa1", "reason": "reply_unmatched"}) == 6
    assert get("mipvpn_moves_sent_home_total",
               {"aaaf": "aaaf:domain-a", "reason": "mn_fa_auth"}) == 7


def test_the_handover_line_is_not_formatted_when_its_level_is_off(monkeypatch) -> None:
    """Issue 15: a registration's log line is built only when ``mipvpn.handover`` logs
    at its level (INFO accepted, WARNING denied); its phases are computed once."""
    import controller.metrics as metrics_mod
    built: list[object] = []
    real = metrics_mod.format_handover
    monkeypatch.setattr(metrics_mod, "format_handover",
                        lambda rec, phases=None: built.append(rec) or real(rec, phases))
    logger = logging.getLogger("mipvpn.handover")
    monkeypatch.setattr(logger, "level", logger.level)      # restored after the test
    logger.setLevel(logging.WARNING)                         # (setLevel: clears its cache)
    m = Metrics(CollectorRegistry(), process=False)
    calls = 0

    class Counted:
        """The record as Metrics sees it (duck-typed), counting its phases_ms calls: a
        wrapper, not a patched method (HandoverRecord may be compiled, issue 15)."""

        def __init__(self, rec: Any) -> None:
            self._rec = rec

        def __getattr__(self, name: str) -> Any:
            return getattr(self._rec, name)

        def phases_ms(self) -> dict[str, float]:
            nonlocal calls
            calls += 1
            return self._rec.phases_ms()  # type: ignore[no-any-return]
    rec = Counted(_record())
    m.handover_done(rec)
    assert built == [] and calls == 1               # INFO off: not formatted
    denied = _record(accepted=False, code=65)
    m.handover_done(denied)
    assert built == [denied]                         # WARNING on: formatted, logged
    logger.setLevel(logging.INFO)
    m.handover_done(rec)
    assert built == [denied, rec] and calls == 2
