"""A small mobility experiment end to end (issue 16): 10 MNs random-walk over 4 cells
(2x2 grid, two foreign domains) for 30 s, in a private network namespace.

Every move must complete (the MN re-registered through the FA of its new cell), every
MN must hold a binding at the FA of its cell at the end, and the report (JSON, HTML,
plots) and the control-plane capture must be written.  Under 2 minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ovs-vsctl") is None
                       or shutil.which("unshare") is None
                       or shutil.which("dumpcap") is None,
                       reason="needs root, Open vSwitch, Mininet, strongSwan, unshare and "
                              "dumpcap"),
]


def test_small_experiment(tmp_path: Path) -> None:
    out = tmp_path / "report"
    pcap = tmp_path / "cp.pcapng"
    cmd = (f"ip link set lo up && exec {sys.executable} -m controller.cli experiment "
           f"experiments/ci-small.yaml --out {out} --pcap {pcap}")
    t0 = time.monotonic()
    proc = subprocess.run(["unshare", "-n", "--", "bash", "-c", cmd], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    took = time.monotonic() - t0
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
    assert (out / "report.json").exists(), f"no report; output:\n{tail}"
    res = json.loads((out / "report.json").read_text())
    s = res["summary"]
    assert s["moves"] > 0 and s["completed"] == s["moves"], (res["failures"], tail)
    assert all(m["state"] == "completed" for m in res["moves"])
    assert s["bindings_at_end"] == s["mns"] == 10
    assert res["ok"] and not res["failures"], res["failures"]
    assert proc.returncode == 0, tail
    assert (out / "report.html").exists() and (out / "gap_cdf.png").exists()
    assert pcap.exists() and pcap.stat().st_size > 1000
    assert took < 120, f"took {took:.0f} s"
