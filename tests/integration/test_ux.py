"""What a user does with mipvpn, end to end (root: OVS + Mininet + charon).

Each test runs its commands inside fresh network + PID namespaces (``unshare -n -p -f
--mount-proc --kill-child``): one userspace OVS per network namespace, the default ports
free, and whatever is left when the test ends dies with the namespace's first process
(`mn`'s error path runs killall; inside a PID namespace that only reaches our own).

- `mipvpn demo --plots DIR --json FILE`: the PNGs and the move's time in the JSON;
- `mipvpn demo --cli` fed a script on stdin (no terminal): `bindings`, `move mn1 fa2`,
  `handovers`, `mipvpn status/tunnels` from the CLI's `sh`, and the /metrics a
  Prometheus would scrape;
- `mipvpn controller` + Mininet's own `mn --custom mininet_scripts/mn_custom.py --topo
  mipvpn --test mipvpn --post SCRIPT`: registration, a ping, `move`, the log lines.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ovs-vsctl") is None or shutil.which("mn") is None
    or not Path("/usr/lib/ipsec/charon").exists() or shutil.which("unshare") is None,
    reason="needs root, Open vSwitch, Mininet, strongSwan and unshare")


def in_namespaces(script: str, timeout: float, stdin: str | None = None
                  ) -> subprocess.CompletedProcess[str]:
    """Run a bash ``script`` in new network + PID (+ mount) namespaces, lo up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIPVPN_", "OVS_"))}
    cmd = ["unshare", "-n", "-p", "-f", "--mount-proc", "--kill-child", "--",
           "bash", "-c", f"set -u; ip link set lo up; cd {shlex.quote(str(ROOT))}; {script}"]
    try:
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                              timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:  # unshare got SIGKILL: the namespace died
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        pytest.fail(f"timed out after {timeout:.0f} s; output so far:\n{out[-4000:]}")


def _png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, path


@needs_root
def test_demo_writes_plots_and_json(tmp_path: Path) -> None:
    plots, res = tmp_path / "plots", tmp_path / "res.json"
    done = in_namespaces(f"exec {PY} -m controller.cli demo --plots {plots} --json {res}",
                         timeout=240)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert f"plot written to {plots / 'probe-timeline.png'}" in done.stdout
    _png(plots / "probe-timeline.png")
    _png(plots / "handover-phases.png")
    data = json.loads(res.read_text())
    move = data["moves"][0]
    assert move["t_move_ns"] > 0 and (move["from"], move["to"]) == ("fa1", "fa2")


@needs_root
def test_demo_cli_script(tmp_path: Path) -> None:
    metrics = "http://127.0.0.1:8080/metrics"
    script = "\n".join([
        "bindings",
        "move mn1 fa9",
        "move mn1 fa2",
        "bindings",
        "handovers",
        f"sh {PY} -m controller.cli status",
        f"sh {PY} -m controller.cli tunnels",
        f"py __import__('urllib.request').request.urlopen('{metrics}').read().decode()",
        # a node command would read the lines after it from the piped stdin (Mininet
        # forwards typed input to the node): run the ping through py instead
        "py mn1.cmd('ping -n -c 3 -i 0.2 -W 1 10.30.0.10')",
        "exit", ""])
    done = in_namespaces(f"exec {PY} -m controller.cli demo --cli", timeout=180,
                         stdin=script)
    out = done.stdout + done.stderr  # Mininet's output() (`py` results) goes to stderr
    assert done.returncode == 0, out[-6000:]
    lines = out.splitlines()
    binding_rows = [line.split() for line in lines if "alice@home.example  10.10.0.100" in line]
    assert [row[3] for row in binding_rows[:2]] == ["fa1", "fa2"], out[-4000:]
    assert "*** 'fa9' is not a foreign agent (foreign agents: fa1, fa2)" in out
    moved = next(line for line in lines if "mn1 moved acc1 (fa1) -> acc2 (fa2)" in line)
    assert "re-registered" in moved
    row = next(line.split() for line in lines if line.startswith("2  alice@home.example"))
    assert row[3:7] == ["fa1", "->", "fa2", "0"], row  # seq, NAI, kind, FA, code
    assert "switches    6/6 connected" in out
    assert "bindings    1" in out
    assert "alice_home.example/ha-fa2" in out
    samples = {}
    for line in lines:
        if line.startswith("mipvpn_") and " " in line:
            name, value = line.rsplit(" ", 1)
            samples[name.replace("mipvpn> ", "")] = float(value)
    assert samples['mipvpn_registrations_total{code="0",kind="registration"}'] == 1
    moves = {k: v for k, v in samples.items() if k.startswith("mipvpn_handovers_total{")}
    assert list(moves.values()) == [1] and 'result="accepted"' in next(iter(moves)), moves
    totals = [v for k, v in samples.items()
              if k.startswith("mipvpn_handover_phase_seconds_count{")
              and 'phase="controller_total"' in k]
    assert sorted(totals) == [1, 1], samples  # the registration and the move
    assert samples["mipvpn_bindings_active"] == 1
    assert samples['mipvpn_flow_mods_sent_total{switch="acc2"}'] > 0
    assert samples['mipvpn_diameter_peer_up{node="aaaf.a.example",peer="aaah.home.example"}'] \
        == 1
    assert "3 packets transmitted, 3 received" in out
    assert "[mipvpn] tearing down" in out


