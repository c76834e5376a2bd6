"""Start the controller: runtime (roles, Diameter, REST) + os-ken with our app.

os-ken 4 has no ``osken-manager``: this is ours (what ``ryu-manager`` was for Ryu).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
from pathlib import Path
from typing import Any

from controller.adapters.private_files import private_dir
from controller.config import config_warnings, load_topology
from controller.config.openflow import OpenFlowTls
from controller.runtime import Runtime

LOG = logging.getLogger("mipvpn.launcher")


#: the cyclic GC's thresholds: a young generation of the default size (a gen-0
#: collection of 10,000 objects took 40-60 ms with 10,000 users, one of 700 about
#: 0.3 ms), and full collections only after 10,000 gen-1 ones (gen-2 pauses of 0.4-1.8 s
#: were measured with 10,000 users): bench/results/registration-gc-2026-12-06/
GC_THRESHOLDS = (700, 10, 10000)


def tune_gc() -> None:
    """Long-lived objects (topology, roles, codecs' tables) out of the collector's way,
    short young collections and rare full ones (``GC_THRESHOLDS``).  Called once the
    runtime has started (the registration benchmark's server calls it too, so it
    measures what the product does)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def openflow_options(host: str, port: int, tls: OpenFlowTls | None) -> dict[str, Any]:
    """os-ken's controller options for our OpenFlow listener.  With ``tls`` os-ken
    listens over TLS only (its ``ofp_ssl_listen_port``), presenting ``tls.cert``; with
    ``tls.ca`` it requires a switch certificate that CA signed (mutual TLS)."""
    opts: dict[str, Any] = {"ofp_listen_host": host, "ofp_tcp_listen_port": port}
    if tls is not None:
        opts.update(ofp_ssl_listen_port=port, ctl_privkey=tls.key, ctl_cert=tls.cert,
                    ca_certs=tls.ca)
    return opts


def run_controller(config: str, run_dir: str, db: str | None, of_host: str, of_port: int,
                   rest: tuple[str, int] | None, roles: list[str] | None = None,
                   exclude: list[str] | None = None, openflow: bool = True,
                   of_tls: OpenFlowTls | None = None, state: str | None = None) -> int:
    topo = load_topology(config)
    for warning in config_warnings(config, (of_host, of_port) if openflow else None,
                                   of_tls is not None):
        LOG.warning("%s", warning)
    private_dir(run_dir)   # 0700: the VPN DB, the state store, the operator token
    if exclude:
        from controller.core.roles import build_roles
        from controller.adapters.store import VpnStore
        every = set(build_roles(topo, VpnStore(":memory:")).roles)
        unknown = set(exclude) - every
        if unknown:
            raise SystemExit(f"--exclude-roles: unknown roles {sorted(unknown)}; "
                             f"this topology has {sorted(every)}")
        roles = sorted((set(roles) if roles else every) - set(exclude))
    rt = Runtime(topo, run_dir, db or str(Path(run_dir) / "vpn.db"), rest=rest, roles=roles,
                 advertise=openflow, state_path=state)
    rt.start()
    tune_gc()
    if not openflow:
        return _serve_without_openflow(rt)
    from os_ken import cfg
    from os_ken.base.app_manager import AppManager
    import os_ken.controller.controller  # noqa: F401  (registers the OpenFlow options)
    cfg.CONF(args=[], project="os_ken")
    for name, value in openflow_options(of_host, of_port, of_tls).items():
        cfg.CONF.set_override(name, value)

    _install_stop(rt)
    LOG.info("OpenFlow on %s:%d%s, REST on %s", of_host, of_port,
             " (TLS)" if of_tls is not None else "",
             f"{rest[0]}:{rest[1]}" if rest else "off")
    AppManager.run_apps(["apps.mipvpn_app"])
    return 0


def _serve_without_openflow(rt: Runtime) -> int:
    _install_stop(rt)
    LOG.info("no OpenFlow in this process; roles: %s", ", ".join(sorted(rt.roles)))
    while True:
        signal.pause()


def _install_stop(rt: Runtime) -> None:
    main_pid = os.getpid()

    def stop(signum: int, frame: Any) -> None:
        if os.getpid() != main_pid:
            # a forked helper (pyroute2 forks to enter a gateway's namespace) inherited
            # this handler: it must just go, not stop the controller's runtime
            os._exit(0)
        LOG.info("signal %d: stopping", signum)
        rt.stop()
        logging.shutdown()
        # os-ken's native hub cannot kill its threads (hub.kill is a no-op): exit hard
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
