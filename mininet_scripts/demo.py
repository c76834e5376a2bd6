"""`mipvpn demo`: topology up, the MN registers, moves once, numbers printed.

Everything it starts (private OVS, the controller process, Mininet hosts and
bridges, one charon per gateway, the MN client, the probes) is stopped by PID on
success, failure and Ctrl-C.  Nothing is killed by name.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import secrets
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from controller.adapters.private_files import private_dir, private_file, private_run_dir
from controller.config import Topology, load_topology
from mininet_scripts.demo_io import (_TOKEN, DemoError, _registered, read_events, rest_get,
                                     say, wait_for)
# re-exported: the scenario runner and the CLI's moves read the MN's events with it
from mininet_scripts.demo_io import _last_before as _last_before
from mininet_scripts.demo_io import rest_put  # noqa: F401  (scenario.py imports it from here)
from mininet_scripts.demo_results import PROBE_RATE, print_results, results

LOG = logging.getLogger("mipvpn.demo")
PROBE_PORT = 5001


def _stop_proc(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


class Demo:
    """One run: bring-up, registration, moves, measurement, teardown."""

    def __init__(self, topo: Topology, run_dir: Path, rest: str, of_port: int,
                 processes: list[list[str]] | None = None,
                 topology_file: str | None = None, link_model: str = "carrier") -> None:
        """``processes``: role-key lists run by additional controller processes (a
        split deployment: e.g. ``[["aaaf:domain-b"]]``); the main process runs the
        rest and the OpenFlow side.  ``link_model``: how the emulation moves an MN's
        link (``mininet_scripts.air``: ``carrier`` or ``replug``)."""
        self.link_model = link_model
        # MN -> (switch, port) its moves will take: their cell links made at build
        self.cells: dict[str, list[tuple[str, int]]] = {}
        self.processes = processes or []
        # the controller reads its operator token from the environment (auth.py)
        self.token = secrets.token_urlsafe(32)
        _TOKEN[f"http://{rest}"] = self.token
        self.topology_file = topology_file or topo.source
        self.topo = topo
        self.run_dir = run_dir
        self.rest_addr = rest
        self.rest = f"http://{rest}"
        self.of_port = of_port
        self.stack = ExitStack()
        self.mnet: Any = None
        self.controller: subprocess.Popen[bytes] | None = None
        self.extra_controllers: list[subprocess.Popen[bytes]] = []
        self._split: list[str] = []
        self._controller_starts = 0
        self.charons: dict[str, Any] = {}          # gateway -> CharonProcess
        # supervisor of the charons (issue 5): restarts one that died, by its PID, as
        # systemd would in production; 0 turns it off
        self.watchdog_interval = 0.1
        self.charon_restarts: list[dict[str, Any]] = []
        self._watchdog: threading.Thread | None = None
        self._watchdog_stop = threading.Event()
        # MN -> port on the move's target switch (default: the MN's attach port)
        self.move_ports: dict[str, int] = {}

    # ------------------------------------------------------------ bring-up

    def bring_up(self) -> None:
        from controller.adapters.strongswan import CharonProcess
        from mininet_scripts.ovs import PrivateOvs
        from mininet_scripts.topo import build_network

        t0 = time.monotonic()
        say("starting Open vSwitch (userspace datapath, private run dir)")
        ovs = PrivateOvs(self.run_dir / "ovs")
        ovs.start()
        self.stack.callback(ovs.stop)

        split = [r for roles in self.processes for r in roles]
        for i, roles in enumerate(self.processes, 1):
            say(f"starting controller process {i + 1} with roles {', '.join(roles)}")
            log = open(self.run_dir / f"controller-{i + 1}.log", "wb")
            self.stack.callback(log.close)
            proc = subprocess.Popen(
                [sys.executable, "-m", "controller.cli", "controller",
                 "--config", self.topology_file, "--run-dir", str(self.run_dir),
                 "--db", str(self.run_dir / f"vpn-{i + 1}.db"), "--rest", "off",
                 "--no-openflow", "--roles", ",".join(roles)],
                stdout=log, stderr=subprocess.STDOUT,
                env=self._env())
            self.stack.callback(_stop_proc, proc)
            self.extra_controllers.append(proc)
        say("starting the controller (os-ken + AAA/HA/FA roles + REST)")
        self._split = split
        self.start_controller()

        say("building the Mininet network")
        access = [s for s, c in self.topo.switches.items() if c.role == "access"]
        cells = {mn: list(v) for mn, v in self.cells.items()}
        for mn, port in self.move_ports.items():
            cells.setdefault(mn, []).extend((s, port) for s in access)
        self.mnet = build_network(self.topo, controller_port=self.of_port,
                                  run_dir=self.run_dir / "net", link_model=self.link_model,
                                  cells=cells)
        say(f"link model: {self.link_model} (docs/decisions.md, issue 14)")
        self.stack.callback(self.mnet.stop)
        self.mnet.start()
        took = self.mnet.wait_switches_connected(timeout=20)
        say(f"{len(self.topo.switches)} switches connected in {took * 1000:.0f} ms")

        say("starting one charon per gateway")
        for name in self.topo.gateways:
            charon = CharonProcess(self.mnet.host(name), self.run_dir / "gw", name=name)
            charon.start()
            self.charons[name] = charon
            self.stack.callback(charon.stop)
        if self.watchdog_interval:
            self.start_watchdog()   # stopped before the charons (ExitStack: LIFO)
        wait_for("the static CN-GW <-> HA tunnel", self._static_tunnels_up, 30)
        say(f"static tunnels up; bring-up took {time.monotonic() - t0:.1f} s")

    def start_controller(self) -> float:
        """Start the main controller process (again, after ``kill_controller``: same
        run directory, same VPN database, so it restores its state).  Returns the
        seconds until its REST API answered."""
        t0 = time.monotonic()
        self._controller_starts += 1
        n = self._controller_starts
        log = open(self.run_dir / ("controller.log" if n == 1 else f"controller.{n}.log"),
                   "wb")
        self.stack.callback(log.close)
        cmd = [sys.executable, "-m", "controller.cli", "controller",
               "--config", self.topology_file, "--run-dir", str(self.run_dir),
               "--of-listen", f"127.0.0.1:{self.of_port}", "--rest", self.rest_addr]
        if self._split:
            cmd += ["--exclude-roles", ",".join(self._split)]
        self.controller = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT,
            env=self._env())
        self.stack.callback(_stop_proc, self.controller)
        wait_for("the controller's REST API", lambda: self._controller_alive()
                 and rest_get(self.rest, "/v1/topology"), 30)
        return time.monotonic() - t0

    def kill_controller(self, sig: int = signal.SIGKILL) -> None:
        """Kill the main controller process by its PID (a crash: SIGKILL, nothing
        flushed on the way out) and reap it."""
        assert self.controller is not None
        self.controller.send_signal(sig)
        self.controller.wait(10)

    def start_watchdog(self) -> None:
        """A thread that restarts a charon whose process has exited (by the PID the
        ``CharonProcess`` holds; never by name).  Each restart is recorded in
        ``charon_restarts`` (gateway, old PID, new PID, seconds to a VICI answer)."""
        def watch() -> None:
            while not self._watchdog_stop.wait(self.watchdog_interval):
                for name, charon in list(self.charons.items()):
                    proc = charon.proc
                    if proc is None or proc.poll() is None:
                        continue
                    old_pid, code = proc.pid, proc.returncode
                    t_seen = time.time()
                    try:
                        took = charon.start()
                    except Exception as exc:  # noqa: BLE001 - tried again next round
                        LOG.error("watchdog: restarting charon %s failed: %s", name, exc)
                        continue
                    self.charon_restarts.append({
                        "gateway": name, "old_pid": old_pid, "exit": code,
                        "new_pid": charon.pid, "seen_dead_at": t_seen,
                        "start_s": round(took, 3)})
                    say(f"watchdog: charon {name} (pid {old_pid}) exited with {code}; "
                        f"restarted as pid {charon.pid} in {took * 1000:.0f} ms")

        self._watchdog_stop.clear()
        self._watchdog = threading.Thread(target=watch, name="charon-watchdog", daemon=True)
        self._watchdog.start()
        self.stack.callback(self.stop_watchdog)

    def stop_watchdog(self) -> None:
        self._watchdog_stop.set()
        if self._watchdog is not None:
            self._watchdog.join(5)
            self._watchdog = None

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONUNBUFFERED": "1", "MIPVPN_OPERATOR_TOKEN": self.token}

    def _controller_alive(self) -> bool:
        assert self.controller is not None
        if self.controller.poll() is not None:
            raise DemoError(f"controller exited with {self.controller.returncode}; "
                            f"see {self.run_dir / 'controller.log'}")
        for i, proc in enumerate(self.extra_controllers, 1):
            if proc.poll() is not None:
                raise DemoError(f"controller process {i + 1} exited with {proc.returncode}; "
                                f"see {self.run_dir / f'controller-{i + 1}.log'}")
        return True

    def _static_tunnels_up(self) -> bool:
        self._controller_alive()
        intended = rest_get(self.rest, "/v1/tunnels")["intended"]
        static = [t for t in intended if t["tunnel_id"].startswith("static/")]
        failed = [t for t in static if t["state"] == "failed"]
        if failed:
            raise DemoError(f"static tunnel failed: {failed[0].get('error')}")
        return bool(static) and any(t["state"] == "up" for t in static)

    # ------------------------------------------------------------ hosts' programs

    def start_mn_client(self, mn_name: str) -> tuple[subprocess.Popen[bytes], Path]:
        host = self.mnet.host(mn_name)
        events = self.run_dir / f"{mn_name}-events.jsonl"
        cmd, key_files = mn_client_command(sys.executable, self.topo, mn_name,
                                           host.defaultIntf().name, events,
                                           self.run_dir / "keys")
        for path in key_files:
            self.stack.callback(path.unlink, missing_ok=True)
        log = open(self.run_dir / f"{mn_name}-client.log", "wb")
        self.stack.callback(log.close)
        proc = host.popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=str(_repo_root()))
        self.stack.callback(_stop_proc, proc)
        return proc, events

    def start_probe(self, host_name: str, bind: str, peer: str, out: Path,
                    port: int = PROBE_PORT, rate: int = PROBE_RATE) -> subprocess.Popen[bytes]:
        host = self.mnet.host(host_name)
        cmd = [sys.executable, "-m", "mininet_scripts.probe", "--bind", bind, "--peer", peer,
               "--port", str(port), "--rate", str(rate), "--duration", "600",
               "--out", str(out)]
        log = open(self.run_dir / f"probe-{host_name}-{port}.log", "wb")
        self.stack.callback(log.close)
        proc = host.popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=str(_repo_root()))
        self.stack.callback(_stop_proc, proc)
        return proc

    # ------------------------------------------------------------ scenario

    def run(self, baseline: str | None = None) -> dict[str, Any]:
        """Register the topology's first MN, probe it, move it once; with ``baseline``
        (an MN of the topology: the plain path, demo_compare.py) that MN too, probed the
        same way on the next port, and both move there and back, the baseline right after
        the user (``res["baseline"]``, ``res["comparison"]``)."""
        topo = self.topo
        mn_name = next(n for n in topo.mobile_nodes if n != baseline)
        mn = topo.mobile_nodes[mn_name]
        cn_name = next(iter(topo.hosts))
        cn = topo.hosts[cn_name]
        who = [mn_name] + ([baseline] if baseline else [])

        events_path: dict[str, Path] = {}
        clients: dict[str, subprocess.Popen[bytes]] = {}
        for name in who:
            say(f"{name} ({topo.mobile_nodes[name].nai}) registers through "
                f"{topo.switches[topo.mobile_nodes[name].attach_switch].foreign_agent}")
            clients[name], events_path[name] = self.start_mn_client(name)
        registration_ms: dict[str, float] = {}
        for name in who:
            first = wait_for(f"{name}'s first registration",
                             lambda n=name: _registered(events_path[n], 0), 15)
            rrq0 = next(e for e in read_events(events_path[name]) if e["event"] == "rrq_sent")
            registration_ms[name] = (first["t"] - rrq0["t"]) * 1000.0
            say(f"{name} registered via {first.get('fa') or first.get('coa')} in "
                f"{registration_ms[name]:.1f} ms (RRQ sent -> RRP received at the MN)")

        outs: dict[str, tuple[Path, Path]] = {}
        probes: list[subprocess.Popen[bytes]] = []
        for i, name in enumerate(who):
            m = topo.mobile_nodes[name]
            outs[name] = ((self.run_dir / "probe-mn.json", self.run_dir / "probe-cn.json")
                          if i == 0 else (self.run_dir / f"probe-{name}.json",
                                          self.run_dir / f"probe-cn-{name}.json"))
            probes.append(self.start_probe(cn_name, cn.ip, m.home_address, outs[name][1],
                                           PROBE_PORT + i))
            probes.append(self.start_probe(name, m.home_address, cn.ip, outs[name][0],
                                           PROBE_PORT + i))
        wait_for("probe traffic", lambda: self._probe_flowing(), 10, 0.1)
        time.sleep(1.5)

        moves: dict[str, list[dict[str, Any]]] = {name: [] for name in who}
        targets = [s for s, c in topo.switches.items()
                   if c.role == "access" and s != mn.attach_switch]
        route = targets[:1] + ([mn.attach_switch] if baseline else [])
        current = {name: topo.mobile_nodes[name].attach_switch for name in who}
        for target in route:
            for name in who:
                m = topo.mobile_nodes[name]
                fa_from = topo.switches[current[name]].foreign_agent
                fa_to = topo.switches[target].foreign_agent
                say(f"moving {name}: {current[name]} ({fa_from}) -> {target} ({fa_to})")
                n_reg = sum(1 for e in read_events(events_path[name])
                            if e["event"] == "registered")
                t_move = time.monotonic()
                port = (self.move_ports.get(name, m.attach_port)
                        if target != m.attach_switch else m.attach_port)
                link_s = self.mnet.move_host(name, target, port)
                reg = wait_for(f"{name}'s re-registration via {fa_to}",
                               lambda n=name, k=n_reg: _registered(events_path[n], k), 15)
                moves[name].append({"from": fa_from, "to": fa_to, "t_move": t_move,
                                    "link_move_ms": round(link_s * 1000.0, 3),
                                    "registered": reg})
                current[name] = target
                time.sleep(2.0)

        for proc in probes:
            _stop_proc(proc)
        wait_for("probe results", lambda: all(a.exists() and b.exists()
                                              for a, b in outs.values()), 10)
        handovers = rest_get(self.rest, "/v1/handovers")
        tunnels = rest_get(self.rest, "/v1/tunnels")
        bindings = rest_get(self.rest, "/v1/bindings")
        for proc in clients.values():
            _stop_proc(proc)
        res = results(self.topo.name, moves[mn_name], registration_ms[mn_name],
                            read_events(events_path[mn_name]), *outs[mn_name],
                            self._handovers_of(handovers, mn.nai), tunnels, bindings)
        if baseline:
            from mininet_scripts.demo_compare import compare
            base = results(self.topo.name, moves[baseline], registration_ms[baseline],
                                 read_events(events_path[baseline]), *outs[baseline],
                                 self._handovers_of(handovers, topo.mobile_nodes[baseline].nai),
                                 tunnels, bindings)
            res["mn"], res["smooth_handoff"], res["seamless_handover"] = mn_name, True, True
            res["baseline"] = {"mn": baseline, "nai": topo.mobile_nodes[baseline].nai,
                               "smooth_handoff": False, "seamless_handover": False,
                               **{k: base[k] for k in ("registration_ms", "moves", "probe")}}
            res["comparison"] = compare(res, base)
        return res

    @staticmethod
    def _handovers_of(handovers: list[dict[str, Any]], nai: str) -> list[dict[str, Any]]:
        return [h for h in handovers if h.get("nai", nai) == nai]

    def _probe_flowing(self) -> bool:
        # the probes write only at the end; look at the HA's SA counters instead
        tunnels = rest_get(self.rest, "/v1/tunnels")["gateways"]
        ha = next(n for n, g in self.topo.gateways.items() if g.kind == "home_agent")
        states = tunnels.get(ha, [])
        return isinstance(states, list) and any(
            s.get("packets_in", 0) > 50 for s in states if not
            str(s.get("tunnel_id", "")).startswith("static/"))

    def close(self) -> None:
        self.stack.close()


def mn_client_command(python: str, topo: Topology, mn_name: str, iface: str, events: Path,
                      key_dir: Path) -> tuple[list[str], list[Path]]:
    """The MN client's command line for ``mn_name`` and the key files it names.

    The keys go into files (0600, in ``key_dir``, made 0700), never onto the command
    line, which every user can read (``ps``).  The caller removes the files at
    teardown."""
    mn = topo.mobile_nodes[mn_name]
    ha = topo.gateways[mn.home_agent]
    private_dir(key_dir)
    aaa_file = private_file(key_dir / f"{mn_name}.mn-aaa.key", mn.mn_aaa_key.hex() + "\n")
    files = [aaa_file]
    cmd = [python, "-m", "mininet_scripts.mn_client", "--nai", mn.nai,
           "--home-address", mn.home_address, "--home-agent", ha.core.ip,
           "--spi", str(mn.mn_aaa_spi), "--key-file", str(aaa_file),
           "--iface", iface, "--lifetime", str(mn.lifetime), "--events", str(events)]
    if mn.mn_ha_key:  # the MN-HA security association (RFC 5944 §3.5)
        ha_file = private_file(key_dir / f"{mn_name}.mn-ha.key", mn.mn_ha_key.hex() + "\n")
        files.append(ha_file)
        cmd += ["--ha-spi", str(mn.mn_ha_spi), "--ha-key-file", str(ha_file)]
    profile = topo.vpn_profiles.get(mn.nai)
    if profile is not None and profile.seamless_handover:
        cmd.append("--simultaneous")   # issue 14: S bit, the HA keeps the old binding
    return cmd, files


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def demo_topology(config: str, run_dir: Path
                  ) -> tuple[Topology, str, str, dict[str, int]]:
    """The topology ``config`` with the demo's user on smooth handoff and a plain-path
    MN beside it (demo_compare.py; its keys made for this run), written 0600 into the
    run directory for the controller.  Returns (topology, its file, the baseline MN,
    the ports the two MNs move to)."""
    import yaml

    from controller.config import ConfigError, parse_topology
    from mininet_scripts.demo_compare import CompareError, move_ports, with_plain_baseline
    data = yaml.safe_load(Path(config).read_text())
    try:
        data, user, baseline = with_plain_baseline(data, secrets.token_hex(16),
                                                   secrets.token_hex(16))
        topo = parse_topology(data, f"{config} (with the demo's plain-path MN)")
        ports = move_ports(data, [user, baseline])
    except (CompareError, ConfigError) as exc:
        raise DemoError(str(exc)) from exc
    path = private_file(run_dir / "topology.yaml", yaml.safe_dump(data, sort_keys=False))
    return topo, str(path), baseline, ports


def run_demo(args: Any) -> int:
    if os.geteuid() != 0:
        print("mipvpn demo needs root (Mininet, Open vSwitch, strongSwan): "
              "run it as `sudo ./run demo`", file=sys.stderr)
        return 2
    for tool in ("ovs-vsctl", "mnexec", "/usr/lib/ipsec/charon"):
        if shutil.which(tool) is None and not Path(tool).exists():
            print(f"{tool} not found: run `./run demo`, which installs the Debian packages",
                  file=sys.stderr)
            return 2
    topo = load_topology(args.config)
    run_dir = private_run_dir("mipvpn-")   # 0700: keys, the VPN DB, the token
    baseline = None
    if getattr(args, "cli", False):  # interactive: the topology as written
        demo = Demo(topo, run_dir, args.rest, args.of_port,
                    link_model=getattr(args, "link_model", None) or "carrier")
    else:
        topo, topo_file, baseline, ports = demo_topology(args.config, run_dir)
        demo = Demo(topo, run_dir, args.rest, args.of_port, topology_file=topo_file,
                    link_model=getattr(args, "link_model", None) or "carrier")
        demo.move_ports = ports

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    code = 1
    try:
        demo.bring_up()
        if getattr(args, "cli", False):  # Mininet's CLI + `move`, `bindings` (mn_cli.py)
            from mininet_scripts.mn_cli import run_interactive
            run_interactive(demo)
            return 0
        res = demo.run(baseline)
        print_results(res)
        if getattr(args, "plots", None):
            from mininet_scripts.plots import demo_plots
            for png in demo_plots(res, run_dir / "probe-mn.json", run_dir / "probe-cn.json",
                                  args.plots):
                say(f"plot written to {png}")
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=2))
            say(f"results written to {args.json}")
        code = 0
    except KeyboardInterrupt:
        say("interrupted")
        code = 130
    except DemoError as exc:
        say(f"FAILED: {exc}")
        say(f"logs are in {run_dir}")
        args.keep_dir = True
    finally:
        say("tearing down")
        demo.close()
        if not args.keep_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
    return code
