"""controller/cli.py: the REST subcommands as a user runs them.

A small fake controller (http.server) answers canned JSON and records each request, so
the tests read the printed tables, the exit codes and the advice in the error messages;
the last test runs `python -m controller.cli` against the real runtime's REST API
after a registration and a move over loopback.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from controller.cli import main, table

ROOT = Path(__file__).resolve().parents[3]

PROFILE = {"nai": "alice@home.example",
           "destinations": [{"prefix": "10.30.0.0/24", "gateway": "cngw"}],
           "security": {"ike": "aes128-sha256-ecp256", "esp": "aes128gcm16"},
           "qos": {"rate_kbps": 0, "dscp": 0}}
ALLOWANCE = {"prefixes": ["10.30.0.0/16"], "gateways": ["cngw"], "max_rate_kbps": 5000,
             "dscp": [0, 46], "ike": ["aes128-sha256-ecp256"], "esp": ["aes128gcm16"],
             "smooth_handoff": True, "distribution": False}
TOPOLOGY = {
    "name": "default",
    "switches": [{"name": "core1", "dpid": 0x101, "role": "core", "connected": True},
                 {"name": "acc1", "dpid": 0x401, "role": "access", "connected": True},
                 {"name": "acc2", "dpid": 0x402, "role": "access", "connected": False}],
    "gateways": [{"name": "ha", "kind": "home_agent", "domain": "home",
                  "core": "10.0.0.1", "inside": "10.10.0.1"},
                 {"name": "fa2", "kind": "foreign_agent", "domain": "domain-a",
                  "core": "10.0.0.12", "inside": "10.22.0.1"}],
    "hosts": [], "links": [], "mobile_nodes": [], "visitors": {}}
BINDINGS = [{"nai": "alice@home.example", "home_address": "10.10.0.100",
             "care_of_address": "10.0.0.11", "foreign_agent": "fa1", "lifetime": 300,
             "expires_in": 287.5, "tunnels": ["alice_home.example/ha-fa1"]}]
TUNNELS = {"intended": [{"gateway": "ha", "tunnel_id": "alice_home.example/ha-fa1",
                         "local": "10.0.0.1", "remote": "10.0.0.11",
                         "remote_gateway": "fa1", "state": "configured", "setup_ms": 4.2}],
           "gateways": {"ha": [{"tunnel_id": "alice_home.example/ha-fa1",
                                "state": "ESTABLISHED", "established": True,
                                "packets_in": 12, "packets_out": 10, "bytes_in": 1200,
                                "bytes_out": 1000}],
                        "fa2": {"error": "VICI socket missing"}}}


class FakeController:
    """Answers GET/PUT like the REST API; ``token`` makes PUT require it."""

    def __init__(self, token: str | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.token = token
        self.bindings: list[dict[str, Any]] = list(BINDINGS)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, code: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _record(self) -> dict[str, Any]:
                n = int(self.headers.get("Content-Length") or 0)
                req = {"method": self.command, "path": self.path,
                       "auth": self.headers.get("Authorization"),
                       "body": json.loads(self.rfile.read(n)) if n else None}
                fake.requests.append(req)
                return req

            def do_GET(self) -> None:  # noqa: N802
                self._record()
                answers = {"/v1/topology": TOPOLOGY, "/v1/bindings": fake.bindings,
                           "/v1/tunnels": TUNNELS,
                           "/v1/profiles/alice@home.example": PROFILE,
                           "/v1/users/alice@home.example/allowance": ALLOWANCE}
                if self.path in answers:
                    self._reply(200, answers[self.path])
                else:
                    self._reply(404, {"detail": f"no VPN profile for {self.path[13:]!r}"})

            def do_PUT(self) -> None:  # noqa: N802
                req = self._record()
                if fake.token and req["auth"] != f"Bearer {fake.token}":
                    self._reply(401, {"detail": "missing or wrong token"})
                    return
                if self.path.endswith("/allowance"):
                    self._reply(200, req["body"])
                    return
                self._reply(200, {**req["body"], "nai": "alice@home.example"})

            def do_PATCH(self) -> None:  # noqa: N802
                req = self._record()
                if req["auth"] == "Bearer alice-credential":   # outside her allowance
                    self._reply(403, {"detail": [{"field": "body.qos.dscp",
                                                  "message": "not a DSCP value your "
                                                             "allowance lists (0)"}]})
                    return
                merged = {**PROFILE, **req["body"]}
                self._reply(200, merged)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ctl() -> Iterator[FakeController]:
    fake = FakeController(token="s3cret")
    yield fake
    fake.close()


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("MIPVPN_TOKEN", "MIPVPN_URL", "MIPVPN_OPERATOR_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MIPVPN_RUN_DIR", str(tmp_path / "no-run-dir"))  # no token file


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_table_aligns_columns() -> None:
    assert table(["A", "LONGER"], [["xyz", 1], [None, "b"]]).splitlines() == [
        "A    LONGER", "xyz  1", "     b"]


def test_status(ctl: FakeController, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "status", "--url", ctl.url)
    assert code == 0
    assert f"controller  up at {ctl.url} (topology 'default')" in out
    assert "switches    2/3 connected" in out
    assert "not connected: acc2" in out
    assert "bindings    1" in out
    lines = out.splitlines()
    ha = next(line for line in lines if line.startswith("ha "))
    assert "home_agent" in ha and "answering (1/1 tunnels established)" in ha
    assert "not answering" in next(line for line in lines if line.startswith("fa2 "))
    code, out, _ = run(capsys, "status", "--url", ctl.url, "--json")
    data = json.loads(out)
    assert data["bindings"] == 1 and data["controller"]["up"] is True
    assert [g["charon"].split()[0] for g in data["gateways"]] == ["answering", "not"]


def test_bindings_and_tunnels(ctl: FakeController,
                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "bindings", "--url", ctl.url)
    assert code == 0
    header, row = out.splitlines()
    assert header.split()[:3] == ["NAI", "HOME", "ADDRESS"]
    assert row.split() == ["alice@home.example", "10.10.0.100", "10.0.0.11", "fa1", "300",
                           "287.5", "alice_home.example/ha-fa1"]
    code, out, _ = run(capsys, "bindings", "--url", ctl.url, "--json")
    assert json.loads(out) == BINDINGS
    ctl.bindings = []
    code, out, _ = run(capsys, "bindings", "--url", ctl.url)
    assert out.strip() == "no bindings (no mobile node registered)"

    code, out, _ = run(capsys, "tunnels", "--url", ctl.url)
    assert code == 0
    assert "set by the controller:" in out and "reported by charon:" in out
    assert any(line.split()[:2] == ["ha", "alice_home.example/ha-fa1"]
               and "configured" in line and "4.2" in line for line in out.splitlines())
    assert any(line.split()[2:5] == ["ESTABLISHED", "yes", "12"]
               for line in out.splitlines())
    assert "charon not answering at: fa2 (VICI socket missing)" in out


def test_profiles_show(ctl: FakeController, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "profiles", "show", "alice@home.example", "--url", ctl.url)
    assert code == 0
    assert "security   IKE aes128-sha256-ecp256, ESP aes128gcm16" in out
    assert "QoS        rate unlimited, DSCP 0" in out
    assert any(line.split() == ["10.30.0.0/24", "cngw"] for line in out.splitlines())
    assert ctl.requests[-1]["path"] == "/v1/profiles/alice@home.example"
    code, out, err = run(capsys, "profiles", "show", "bob@home.example", "--url", ctl.url)
    assert code == 5 and out == ""
    assert "no VPN profile for 'bob@home.example'" in err


def test_profiles_set_sends_the_token(ctl: FakeController, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    new = {**PROFILE, "qos": {"rate_kbps": 2000, "dscp": 46}}
    del new["nai"]
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(new))
    code, out, err = run(capsys, "profiles", "set", "alice@home.example", "--file",
                         str(path), "--url", ctl.url)
    assert code == 4
    assert "pass --token-file FILE or set MIPVPN_TOKEN" in err
    wrong = tmp_path / "wrong.token"
    wrong.write_text("wrong\n")
    code, out, err = run(capsys, "profiles", "set", "alice@home.example", "--file",
                         str(path), "--url", ctl.url, "--token-file", str(wrong))
    assert code == 4 and "the token was refused" in err
    monkeypatch.setenv("MIPVPN_TOKEN", "s3cret")
    code, out, err = run(capsys, "profiles", "set", "alice@home.example", "--file",
                         str(path), "--url", ctl.url)
    assert code == 0, err
    put = ctl.requests[-1]
    assert (put["method"], put["auth"], put["body"]) == ("PUT", "Bearer s3cret", new)
    assert "profile of alice@home.example updated" in out
    assert "rate 2000 kbit/s, DSCP 46" in out


def token_file(tmp_path: Path, token: str) -> str:
    path = tmp_path / f"token-{token}"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return str(path)


def test_profiles_update_sends_a_patch(ctl: FakeController, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "change.json"
    path.write_text(json.dumps({"qos": {"rate_kbps": 0, "dscp": 46}}))
    code, out, err = run(capsys, "profiles", "update", "alice@home.example", "--file",
                         str(path), "--url", ctl.url, "--token-file", token_file(tmp_path, "s3cret"))
    assert code == 0, err
    assert (ctl.requests[-1]["method"], ctl.requests[-1]["body"]) == (
        "PATCH", {"qos": {"rate_kbps": 0, "dscp": 46}})
    assert "rate unlimited, DSCP 46" in out
    # a user's change outside the allowance: exit 7, the field, and who decides
    code, out, err = run(capsys, "profiles", "update", "alice@home.example", "--file",
                         str(path), "--url", ctl.url, "--token-file", token_file(tmp_path, "alice-credential"))
    assert code == 7 and out == ""
    assert "not allowed: body.qos.dscp: not a DSCP value your allowance lists" in err
    assert "mipvpn allowance show NAI" in err


def test_allowance_show_and_set(ctl: FakeController, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "allowance", "show", "alice@home.example", "--url", ctl.url)
    assert code == 0, err
    assert ctl.requests[-1]["path"] == "/v1/users/alice@home.example/allowance"
    assert "prefixes      10.30.0.0/16" in out
    assert "rate          at most 5000 kbit/s" in out
    assert "DSCP          0, 46" in out and "may toggle    smooth_handoff" in out
    path = tmp_path / "allowance.json"
    path.write_text(json.dumps({**ALLOWANCE, "max_rate_kbps": 0}))
    code, out, err = run(capsys, "allowance", "set", "alice@home.example", "--file",
                         str(path), "--url", ctl.url, "--token-file", token_file(tmp_path, "s3cret"))
    assert code == 0, err
    assert ctl.requests[-1]["method"] == "PUT"
    assert ctl.requests[-1]["body"]["max_rate_kbps"] == 0
    assert "rate          any (unlimited included)" in out


def test_profiles_set_bad_file(ctl: FakeController, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run(capsys, "profiles", "set", "a@b", "--file", str(bad), "--url",
                       ctl.url)
    assert code == 1 and "not valid JSON" in err and "profiles show NAI --json" in err
    code, _, err = run(capsys, "profiles", "set", "a@b", "--file",
                       str(tmp_path / "missing.json"), "--url", ctl.url)
    assert code == 1 and "cannot read" in err
    assert not [r for r in ctl.requests if r["method"] == "PUT"]


def test_unreachable_controller_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    for cmd in (["status"], ["bindings"], ["tunnels"], ["profiles", "show", "a@b"]):
        code, out, err = run(capsys, *cmd, "--url", f"http://127.0.0.1:{port}")
        assert code == 3 and out == ""
        assert f"controller not reachable at http://127.0.0.1:{port}" in err
        assert "`mipvpn controller` or `./run demo`" in err


def test_other_subcommands_still_parse(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check-config", str(ROOT / "topology" / "default.yaml"))
    assert code == 0 and out.strip().endswith(": OK")
    for sub in ("controller", "demo", "scenario"):
        with pytest.raises(SystemExit) as exc:
            main([sub, "--help"])
        assert exc.value.code == 0
    capsys.readouterr()


# ------------------------------------------------------------ against the real REST API


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIPVPN_")}
    env["MIPVPN_RUN_DIR"] = "/nonexistent"
    return subprocess.run([sys.executable, "-m", "controller.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_cli_against_the_real_rest_api(tmp_path: Path) -> None:
    from controller.testing.gateways import RecordingGateway
    from controller.proto import mip
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
    url = f"http://127.0.0.1:{port}"
    try:
        assert asyncio.run_coroutine_threadsafe(rt.wait_links(), rt.loop).result(10)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        now = time.time()
        assert register(rt, sock, "fa1", mip.ntp_identification(now)).code == 0
        assert register(rt, sock, "fa2", mip.ntp_identification(now + 0.5),
                        previous="fa1").code == 0
        deadline = time.monotonic() + 10
        done = _cli("status", "--url", url)
        while done.returncode == 3:  # REST not listening yet
            assert time.monotonic() < deadline, done.stderr
            time.sleep(0.1)
            done = _cli("status", "--url", url)
        assert done.returncode == 4 and "pass --token-file FILE" in done.stderr
        # the operator token is read from the controller's run dir
        done = _cli("status", "--url", url, "--run-dir", str(tmp_path))
        assert done.returncode == 0, done.stderr
        assert "switches    0/6 connected" in done.stdout
        assert "bindings    1" in done.stdout
        done = _cli("bindings", "--url", url, "--run-dir", str(tmp_path))
        assert done.returncode == 0, done.stderr
        row = done.stdout.splitlines()[1].split()
        assert row[:4] == ["alice@home.example", "10.10.0.100", "10.0.0.12", "fa2"]
        done = _cli("tunnels", "--url", url, "--json", "--run-dir", str(tmp_path))
        intended = {t["tunnel_id"] for t in json.loads(done.stdout)["intended"]}
        assert "alice_home.example/ha-fa2" in intended
        assert "alice_home.example/ha-fa1" not in intended
        done = _cli("profiles", "show", "alice@home.example", "--url", url, "--run-dir",
                    str(tmp_path))
        assert done.returncode == 0, done.stderr
        assert "10.30.0.0/24" in done.stdout and "cngw" in done.stdout
        done = _cli("profiles", "show", "nobody@home.example", "--url", url, "--run-dir",
                    str(tmp_path))
        assert done.returncode == 5 and "no VPN profile" in done.stderr
        # claim 24 from the command line: edit what `show --json` printed, set it back
        shown = json.loads(_cli("profiles", "show", "alice@home.example", "--url", url,
                                "--run-dir", str(tmp_path), "--json").stdout)
        shown["qos"] = {"rate_kbps": 2000, "dscp": 46}
        path = tmp_path / "alice.json"
        path.write_text(json.dumps(shown))
        done = _cli("profiles", "set", "alice@home.example", "--file", str(path), "--url",
                    url, "--run-dir", str(tmp_path))
        assert done.returncode == 0, done.stderr
        assert "rate 2000 kbit/s, DSCP 46" in done.stdout
        assert rt.store.profile("alice@home.example").qos.rate_kbps == 2000
        shown["qos"]["dscp"] = 99
        path.write_text(json.dumps(shown))
        done = _cli("profiles", "set", "alice@home.example", "--file", str(path), "--url",
                    url, "--run-dir", str(tmp_path))
        assert done.returncode == 6 and "body.qos.dscp" in done.stderr, done.stderr
        done = _cli("profiles", "set", "bob@home.example", "--file", str(path), "--url",
                    url, "--run-dir", str(tmp_path))
        assert done.returncode == 1 and "is the profile of 'alice@home.example'" in done.stderr
        # a partial file: `set` (PUT, whole) names what is missing, `update` (PATCH) merges
        path.write_text(json.dumps({"qos": {"dscp": 10}}))
        done = _cli("profiles", "set", "alice@home.example", "--file", str(path), "--url",
                    url, "--run-dir", str(tmp_path))
        assert done.returncode == 6 and "body.security: field required" in done.stderr
        done = _cli("profiles", "update", "alice@home.example", "--file", str(path),
                    "--url", url, "--run-dir", str(tmp_path))
        assert done.returncode == 0, done.stderr
        assert "rate 2000 kbit/s, DSCP 10" in done.stdout
    finally:
        sock.close()
        rt.stop()


def test_controller_state_option_reaches_the_runtime(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    """Issue 17: ``--state etcd://HOST:PORT`` goes to the runtime's state path (the
    default stays the SQLite VPN database: ``state=None``)."""
    import controller.launcher as launcher
    seen: list[dict[str, Any]] = []

    class FakeRuntime:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            seen.append(kwargs)
            raise SystemExit(0)
    monkeypatch.setattr(launcher, "Runtime", FakeRuntime)
    for extra in (["--state", "etcd://127.0.0.1:2379/home"], []):
        with pytest.raises(SystemExit):
            main(["controller", "--run-dir", str(tmp_path / "run"), "--rest", "off",
                  "--no-openflow", *extra])
    assert seen[0]["state_path"] == "etcd://127.0.0.1:2379/home"
    assert seen[1]["state_path"] is None


def test_demo_link_model_reaches_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    """``mipvpn demo --link-model replug`` compares with the old emulated move; the
    default is the carrier flip (issue 14)."""
    import mininet_scripts.demo as demo_mod
    seen: list[str] = []
    monkeypatch.setattr(demo_mod, "run_demo", lambda args: seen.append(args.link_model) or 0)
    assert main(["demo", "--link-model", "replug"]) == 0
    assert main(["demo"]) == 0
    assert seen == ["replug", "carrier"]
    with pytest.raises(SystemExit):
        main(["demo", "--link-model", "wire"])