@needs_root
def test_mn_custom_with_minenets_own_mn(tmp_path: Path) -> None:
    run = tmp_path / "run"
    post = tmp_path / "post.txt"
    post.write_text("bindings\nmove mn1 fa2\nbindings\nhandovers\nmove mn1 fa9\n")
    ovs = ("from mininet_scripts.ovs import PrivateOvs\n"
           f"o = PrivateOvs({str(run / 'ovs')!r}); o.start()\n"
           "for k, v in o.env.items(): print(f'export {k}={v}')\n")
    script = f"""
mkdir -p {run}
{PY} -c {shlex.quote(ovs)} > {run}/ovs.env && . {run}/ovs.env
{PY} -m controller.cli controller --run-dir {run} > {run}/controller.log 2>&1 &
ctl=$!
for i in $(seq 100); do {PY} -m controller.cli status --run-dir {run} >/dev/null 2>&1 && break
  sleep 0.1; done
timeout 120 {PY} /usr/bin/mn --custom mininet_scripts/mn_custom.py \\
  --topo mipvpn,run_dir={run} --controller remote,port=6653 \\
  --switch ovs,datapath=user,protocols=OpenFlow13 --test mipvpn --post {post}
echo "mn exited $?"
{PY} -c "import urllib.request; print(urllib.request.urlopen(
  'http://127.0.0.1:8080/metrics').read().decode())" | grep '^mipvpn_handovers_total'
kill $ctl; wait $ctl
"""
    done = in_namespaces(script, timeout=240)
    out = done.stdout
    assert "mn exited 0" in out, out[-4000:] + done.stderr[-4000:]
    assert "mipvpn-test mn1 cn1 ok" in out, out[-4000:] + done.stderr[-4000:]
    assert "charon up in" in done.stderr  # Mininet's info() goes to stderr
    lines = out.splitlines()
    fas = [line.split()[3] for line in lines if "alice@home.example  10.10.0.100" in line]
    assert fas == ["fa1", "fa2"], out
    assert any("mn1 moved acc1 (fa1) -> acc2 (fa2)" in line for line in lines)
    assert "*** 'fa9' is not a foreign agent" in out
    assert re.search(r'^mipvpn_handovers_total\{kind="[a-z-]+",result="accepted"\} 1\.0$',
                     out, re.M), out[-3000:]
    log = (run / "controller.log").read_text()
    assert "mipvpn.handover INFO registration of alice@home.example via fa1: accepted" in log
    assert "mipvpn.handover INFO intra-domain move of alice@home.example: fa1 -> fa2" in log


# ------------------------------------------------------------------ the web view

DEFAULT_TOPOLOGY = ROOT / "topology" / "default.yaml"
ARTIFACTS = Path(os.environ.get("MIPVPN_TEST_ARTIFACTS", ROOT / "out" / "test-artifacts"))


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    return None


#: the cell (access switch) whose box holds mn1's dot in the cells view, "" if none
_CELL_OF_MN1 = """() => {
    const g = document.getElementById('cmn-mn1');
    if (!g || g.classList.contains('away')) return '';
    const m = (g.style.transform || '').match(/translate\\(([-\\d.]+)px, ([-\\d.]+)px/);
    if (!m) return '';
    const x = +m[1], y = +m[2];
    const cell = [...document.querySelectorAll('.cell')].find(c => {
        const b = c.querySelector('rect').getBBox();
        return x >= b.x && x <= b.x + b.width && y >= b.y && y <= b.y + b.height; });
    return cell ? cell.id.slice(5) : ''; }"""


