"""``bench.registration``'s server removes its run directory (the VPN database, keys
included) however it ends: at ``quit``, and at SIGTERM from a driver that gave up
waiting for it (``Server.close``), and a server killed outright (SIGKILL) has its
directory removed by the driver's ``close``.  A fresh-clone CI run used to leave one
``/tmp/mipvpn-bench-*`` behind: the replica that ``tests/integration/test_replicas.py``
kills."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bench.registration_server import Server


@pytest.mark.parametrize("how", ["quit", "sigterm", "sigkill"])
def test_the_server_leaves_no_run_directory(how: str) -> None:
    srv = Server("--serve", "--users", "10")
    try:
        run_dir = Path(srv.info["run_dir"])
        assert (run_dir / "vpn.db").exists()
        if how == "quit":
            srv.close()
        elif how == "sigterm":
            os.kill(srv.info["pid"], signal.SIGTERM)
            srv.proc.wait(15)
        else:       # tests/integration/test_replicas.py kills a replica: the driver's
            os.kill(srv.info["pid"], signal.SIGKILL)        # close removes what it left
            srv.proc.wait(15)
            srv.close()
        assert not run_dir.exists()
    finally:
        if srv.proc.poll() is None:    # a failed check: SIGTERM, which it handles
            srv.proc.terminate()
            srv.proc.wait(15)
