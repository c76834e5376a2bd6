"""Every scenario in scenarios/ end to end, each in its own network namespace.

Each runs `mipvpn scenario NAME --json FILE` under `unshare -n` (a private network
namespace: its own loopback ports and its own userspace OVS), and must exit 0 with
``"ok": true``: every expectation in the scenario's YAML held (gaps, losses, tunnels
present/absent, bindings, handover kinds, iperf3 rates and DSCP).  Scenarios with
an ``iperf`` step (`qos`) also need iperf3.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _uses_iperf(path: Path) -> bool:
    spec = yaml.safe_load(path.read_text()) or {}
    return any(isinstance(step, dict) and "iperf" in step
               for step in spec.get("timeline") or [])


SCENARIOS = [
    pytest.param(p.stem, marks=pytest.mark.skipif(
        _uses_iperf(p) and shutil.which("iperf3") is None, reason="needs iperf3"))
    for p in sorted((ROOT / "scenarios").glob("*.yaml"))]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ovs-vsctl") is None
                       or shutil.which("unshare") is None,
                       reason="needs root, Open vSwitch, Mininet, strongSwan and unshare"),
]


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario(name: str, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    cmd = (f"ip link set lo up && exec {sys.executable} -m controller.cli scenario "
           f"{name} --json {out}")
    proc = subprocess.run(["unshare", "-n", "--", "bash", "-c", cmd], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
    assert out.exists(), f"no result; output:\n{tail}"
    res = json.loads(out.read_text())
    assert res["ok"], f"{res['failed']}\n{tail}"
    assert proc.returncode == 0, tail
