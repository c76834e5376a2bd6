"""controller/adapters/webview.py: the page, the SSE stream (token required) and what
the snapshot says after a registration and a move on the loopback runtime."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from controller.adapters.webview import tunnel_kind
from controller.proto import mip

ROOT = Path(__file__).resolve().parents[3]


def test_tunnel_kinds() -> None:
    kinds = {"ha": "home_agent", "fa1": "foreign_agent", "fa2": "foreign_agent",
             "cngw": "cn_gateway"}
    topo = SimpleNamespace(gateways={n: SimpleNamespace(kind=k) for n, k in kinds.items()})

    def kind(a: str, b: str, tid: str = "x/t") -> str:
        return tunnel_kind(topo, {"gateway": a, "remote_gateway": b, "tunnel_id": tid})
    assert kind("fa1", "ha") == "ha-anchored"
    assert kind("cngw", "fa2") == "route-optimised"
    assert kind("fa1", "fa2") == "smooth-handoff"
    assert kind("ha", "cngw", "static/ha-cngw") == "static"


def _first_event(url: str, token: str) -> dict:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}",
                                               "Accept": "text/event-stream"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        lines = []
        while True:
            line = resp.readline().decode()
            if line == "\n" and lines:
                break
            lines.append(line)
    assert lines[0] == "event: state\n"
    return json.loads(lines[1].removeprefix("data: "))


def test_page_and_stream_on_the_runtime(tmp_path: Path) -> None:
    from controller.testing.gateways import RecordingGateway
    from controller.runtime import Runtime
    from tests.unit.runtime.test_runtime_loopback import free_port_topology, register

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rt = Runtime(free_port_topology(), tmp_path, ":memory:", rest=("127.0.0.1", port),
                 gateway_factory=RecordingGateway, flow_sink=lambda dpid, m: None,
                 fa_ingress=True, advertise=False)
    rt.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    base = f"http://127.0.0.1:{port}"
    try:
        assert asyncio.run_coroutine_threadsafe(rt.wait_links(), rt.loop).result(10)
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(base + "/", timeout=5) as resp:
                    page = resp.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert "<title>mipvpn</title>" in page and '<script src="/webview.js"' in page
        with urllib.request.urlopen(base + "/webview.js", timeout=5) as resp:
            assert resp.headers["Content-Type"].startswith("text/javascript")
            assert "/v1/view" in resp.read().decode()
        with urllib.request.urlopen(base + "/webview.css", timeout=5) as resp:
            assert resp.headers["Content-Type"].startswith("text/css")
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(base + "/v1/view", timeout=5)
        assert exc.value.code == 401
        token = (tmp_path / "operator.token").read_text().strip()
        state = _first_event(base + "/v1/view", token)
        assert state["mobile_nodes"][0]["registered"] is False
        assert {s["name"] for s in state["switches"]} == set(rt.topo.switches)

        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        now = time.time()
        assert register(rt, sock, "fa1", mip.ntp_identification(now)).code == 0
        assert register(rt, sock, "fa2", mip.ntp_identification(now + 0.5),
                        previous="fa1").code == 0
        state = _first_event(base + "/v1/view", token)
        mn = state["mobile_nodes"][0]
        assert (mn["name"], mn["foreign_agent"], mn["switch"]) == ("mn1", "fa2", "acc2")
        tunnels = {t["id"]: t["kind"] for t in state["tunnels"]}
        assert tunnels["alice_home.example/ha-fa2"] == "ha-anchored"
        assert [(h["kind"], h["from"], h["to"]) for h in state["handovers"]] == [
            ("registration", "", "fa1"), ("intra-domain", "fa1", "fa2")]
        req = urllib.request.Request(base + "/v1/view",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:  # no Accept: one snapshot
            assert json.loads(resp.read())["mobile_nodes"][0]["foreign_agent"] == "fa2"
    finally:
        sock.close()
        rt.stop()


def test_the_page_has_no_inline_code_and_the_script_no_html_sinks() -> None:
    """Issue 11: data reaches the page as text only.  The browser test proves it in
    Chromium; this keeps the sources honest where no browser is installed."""
    import re
    adapters = ROOT / "controller" / "adapters"
    html = (adapters / "webview.html").read_text()
    js = (adapters / "webview.js").read_text()
    code = re.sub(r"//[^\n]*", "", js)               # comments may name the sinks
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "DOMParser", "createContextualFragment", "srcdoc"):
        assert sink not in code, sink
    assert not re.search(r"setAttribute\(\s*[\"'`]on", code)
    assert re.findall(r"<script\b[^>]*>", html) == ['<script src="/webview.js" defer>']
    assert not re.search(r"\son[a-z]+\s*=|\sstyle\s*=|<style", html)


def test_every_response_carries_the_security_headers(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from controller.adapters.rest import create_app
    from controller.adapters.webview import CONTENT_SECURITY_POLICY

    from tests.unit.rest_fakes import OPERATOR, FakeRuntime, make_auth
    client = TestClient(create_app(FakeRuntime(tmp_path), make_auth()))
    op = {"Authorization": f"Bearer {OPERATOR}"}
    for path, headers, status in [("/", {}, 200), ("/webview.js", {}, 200),
                                  ("/webview.css", {}, 200), ("/v1/bindings", {}, 401),
                                  ("/v1/view", op, 200), ("/v1/handovers", op, 200),
                                  ("/v1/nothing", op, 404), ("/openapi.json", {}, 200)]:
        r = client.get(path, headers=headers)
        assert r.status_code == status, (path, r.status_code)
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "no-referrer", path
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    # FastAPI's Swagger UI (README: docs at /docs) needs its inline bootstrap and CDN
    r = client.get("/docs")
    csp = r.headers["content-security-policy"]
    assert r.status_code == 200 and "frame-ancestors 'none'" in csp
    assert "'unsafe-eval'" not in csp and "cdn.jsdelivr.net" in csp
