"""The web view in headless Chromium (issue 11): whatever the state holds is shown as
text and runs nothing, and the page is served with a strict Content-Security-Policy.

The hostile strings are put straight into the runtime's state (a handover record in
its HandoverLog, a tunnel in its tunnel log), bypassing the decoders that refuse them
since issue 11: the page must be safe on its own.  Needs no root: the loopback runtime
with recording gateways, Debian's ``chromium`` driven by Playwright (``./run`` installs
both; the test is skipped, with the reason, only where one of them is missing).
"""

from __future__ import annotations

import asyncio
import shutil
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.unit.test_untrusted_text import running_runtime

PAYLOADS = {
    "nai": '<img src=x onerror="window.__pwned=1;document.title=\'pwned\'">@home.example',
    "previous_fa": "<svg onload=window.__pwned=2>",
    "foreign_agent": "fa1<script>window.__pwned=3</script>",
    "tunnel_id": '"><img src=y onerror=window.__pwned=4>/ha-fa1',
    "state": 'up" onmouseover="window.__pwned=5',
}


def _chromium() -> str | None:
    """Like tests/integration/test_ux.py: Debian's chromium on the PATH."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


pytestmark = pytest.mark.skipif(_chromium() is None or not _playwright(),
                                reason="needs Debian's chromium and playwright (./run)")


def on_loop(rt: Any, fn: Callable[[], None]) -> None:
    """Run ``fn`` on the runtime's loop thread (which owns its state)."""
    async def call() -> None:
        fn()
    asyncio.run_coroutine_threadsafe(call(), rt.loop).result(5)


def _poison(rt: Any) -> int:
    """A denied handover and a tunnel whose every peer-influenced field is markup."""
    seq: list[int] = []

    def put() -> None:
        log = rt.handovers
        nai = PAYLOADS["nai"]
        log.mark(nai, "rrq_at_fa", 1.0, {"fa": PAYLOADS["foreign_agent"],
                                          "previous_fa": PAYLOADS["previous_fa"]})
        log.mark(nai, "ama_at_fa", 1.002, {})
        log.mark(nai, "rrp_sent", 1.004, {"accepted": False, "code": 67})
        seq.append(log.records[-1].seq)
        rt.tunnel_log[("fa1", PAYLOADS["tunnel_id"])] = {
            "gateway": "fa1", "remote_gateway": "ha", "tunnel_id": PAYLOADS["tunnel_id"],
            "state": PAYLOADS["state"]}
    on_loop(rt, put)
    return seq[0]