def _web_view_during_a_move(artifacts: Path) -> dict[str, str]:
    """In a fresh netns: the demo's bring-up and registration, the page in headless
    Chromium, a move; returns what the page showed."""
    import tempfile

    from playwright.sync_api import sync_playwright

    from controller.config import load_topology
    from mininet_scripts.demo import Demo, _registered, wait_for
    from mininet_scripts.mn_cli import DemoSession, parse_move

    topo = load_topology(DEFAULT_TOPOLOGY)
    run_dir = Path(tempfile.mkdtemp(prefix="mipvpn-web-"))
    os.chmod(run_dir, 0o755)
    demo = Demo(topo, run_dir, "127.0.0.1:8080", 6653)
    seen: dict[str, str] = {}
    try:
        demo.bring_up()
        _client, events = demo.start_mn_client("mn1")
        wait_for("the first registration", lambda: _registered(events, 0), 15)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=_chromium(),
                                         args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 800})
                page.goto(f"{demo.rest}/")  # no token: the page asks for one
                page.wait_for_selector("#status.error", timeout=10_000)
                seen["without_token"] = page.text_content("#status") or ""
                page.fill("#token", demo.token)
                page.click("#tokenbtn")
                page.wait_for_selector('#mn-mn1[data-fa="fa1"]', timeout=10_000)
                page.wait_for_selector('[data-kind="ha-anchored"]', timeout=10_000)
                page.screenshot(path=str(artifacts / "web-view-before-move.png"))
                seen["before"] = page.text_content("#mnrow-mn1") or ""
                seen["cell_before"] = page.evaluate(_CELL_OF_MN1)
                session = DemoSession(demo, {"mn1": events})
                seen["move"] = session.move(parse_move("mn1 fa2", topo, session.location()))
                page.wait_for_selector('#mn-mn1[data-fa="fa2"]', timeout=10_000)
                page.wait_for_selector("#handover-2 .code", timeout=10_000)
                page.wait_for_selector('#tunnel-alice_home\\.example\\/ha-fa2', timeout=10_000)
                seen["after"] = page.text_content("#mnrow-mn1") or ""
                seen["handover"] = page.text_content("#handover-2") or ""
                seen["switch"] = page.get_attribute("#mn-mn1", "data-switch") or ""
                seen["tunnels"] = ",".join(
                    page.eval_on_selector_all(".tunnel", "ts => ts.map(t => t.id)"))
                page.wait_for_selector("#moves li", timeout=10_000)
                seen["moves"] = page.text_content("#moves") or ""
                page.wait_for_timeout(1500)              # the dot's glide ends
                seen["cell_after"] = page.evaluate(_CELL_OF_MN1)
                page.screenshot(path=str(artifacts / "web-view-after-move.png"))
            finally:
                browser.close()
    finally:
        demo.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    return seen


@needs_root
@pytest.mark.skipif(_chromium() is None, reason="needs Debian's chromium")
def test_web_view_follows_a_move() -> None:
    pytest.importorskip("playwright")
    from tests.integration.netns import run_in_netns

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    seen = run_in_netns(_web_view_during_a_move, ARTIFACTS, timeout=240)
    assert seen["without_token"] == "token needed"
    assert "at fa1 via acc1" in seen["before"]
    assert "mn1 moved acc1 (fa1) -> acc2 (fa2)" in seen["move"]
    assert "at fa2 via acc2" in seen["after"] and seen["switch"] == "acc2"
    assert "fa1 → fa2" in seen["handover"] and "code 0" in seen["handover"]
    assert "tunnel-alice_home.example/ha-fa2" in seen["tunnels"]
    assert "tunnel-alice_home.example/ha-fa1" not in seen["tunnels"]
    # issue 16: the cells view moved mn1's dot from acc1's cell to acc2's, and says so
    assert (seen["cell_before"], seen["cell_after"]) == ("acc1", "acc2")
    assert "mn1: acc1 → acc2 (fa2)" in seen["moves"]
    for name in ("web-view-before-move.png", "web-view-after-move.png"):
        assert (ARTIFACTS / name).read_bytes()[:4] == b"\x89PNG"
