"""Our topology for Mininet's own `mn` command (a ``--custom`` file).

    sudo mipvpn controller --run-dir /tmp/mipvpn          # one shell
    sudo mn --custom mininet_scripts/mn_custom.py --topo mipvpn \\
        --controller remote,port=6653 --switch ovs,datapath=user,protocols=OpenFlow13

builds ``topology/default.yaml`` (or ``--topo mipvpn,config=FILE``) as Mininet nodes:
switches with the YAML's names, dpids and port numbers; the gateways as routers, each
starting its own charon (VICI socket under ``RUN_DIR/gw/<name>/``, where the controller
looks for it); the correspondent hosts; each mobile node with its home address, running
the MN client so it registers as soon as the switches connect.  ``mininet>`` then also
has ``move mn1 fa2``, ``bindings`` and ``handovers`` (see ``mn_cli.py``), and
``--test mipvpn`` waits for every registration and pings each CN from each MN.

Topo options (``--topo mipvpn,KEY=VALUE,...``): ``config`` (YAML path, relative to the
repository or absolute), ``run_dir`` (default ``$MIPVPN_RUN_DIR`` or ``/tmp/mipvpn``:
must be the controller's ``--run-dir`` and outside ``/run``, which each gateway has
private), ``charon=0`` / ``mn_client=0`` to start neither.  The CLI's REST calls go to
``$MIPVPN_URL`` (default http://127.0.0.1:8080) with the operator token of ``run_dir``.

`mn` runs Debian's ``/usr/bin/python3``: strongSwan's ``vici`` and ``pyroute2`` come from
the project's ``.venv`` (made by ``./run``), whose packages this file adds to the path;
the MN client runs with ``.venv/bin/python`` (or ``$MIPVPN_PYTHON``).  Or run `mn` with
the venv's interpreter: ``sudo .venv/bin/python /usr/bin/mn --custom ...``.

Warning for shared machines: when `mn` fails it runs its cleanup, which kills every
Mininet/controller process on the machine by name.  Run it in namespaces of its own
(``unshare -n -p -f --mount-proc``) if others use the machine.
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# `mn` exec()s this file without __file__: find ourselves through the code object.
_HERE = Path(inspect.currentframe().f_code.co_filename).resolve()  # type: ignore[union-attr]
REPO = _HERE.parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
_VENV = REPO / ".venv"
for _site in sorted(_VENV.glob(f"lib/python{sys.version_info[0]}.{sys.version_info[1]}"
                               "/site-packages")):
    if str(_site) not in sys.path:
        sys.path.append(str(_site))  # after the system's: only fills what is missing

from mininet.log import error, info, warn  # noqa: E402
from mininet.node import Host  # noqa: E402
from mininet.topo import Topo  # noqa: E402

from controller.adapters.private_files import private_dir  # noqa: E402
from controller.config import Topology, load_topology  # noqa: E402
from mininet_scripts.demo import mn_client_command  # noqa: E402
from mininet_scripts.mn_cli import DemoSession, MipvpnCLI  # noqa: E402
from mininet_scripts.topo import QuietRemoteController, _configure_gateway  # noqa: E402

DEFAULT_CONFIG = REPO / "topology" / "default.yaml"

# what the last MipvpnTopo built (the CLI and the test read it; `mn` builds one topology)
STATE: dict[str, Any] = {}


def _run_dir(value: str | None) -> Path:
    return Path(value or os.environ.get("MIPVPN_RUN_DIR") or "/tmp/mipvpn")


def _python() -> str:
    env = os.environ.get("MIPVPN_PYTHON")
    if env:
        return env
    venv = _VENV / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class GatewayHost(Host):  # type: ignore[misc]
    """A gateway (HA, FA, CN-GW): a router with its own charon."""

    def config(self, **params: Any) -> Any:
        result = super().config(**params)
        gw, topo = params["mipvpn_gateway"], params["mipvpn_topology"]
        _configure_gateway(self, gw, topo)
        self.charon: Any = None
        if params.get("mipvpn_charon", True):
            try:
                from controller.adapters.strongswan import CharonProcess
                self.charon = CharonProcess(self, params["mipvpn_run_dir"] / "gw",
                                            name=gw.name)
                took = self.charon.start()
                info(f"*** {gw.name}: charon up in {took * 1000:.0f} ms "
                     f"(VICI {self.charon.vici_socket})\n")
            except ImportError as exc:
                warn(f"*** {gw.name}: charon not started ({exc}): run `./run` once (it "
                     "makes .venv), or run mn with .venv/bin/python\n")
                self.charon = None
            except Exception as exc:  # never let mn's error path (killall) run
                error(f"*** {gw.name}: charon failed to start: {exc}\n")
                self.charon = None
        return result

    def terminate(self) -> None:
        charon = getattr(self, "charon", None)
        if charon is not None:
            try:
                charon.stop()
            except Exception as exc:
                warn(f"*** {self.name}: stopping charon: {exc}\n")
        super().terminate()


class MobileNodeHost(Host):  # type: ignore[misc]
    """A mobile node: home address on its interface; runs the MN client."""

    def config(self, **params: Any) -> Any:
        result = super().config(**params)
        mn = params["mipvpn_mobile_node"]
        topo: Topology = params["mipvpn_topology"]
        run_dir: Path = params["mipvpn_run_dir"]
        intf = self.defaultIntf().name
        self.cmd(f"ip addr add {mn.home_address}/32 dev {intf}")
        self.client: subprocess.Popen[bytes] | None = None
        self.key_files: list[Path] = []
        self.events = run_dir / "mn" / f"{mn.name}-events.jsonl"
        if params.get("mipvpn_mn_client", True):
            private_dir(self.events.parent)
            self.events.unlink(missing_ok=True)
            # the keys in 0600 files under a 0700 dir, never on the command line (ps)
            cmd, self.key_files = mn_client_command(_python(), topo, mn.name, intf,
                                                    self.events, run_dir / "mn" / "keys")
            log = open(self.events.with_suffix(".log"), "wb")
            self.client = self.popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     cwd=str(REPO))
            log.close()
            info(f"*** {mn.name}: MN client started ({mn.nai}); events in {self.events}\n")
        return result

    def terminate(self) -> None:
        _stop(getattr(self, "client", None))
        for path in getattr(self, "key_files", []):
            path.unlink(missing_ok=True)
        super().terminate()


class MipvpnTopo(Topo):  # type: ignore[misc]
    """A mipvpn topology YAML as a Mininet topology."""

    def build(self, config: str = str(DEFAULT_CONFIG), run_dir: str = "",
              charon: Any = True, mn_client: Any = True) -> None:
        path = Path(config)
        if not path.is_absolute() and not path.exists():
            path = REPO / path
        topo = load_topology(path)
        rdir = _run_dir(run_dir)
        STATE.update(topology=topo, run_dir=rdir)
        common = {"mipvpn_topology": topo, "mipvpn_run_dir": rdir}
        for name, sw in topo.switches.items():
            self.addSwitch(name, dpid=f"{sw.dpid:016x}", protocols="OpenFlow13")
        for gw in topo.gateways.values():
            self.addHost(gw.name, cls=GatewayHost, ip=None, privateDirs=["/run"],
                         mipvpn_gateway=gw, mipvpn_charon=_truthy(charon), **common)
            for side, suffix in (("core", "core"), ("inside", "in")):
                iface = getattr(gw, side)
                self.addLink(gw.name, iface.switch, port2=iface.port,
                             intfName1=f"{gw.name}-{suffix}", addr1=iface.mac,
                             params1={"ip": iface.cidr})
        for h in topo.hosts.values():
            self.addHost(h.name, ip=h.cidr, mac=h.mac, defaultRoute=f"via {h.gateway}")
            self.addLink(h.name, h.switch, port2=h.port, intfName1=f"{h.name}-eth0",
                         addr1=h.mac)
        for mn in topo.mobile_nodes.values():
            self.addHost(mn.name, cls=MobileNodeHost, ip=None, mac=mn.mac,
                         mipvpn_mobile_node=mn, mipvpn_mn_client=_truthy(mn_client), **common)
            self.addLink(mn.name, mn.attach_switch, port2=mn.attach_port,
                         intfName1=f"{mn.name}-eth0", addr1=mn.mac)
        for link in topo.links:
            self.addLink(link.a_switch, link.b_switch, port1=link.a_port, port2=link.b_port)


def _truthy(value: Any) -> bool:
    return str(value).lower() not in ("0", "false", "no", "off", "")


# ---------------------------------------------------------------- CLI and test


def session_for(net: Any) -> DemoSession:
    """The `move`/`bindings` session over a network `mn` built from MipvpnTopo."""
    from types import SimpleNamespace

    from mininet_scripts import demo as demo_mod
    from mininet_scripts.topo import MipvpnNet
    topo: Topology = STATE["topology"]
    run_dir: Path = STATE["run_dir"]
    url = os.environ.get("MIPVPN_URL", "http://127.0.0.1:8080").rstrip("/")
    token = os.environ.get("MIPVPN_TOKEN") or os.environ.get("MIPVPN_OPERATOR_TOKEN")
    if not token:
        try:
            token = (run_dir / "operator.token").read_text().strip()
        except OSError:
            token = None
    if token and hasattr(demo_mod, "_TOKEN"):
        demo_mod._TOKEN[url] = token
    mnet = MipvpnNet(topo, net, {name: name for name in topo.switches}, run_dir, "secure")
    events = {name: net.get(name).events for name in topo.mobile_nodes}
    return DemoSession(SimpleNamespace(topo=topo, mnet=mnet, rest=url, run_dir=run_dir),
                       events)


class MipvpnMnCLI(MipvpnCLI):
    """What `mn` opens when this file is its --custom file (it reads ``CLI``)."""

    def __init__(self, mininet: Any, **kwargs: Any) -> None:
        super().__init__(mininet, session_for(mininet), **kwargs)


def check_registered_and_ping(net: Any, timeout: float = 30.0) -> None:
    """`--test mipvpn`: wait for every MN's registration, then ping each CN."""
    topo: Topology = STATE["topology"]
    from mininet_scripts.demo import _registered
    for name in topo.mobile_nodes:
        host = net.get(name)
        deadline = time.monotonic() + timeout
        while _registered(host.events, 0) is None:
            if time.monotonic() > deadline:
                error(f"*** {name}: no registration after {timeout:.0f} s "
                      f"(see {host.events.with_suffix('.log')})\n")
                return
            time.sleep(0.1)
        info(f"*** {name}: registered\n")
        for cn in topo.hosts.values():
            out = host.cmd(f"ping -n -c 3 -i 0.2 -W 1 {cn.ip}")
            ok = " 0% packet loss" in out
            info(f"*** {name} -> {cn.name} ({cn.ip}): "
                 f"{'reachable' if ok else 'UNREACHABLE'}\n")
            print(f"mipvpn-test {name} {cn.name} {'ok' if ok else 'fail'}", flush=True)


topos = {"mipvpn": MipvpnTopo}
# Mininet's own RemoteController probes the port with telnet and chokes on OpenFlow's
# HELLO; ours checks with a plain socket.  `--controller remote,...` gets ours.
controllers = {"remote": QuietRemoteController}
tests = {"mipvpn": check_registered_and_ping}
CLI = MipvpnMnCLI
