"""The gateway driver interface (issue 12): strongSwan and the recording gateway both
implement ``GatewayDriver``; optional capabilities have defaults and are asked as
properties, not probed with ``hasattr``."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

from controller.adapters.gateway import GatewayDriver, GatewayDriverBase
from controller.adapters.strongswan import StrongSwanGateway
from controller.testing.gateways import CountingGateway, RecordingGateway

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


class _NoScan(list):  # type: ignore[type-arg]
    """A log that fails when searched: a call must not walk the whole history."""

    def __contains__(self, item: object) -> bool:
        raise AssertionError("the recording driver searched its whole log")

    def __iter__(self):  # type: ignore[no-untyped-def]
        raise AssertionError("the recording driver walked its whole log")


def test_recording_driver_calls_do_not_search_the_history() -> None:
    """bench.registration's renewals promote at both ends: a search of the ever-growing
    log made each promotion cost more the longer the run (the "population effect" of
    issue 15 was this, in the fake)."""
    gw = RecordingGateway("ha")
    gw.prepare_tunnel(_Side("t1"), child=True)
    gw.log = _NoScan(gw.log)
    assert gw.promote_tunnel(_Side("t1")) == 0.0
    assert gw.promote_tunnel(_Side("t2")) == 0.0          # nothing stood: added
    assert gw.promote_tunnel(_Side("t2"), rekey=True) == 0.0
    assert list.__eq__(gw.log, [("stand", "t1"), ("promote", "t1"), ("add_prepared", "t2")])


def test_counting_driver_keeps_no_log() -> None:
    """The benchmark's driver counts; what it is asked to do leaves nothing behind that
    grows with the number of registrations."""
    gw = CountingGateway("ha")
    for _ in range(3):
        gw.add_tunnel(_Side("t1"))
        gw.promote_tunnel(_Side("t1"))
        gw.promote_tunnel(_Side("t1"), rekey=True)
        gw.add_prepared(_Side("t1"))
        gw.remove_tunnel("t1")
    assert gw.log == [] and (gw.adds, gw.promotes, gw.rekeys, gw.removes) == (3, 6, 3, 3)
