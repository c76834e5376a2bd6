"""``bench.registration``'s server removes its run directory (the VPN database, keys
included) however it ends: at ``quit``, and at SIGTERM from a driver that gave up
waiting for it (``Server.close``).  A fresh-clone CI run used to leave one
``/tmp/mipvpn-bench-*`` behind: ``atexit`` does not run when a signal ends a process."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bench.registration_server import Server


@pytest.mark.parametrize("how", ["quit", "sigterm"])
def test_the_server_leaves_no_run_directory(how: str) -> None:
    srv = Server("--serve", "--users", "10")
    try:
        run_dir = Path(srv.info["run_dir"])
        assert (run_dir / "vpn.db").exists()
        if how == "quit":
            srv.close()
        else:
            os.kill(srv.info["pid"], signal.SIGTERM)
            srv.proc.wait(15)
        assert not run_dir.exists()
    finally:
        if srv.proc.poll() is None:    # a failed check: SIGTERM, which it handles
            srv.proc.terminate()
            srv.proc.wait(15)
