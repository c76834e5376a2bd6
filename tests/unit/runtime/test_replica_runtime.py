"""Issue 17 at the runtime: two ``Runtime``-s with ``state_path=etcd://...`` in this
process over a real etcd (skipped where Debian's ``etcd-server`` is not installed).

Replica A runs every role; replica B only the home roles (AAAH, HA, CN-GWs) and shares
the home AAA's address with A (SO_REUSEPORT).  A registration through A's FA is held by
both; B stopping cleanly hands its records to A at once."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from controller.adapters.etcd_state import EtcdStateStore
from controller.config import parse_topology
from controller.proto import mip
from controller.runtime import Runtime
from controller.testing.etcd import EtcdProcess
from controller.testing.gateways import RecordingGateway
from tests.unit.runtime.test_runtime_loopback import register

pytestmark = pytest.mark.skipif(shutil.which("etcd") is None,
                                reason="etcd not installed (Debian package etcd-server)")

ROOT = Path(__file__).resolve().parents[3]
NAI = "alice@home.example"


def _topology(aaa_port: int) -> Any:
    data = yaml.safe_load((ROOT / "topology" / "default.yaml").read_text())
    for dom in data["domains"].values():
        if "aaa" in dom:
            dom["aaa"]["listen"] = "127.0.0.1:0"
        if "home_agent" in dom:
            dom["aaa"]["listen"] = f"127.0.0.1:{aaa_port}"      # the replicas' one
            dom["home_agent"]["diameter_listen"] = "127.0.0.1:0"
            dom["home_agent"]["mip_listen"] = "127.0.0.1:0"
    return parse_topology(data, "default.yaml (replicas)")


def _until(check: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[Runtime]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        aaa_port = s.getsockname()[1]
    started: list[Runtime] = []
    with EtcdProcess() as etcd:
        try:
            for name, roles in (("a", None), ("b", ["aaah", "ha", "cngw:cngw"])):
                topo = _topology(aaa_port)
                (tmp_path / name).mkdir()
                rt = Runtime(topo, tmp_path / name, ":memory:", rest=None,
                             gateway_factory=RecordingGateway, flow_sink=lambda d, m: None,
                             fa_ingress=True, advertise=False, roles=roles,
                             state_path=f"{etcd.url}/t")
                rt.start()
                started.append(rt)
            assert asyncio.run_coroutine_threadsafe(
                started[0].wait_links(), started[0].loop).result(10)
            yield started   # a test that stops one takes it out
        finally:
            for rt in reversed(started):
                rt.stop()


def test_replicas_share_the_aaa_address_and_the_bindings(
        replicas: list[Runtime]) -> None:
    a, b = replicas
    assert a.links.shared_listen and b.links.shared_listen
    assert a.bound["aaah"] == b.bound["aaah"]            # one address, two listeners
    assert isinstance(a.state, EtcdStateStore) and a.replication is not None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    try:
        rrp = register(a, sock, "fa1", mip.ntp_identification(time.time()))
    finally:
        sock.close()
    assert rrp.code == 0
    assert _until(lambda: NAI in a.roles["ha"].bindings and NAI in b.roles["ha"].bindings)
    assert a.roles["ha"].bindings[NAI] == b.roles["ha"].bindings[NAI]
    owner = a.state.owner("ha", NAI)
    assert owner in (a.state.replica, b.state.replica)
    # the owner stops cleanly (its session revoked): the other claims at once
    first, other = (a, b) if owner == a.state.replica else (b, a)
    replicas.remove(first)
    first.stop()
    assert other.replication is not None and isinstance(other.state, EtcdStateStore)
    assert _until(lambda: other.state.owner("ha", NAI) == other.state.replica)  # type: ignore[union-attr]
    assert other.replication.summary()["counters"]["replica_takeovers"] >= 1
