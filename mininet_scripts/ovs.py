"""A private Open vSwitch instance (userspace datapath only) for one run.

``PrivateOvs(run_dir)`` starts its own ``ovsdb-server`` and ``ovs-vswitchd`` with
``OVS_RUNDIR``/``OVS_LOGDIR``/``OVS_DBDIR``/``OVS_SYSCONFDIR`` pointing under ``run_dir``,
so the system's OVS (if any) is never touched.  The recipe (DESIGN.md §4)::

    ovs-ctl start --no-ovs-vswitchd --system-id=random
    ovs-vsctl --no-wait set Open_vSwitch . other_config:userspace-tso-enable=true
    ovs-ctl start --no-ovsdb-server

Every ``ovs-vsctl``/``ovs-ofctl`` call of the run needs the same variables: pass
``PrivateOvs.env`` to subprocesses.  Mininet runs ``ovs-vsctl`` from shells it spawns
with the *current process* environment, so while the instance runs (between ``start()``
and ``stop()``) the four variables are also set in ``os.environ`` (and restored on stop).
Build the Mininet network only after ``start()``.

Only one userspace OVS can run per machine (it owns the ``ovs-netdev`` tap device):
``start()`` refuses if one exists.  ``stop()`` kills only the two daemons this object
started, by the PIDs in the pid files it created.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

__all__ = ["OVS_CTL", "OvsError", "PrivateOvs"]

log = logging.getLogger(__name__)

OVS_CTL = Path("/usr/share/openvswitch/scripts/ovs-ctl")
OVS_ENV_VARS = ("OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR")
DAEMONS = ("ovsdb-server", "ovs-vswitchd")


class OvsError(RuntimeError):
    """Open vSwitch could not be started (or is already in use)."""


def userspace_ovs_running() -> bool:
    """True if some userspace OVS owns the ``ovs-netdev`` tap (root namespace)."""
    return Path("/sys/class/net/ovs-netdev").exists()


class PrivateOvs:
    """ovsdb-server + ovs-vswitchd in private folders under ``run_dir``."""

    def __init__(self, run_dir: str | Path, *, timeout: float = 15.0) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.timeout = timeout
        self.env: dict[str, str] = {
            "OVS_RUNDIR": str(self.run_dir / "run"),
            "OVS_LOGDIR": str(self.run_dir / "log"),
            "OVS_DBDIR": str(self.run_dir / "db"),
            "OVS_SYSCONFDIR": str(self.run_dir / "etc"),
        }
        self.pids: dict[str, int] = {}
        self.start_seconds: float | None = None
        self._saved_environ: dict[str, str | None] | None = None

    # -- helpers --------------------------------------------------------------

    @property
    def rundir(self) -> Path:
        return Path(self.env["OVS_RUNDIR"])

    def full_env(self) -> dict[str, str]:
        """The current process environment plus this instance's OVS variables."""
        return {**os.environ, **self.env}

    def vsctl(self, *args: str, check: bool = True, timeout: float = 10.0) -> str:
        """Run ``ovs-vsctl`` against this instance; return stdout."""
        return self._run(["ovs-vsctl", "--timeout=5", *args], check=check, timeout=timeout)

    def ofctl(self, *args: str, check: bool = True, timeout: float = 10.0) -> str:
        return self._run(["ovs-ofctl", *args], check=check, timeout=timeout)

    def _run(self, argv: list[str], *, check: bool, timeout: float) -> str:
        proc = subprocess.run(argv, env=self.full_env(), capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise OvsError(f"{' '.join(argv)} failed ({proc.returncode}): "
                           f"{proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def _ovs_ctl(self, *args: str) -> None:
        if not OVS_CTL.exists():
            raise OvsError(f"{OVS_CTL} not found: install openvswitch-switch")
        proc = subprocess.run([str(OVS_CTL), *args], env=self.full_env(), capture_output=True,
                              text=True, timeout=self.timeout, check=False)
        if proc.returncode != 0:
            logs = self.run_dir / "log"
            raise OvsError(f"ovs-ctl {' '.join(args)} failed ({proc.returncode}): "
                           f"{(proc.stdout + proc.stderr).strip()} (logs in {logs})")

    def _read_pid(self, daemon: str) -> int:
        path = self.rundir / f"{daemon}.pid"
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError) as exc:
            raise OvsError(f"cannot read {path}: {exc}") from None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> PrivateOvs:
        if self.pids:
            raise OvsError("this PrivateOvs is already running")
        if userspace_ovs_running():
            raise OvsError(
                "another userspace Open vSwitch is running on this machine (interface "
                "'ovs-netdev' exists); only one can run at a time - stop it first"
            )
        t0 = time.monotonic()
        for path in self.env.values():
            Path(path).mkdir(parents=True, exist_ok=True)
        # Options that keep exactly one process per daemon (pid file = that process)
        # and no background ovs-vsctl left running after ovs-ctl returns.
        common = ("--system-id=random", "--no-monitor", "--no-record-hostname",
                  "--no-mlockall")
        self._set_environ()
        try:
            self._ovs_ctl("start", "--no-ovs-vswitchd", *common)
            self.pids["ovsdb-server"] = self._read_pid("ovsdb-server")
            self.vsctl("--no-wait", "set", "Open_vSwitch", ".",
                       "other_config:userspace-tso-enable=true")
            self._ovs_ctl("start", "--no-ovsdb-server", *common)
            self.pids["ovs-vswitchd"] = self._read_pid("ovs-vswitchd")
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        log.info("private OVS up in %.3f s (pids %s, dir %s)",
                 self.start_seconds, self.pids, self.run_dir)
        return self

    def stop(self) -> None:
        """Stop the daemons this object started (by PID) and restore ``os.environ``."""
        # ovs-vswitchd first, so it can still talk to the database while exiting.
        for daemon in reversed(DAEMONS):
            pid = self.pids.pop(daemon, None)
            if pid is None:
                try:
                    pid = self._read_pid(daemon) if (self.rundir / f"{daemon}.pid").exists() else None
                except OvsError:
                    pid = None
                if pid is None or not _is_process(pid, daemon):
                    continue
            _terminate(pid, timeout=5.0)
        self._restore_environ()

    def _set_environ(self) -> None:
        if self._saved_environ is None:
            self._saved_environ = {k: os.environ.get(k) for k in OVS_ENV_VARS}
        os.environ.update(self.env)

    def _restore_environ(self) -> None:
        if self._saved_environ is None:
            return
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environ = None

    @property
    def running(self) -> bool:
        return bool(self.pids) and all(_alive(p) for p in self.pids.values())

    def __enter__(self) -> PrivateOvs:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _is_process(pid: int, name: str) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == name[:15]
    except OSError:
        return False


def _terminate(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.01)
    log.warning("pid %d ignored SIGTERM; sending SIGKILL", pid)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
