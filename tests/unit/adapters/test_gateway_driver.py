"""The gateway driver interface (issue 12): strongSwan and the recording gateway both
implement ``GatewayDriver``; optional capabilities have defaults and are asked as
properties, not probed with ``hasattr``."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

from controller.adapters.gateway import GatewayDriver, GatewayDriverBase
from controller.adapters.strongswan import StrongSwanGateway
from controller.testing.gateways import RecordingGateway

ROOT = Path(__file__).resolve().parents[3]


def test_both_drivers_implement_the_protocol(tmp_path: Path) -> None:
    strongswan = StrongSwanGateway("ha", tmp_path / "charon.vici")
    recording = RecordingGateway("ha")
    assert isinstance(strongswan, GatewayDriver) and isinstance(recording, GatewayDriver)


def test_capabilities_follow_what_a_driver_overrides(tmp_path: Path) -> None:
    strongswan = StrongSwanGateway("ha", tmp_path / "charon.vici")
    assert strongswan.warms_up and strongswan.reports_tunnel_state
    assert strongswan.watches_process
    recording = RecordingGateway("ha")
    assert not recording.warms_up and not recording.reports_tunnel_state
    assert not recording.watches_process


def test_defaults_of_the_optional_calls() -> None:
    recording = RecordingGateway("ha")
    assert recording.dialable() is True
    assert recording.load_tunnel(_Side("t1")) == 0.0       # loading = adding
    assert recording.log == [("add", "t1")]
    assert GatewayDriverBase().loaded_connections() == {}
    assert GatewayDriverBase().tunnel("t1") is None
    stop = threading.Event()
    stop.set()
    assert GatewayDriverBase().wait_closed(stop) is False


def test_strongswan_is_not_dialable_before_its_socket_exists(tmp_path: Path) -> None:
    sock = tmp_path / "charon.vici"
    gw = StrongSwanGateway("ha", sock)
    assert gw.dialable() is False
    sock.touch()
    assert gw.dialable() is True


def test_the_runtime_does_not_probe_drivers() -> None:
    """No ``hasattr(gw, ...)`` / ``isinstance(gw, StrongSwanGateway)`` in the runtime:
    what a driver can do is asked through the protocol."""
    paths = [ROOT / "controller" / "runtime.py"] + sorted(
        (ROOT / "controller" / "runtime").glob("*.py"))
    found = []
    for path in [p for p in paths if p.exists()]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("hasattr", "getattr", "isinstance")
                    and node.args and isinstance(node.args[0], ast.Name)
                    and node.args[0].id == "gw"):
                found.append(f"{path.name}:{node.lineno}")
    assert found == []


class _Side:
    def __init__(self, tunnel_id: str) -> None:
        self.tunnel_id = tunnel_id