def test_markup_in_the_state_is_shown_as_text_and_runs_nothing(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with running_runtime(tmp_path) as (rt, base, token):
        seq = _poison(rt)
        with urllib.request.urlopen(base + "/", timeout=5) as resp:
            headers = {k.lower(): v for k, v in resp.headers.items()}
            page_html = resp.read().decode()
        csp = headers.get("content-security-policy", "")
        for directive in ("default-src 'none'", "script-src 'self'", "object-src 'none'",
                          "base-uri 'none'", "frame-ancestors 'none'",
                          "require-trusted-types-for 'script'"):
            assert directive in csp, (directive, csp)
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
        assert headers.get("x-content-type-options") == "nosniff"
        assert headers.get("referrer-policy") == "no-referrer"
        assert "<script>" not in page_html and " style=" not in page_html  # nothing inline

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=_chromium(),
                                         args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page()
                violations: list[str] = []
                page.on("console", lambda m: violations.append(m.text)
                        if "Content Security Policy" in m.text else None)
                page.goto(f"{base}/#token={token}")
                page.wait_for_selector(f"#handover-{seq}", timeout=15_000)
                page.wait_for_selector(".tunnel", state="attached", timeout=15_000)
                page.wait_for_timeout(500)        # time for an onerror/onload to fire
                shown = page.text_content(f"#handover-{seq}") or ""
                titles = page.eval_on_selector_all(
                    ".tunnel title", "ts => ts.map(t => t.textContent)")
                ids = page.eval_on_selector_all(".tunnel", "ts => ts.map(t => t.id)")
                classes = page.eval_on_selector_all(
                    ".tunnel", "ts => ts.map(t => t.getAttribute('class'))")
                pwned = page.evaluate("() => window.__pwned")
                title = page.title()
                injected = page.evaluate("""() => {
                    const n = document.querySelectorAll(
                        '#timeline img, #timeline svg, #timeline script, #graph img,'
                        + ' [onerror], [onload], [onmouseover]');
                    return n.length; }""")
                # the CSP itself: an inline script added to the DOM does not run
                inline = page.evaluate("""() => {
                    try {
                        const s = document.createElement('script');
                        s.textContent = 'window.__inline = 1';
                        document.body.appendChild(s);
                    } catch (e) { return 'refused: ' + e.name; }
                    return window.__inline === undefined ? 'blocked' : 'ran'; }""")
            finally:
                browser.close()

    assert pwned is None and title == "mipvpn" and injected == 0
    assert PAYLOADS["nai"] in shown and PAYLOADS["foreign_agent"] in shown
    assert PAYLOADS["previous_fa"] in shown and "code 67" in shown
    assert any(PAYLOADS["tunnel_id"] in t and PAYLOADS["state"] in t for t in titles), titles
    assert "tunnel-" + PAYLOADS["tunnel_id"] in ids
    assert all(c.startswith("tunnel t-") and "onmouseover" not in c for c in classes), classes
    assert inline in ("blocked", "refused: TypeError"), inline
    assert not [v for v in violations if "unsafe" in v and "webview" in v], violations


def test_a_move_glides_the_mobile_node_to_its_new_cell(tmp_path: Path) -> None:
    """Issue 16: the cells view follows a registration and a move live (no reload)."""
    import socket
    import time

    from playwright.sync_api import sync_playwright

    from controller.proto import mip
    from tests.unit.runtime.test_runtime_loopback import register

    def dot(page: Any) -> dict[str, Any]:
        return page.evaluate("""() => {
            const g = document.getElementById('cmn-mn1');
            const box = c => document.querySelector('#cell-' + c + ' rect').getBBox();
            const inside = (b, x, y) => x >= b.x && x <= b.x + b.width
                                        && y >= b.y && y <= b.y + b.height;
            const m = (g && g.style.transform || '').match(/translate\\(([-\\d.]+)px, ([-\\d.]+)px/);
            const x = m ? +m[1] : NaN, y = m ? +m[2] : NaN;
            return {shown: !!g && !g.classList.contains('away'),
                    acc1: inside(box('acc1'), x, y), acc2: inside(box('acc2'), x, y),
                    arrived: document.getElementById('cell-acc2').classList.contains('arrived'),
                    moves: [...document.querySelectorAll('#moves li')].map(l => l.textContent),
                    count: document.getElementById('movecount').textContent}; }""")

    with running_runtime(tmp_path) as (rt, base, token), \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=_chromium(),
                                         args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page()
                page.goto(f"{base}/#token={token}")
                page.wait_for_selector("#cell-acc2", state="attached", timeout=15_000)
                before = page.text_content("#unregistered") or ""
                now = time.time()
                assert register(rt, sock, "fa1", mip.ntp_identification(now)).code == 0
                page.wait_for_function("() => { const g = document.getElementById('cmn-mn1');"
                                       " return g && !g.classList.contains('away'); }",
                                       timeout=15_000)
                at_fa1 = dot(page)
                assert register(rt, sock, "fa2", mip.ntp_identification(now + 0.5),
                                previous="fa1").code == 0
                page.wait_for_selector("#moves li", timeout=15_000)
                moving = dot(page)
                page.wait_for_timeout(2500)          # the transition and the flash end
                settled = dot(page)
            finally:
                browser.close()

    assert "mn1" in before
    assert at_fa1["shown"] and at_fa1["acc1"] and not at_fa1["acc2"] and at_fa1["moves"] == []
    assert moving["arrived"] and moving["count"] == "1 move seen"
    assert moving["moves"][0].endswith("mn1: acc1 → acc2 (fa2)"), moving["moves"]
    assert settled["acc2"] and not settled["acc1"] and not settled["arrived"]
