"""Registration throughput and latency through the full AAA path, without Mininet.

The controller runtime (``controller.runtime.Runtime``: every role, Diameter over
loopback TCP, Mobile IPv4 over UDP) runs in a *separate process* (``--serve``) with
recording gateways and a counting flow sink; this process is the load generator: virtual
mobile nodes (N users seeded into the VPN database) send real Registration Requests
(``controller.loadgen.build_rrq``, MN-AAA authenticated) over UDP to the FAs' ingress
endpoints.  Each one walks FA -> AMR -> AAAF -> AAAH -> HAR -> HA -> HAA -> AMA -> AAAF
-> AMA -> FA -> Registration Reply (six Diameter messages, two tunnel actions, one
flow-mod batch).

Phases (all in one run, so they share the machine's conditions):

- references: one plain python-diameter AMR/AMA hop (its own threaded ``diameter.node``
  runtime both ends, server in a subprocess), and one hop of our asyncio
  ``DiameterNode`` (server in a subprocess): requests/s at saturation and latency at
  concurrency 1;
- saturation: closed loop with W registrations outstanding (W in ``--windows``);
- fixed offered loads (open loop, paced at absolute deadlines): p50/p99/max latency,
  completed rate, timeouts;
- profile: the saturation run again with cProfile on the server's event-loop thread.

    python -m bench.registration [--users 10000] [--loads 100,500,1000,2000]
        [--windows 1,8,32,128] [--duration 3] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import ipaddress
import json
import logging
import os
import pstats
import select
import socket
import struct
import subprocess
import sys
import atexit
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import (DEFAULT_TOPOLOGY, REPO, bench_parser, parse_bench_args,
                          print_machine, pyplot, save_plot, save_results, summary)
from controller.textutil import table
from controller.proto import mip

USER_BASE = ipaddress.IPv4Address("10.64.0.0")
KEY = bytes(range(16))
SPI = 300
RRP = struct.Struct("!BBH4s4sQ")   # type, code, lifetime, home address, HA, identification
#: seconds between two registrations of one user: the FA drops a same-NAI registration
#: within its retransmission hold (controller.core.foreign_agent.IN_PROGRESS_HOLD, 3 s)
def _user_spacing() -> float:
    from controller.core import foreign_agent
    return float(getattr(foreign_agent, "IN_PROGRESS_HOLD", 0.0)) + 0.2


USER_SPACING = _user_spacing()


def user_nai(i: int) -> str:
    return f"user{i}@home.example"


def free_port_topology(path: str | None = None) -> Any:
    from controller.config import parse_topology
    data = yaml.safe_load(Path(path or DEFAULT_TOPOLOGY).read_text())
    for dom in data["domains"].values():
        if "aaa" in dom:
            dom["aaa"]["listen"] = "127.0.0.1:0"
        if "home_agent" in dom:
            dom["home_agent"]["diameter_listen"] = "127.0.0.1:0"
            dom["home_agent"]["mip_listen"] = "127.0.0.1:0"
    return parse_topology(data, "default.yaml (ports 0)")


def fixed_port_topology_file(path: str | None, out_dir: str) -> str:
    """The topology with every Diameter/MIP listener on a free loopback port chosen
    now, written to ``out_dir``: the split deployment's two server processes must
    agree on the addresses (``free_port_topology``'s port 0 is per process)."""
    import socket as _socket
    data = yaml.safe_load(Path(path or DEFAULT_TOPOLOGY).read_text())
    held = []

    def port() -> str:
        s = _socket.socket()
        s.bind(("127.0.0.1", 0))
        held.append(s)
        return f"127.0.0.1:{s.getsockname()[1]}"
    for dom in data["domains"].values():
        if "aaa" in dom:
            dom["aaa"]["listen"] = port()
        if "home_agent" in dom:
            dom["home_agent"]["diameter_listen"] = port()
            dom["home_agent"]["mip_listen"] = port()
    for s in held:
        s.close()
    out = Path(out_dir) / "topology.yaml"
    out.write_text(yaml.safe_dump(data))
    return str(out)


#: ``--split``: the home domain's roles in one process, the visited side in another
#: (docs/deployment.md "placing roles"): the deployment for more than one core.
HOME_ROLES = ("aaah", "ha")


def placement(topo: Any, where: str | None) -> list[str] | None:
    """Role keys for ``where`` = ``home`` (AAAH, HA, CN-GWs) or ``visited`` (AAAFs,
    FAs); None = every role."""
    if where is None:
        return None
    from controller.adapters.store import VpnStore
    from controller.core.roles import build_roles
    every = build_roles(topo, VpnStore(":memory:")).roles
    home = [k for k in every if k in HOME_ROLES or k.startswith("cngw:")]
    return home if where == "home" else [k for k in every if k not in home]


# =================================================================== server processes


def _reply(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve_runtime(users: int, topology: str | None, what_if: list[str],
                  where: str | None = None, state_url: str | None = None) -> int:
    """The controller runtime with recording gateways; commands as JSON lines on stdin.

    ``what_if`` names optimisations to try *in this benchmark process only* (never in
    the product): ``qos-scan`` skips the runtime's per-flow-batch QoS scan over every
    visitor of the FA (``flows.visitors_qos``); its result is empty for the benchmark's
    users (their profiles set no QoS), so the flows sent are the same; ``gc-freeze``
    also moves the warm-up's objects (10,000 bindings and caches) out of the cyclic
    GC's reach.  The server tunes the GC after start-up as ``mipvpn controller`` does
    (``launcher.tune_gc``) unless ``no-gc-tuning``."""
    from controller.core.aaa_home import Destination, UserRecord, VpnProfile
    from controller.core.vpn import QosSpec, SecuritySpec
    from controller.testing.gateways import RecordingGateway
    from controller.runtime import Runtime

    class CountingGateway(RecordingGateway):
        """RecordingGateway without the ever-growing log."""

        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.adds = self.removes = 0

        def add_tunnel(self, side: Any, timeout: float = 5.0) -> float:
            self.adds += 1
            return 0.0

        def remove_tunnel(self, tunnel_id: str) -> None:
            self.removes += 1

    if "qos-scan" in what_if:
        from controller.core import flows
        flows.visitors_qos = lambda visitors, gateway: {}  # type: ignore[assignment]
    if where is None:
        topo = free_port_topology(topology)
    else:                       # split: the driver fixed the ports in the file
        from controller.config import load_topology
        topo = load_topology(topology)
    gws: dict[str, CountingGateway] = {}

    def factory(name: str) -> CountingGateway:
        gws[name] = CountingGateway(name)
        return gws[name]

    mods = {"batches": 0}

    def sink(dpid: int, m: Any) -> None:
        mods["batches"] += 1

    run_dir = tempfile.mkdtemp(prefix="mipvpn-bench-")
    atexit.register(shutil.rmtree, run_dir, True)  # the server is ended by a signal
    # restart persistence (issue 5): to a file database (WAL) as `mipvpn controller`
    # does; ``state-memory`` keeps it in memory, ``no-persist`` turns it off: the
    # difference is what persisting costs a registration
    state = state_url or (None if "state-memory" in what_if else str(Path(run_dir) / "state.db"))
    rt = Runtime(topo, run_dir, ":memory:", rest=None, gateway_factory=factory,
                 flow_sink=sink, fa_ingress=True, advertise=False,
                 roles=placement(topo, where),
                 persist="no-persist" not in what_if, state_path=state)
    conf = next(iter(topo.vpn_profiles.values()), None)
    dests = tuple(Destination(d.prefix, d.gateway) for d in conf.destinations) if conf \
        else ()
    sec = SecuritySpec(conf.security.ike, conf.security.esp) if conf else SecuritySpec()
    for i in range(users if where != "visited" else 0):   # the VPN DB is the home's
        nai = user_nai(i)
        rt.store.put_user(UserRecord(nai, str(USER_BASE + i), "ha", SPI, KEY))
        rt.store.put_profile(VpnProfile(nai, dests, sec, QosSpec()))
    rt.start()
    if "no-gc-tuning" not in what_if:   # as `mipvpn controller` does after start-up
        from controller.launcher import tune_gc
        tune_gc()
    ok = asyncio.run_coroutine_threadsafe(rt.wait_links(), rt.loop).result(15)
    if not ok:
        _reply({"error": "Diameter links did not come up"})
        return 1
    # stall detectors: event-loop lag (a 5 ms sleep's lateness) and the cyclic GC
    lag: list[float] = []
    gc_stats = {"collections": [0, 0, 0], "ms": [0.0, 0.0, 0.0], "t0": 0.0}

    async def lag_monitor() -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.005)
            lag.append((loop.time() - t - 0.005) * 1000.0)

    def gc_callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_stats["t0"] = time.perf_counter()
        else:
            g = info["generation"]
            gc_stats["collections"][g] += 1  # type: ignore[index]
            gc_stats["ms"][g] += (time.perf_counter() - gc_stats["t0"]) * 1000.0  # type: ignore
    import gc
    gc.callbacks.append(gc_callback)
    asyncio.run_coroutine_threadsafe(lag_monitor(), rt.loop)
    ha_core = topo.gateways["ha"].core.ip
    _reply({"ready": True, "pid": os.getpid(), "ha": ha_core,
            "ingress": {k: list(ep.address) for k, ep in rt.ingress.items()},
            "coa": {k: topo.gateways[k.split(":", 1)[1]].core.ip for k in rt.ingress}})
    profiler: cProfile.Profile | None = None
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd.get("cmd")
        if op == "stats":
            _reply({"flow_mods": rt.counters["flow_mods"], "flow_batches": mods["batches"],
                    "tunnel_adds": {n: g.adds for n, g in gws.items()},
                    "tunnel_removes": {n: g.removes for n, g in gws.items()},
                    "bindings": len(rt.roles["ha"].bindings) if "ha" in rt.roles else 0,
                    "roles": {k: dict(getattr(r, "counters", {})) for k, r in rt.roles.items()},
                    "diameter": {k: dict(n.counters) for k, n in rt.nodes.items()},
                    "loop_lag_ms": summary(list(lag), 2),
                    "replication": rt.replication.summary() if rt.replication else None,
                    "gc": {"collections": list(gc_stats["collections"]),  # type: ignore
                           "ms": [round(x, 1) for x in gc_stats["ms"]]}})  # type: ignore
            if cmd.get("reset"):
                lag.clear()
                gc_stats["collections"] = [0, 0, 0]
                gc_stats["ms"] = [0.0, 0.0, 0.0]
        elif op == "profile-start":
            profiler = cProfile.Profile()
            rt.loop.call_soon_threadsafe(profiler.enable)
            _reply({"ok": True})
        elif op == "profile-stop":
            assert profiler is not None
            done = threading.Event()

            def stop(p: cProfile.Profile = profiler) -> None:
                p.disable()
                done.set()
            rt.loop.call_soon_threadsafe(stop)
            done.wait(5)
            profiler.dump_stats(cmd["file"])
            profiler = None
            _reply({"ok": True, "file": cmd["file"]})
        elif op == "freeze":
            if "gc-freeze" in what_if:
                import gc as _gc
                _gc.collect()
                _gc.freeze()
            _reply({"ok": True})
        elif op == "quit":
            break
    rt.stop()
    _reply({"bye": True})
    return 0


def _amr_fields() -> dict[str, Any]:
    """A realistic AMR (what FA1 sends for user 0): shared by both reference hops."""
    rrq = build_user_rrq(0, "10.0.0.11", "10.0.0.1", mip.ntp_identification(time.time()))
    input_len, auth_len, auth_off = mip.mn_aaa_auth_offsets(rrq)
    return {"nai": user_nai(0), "rrq": rrq, "input_len": input_len, "auth_len": auth_len,
            "auth_off": auth_off}


def serve_ref_ours() -> int:
    """One hop of our asyncio DiameterNode: answers every AMR with an AMA."""
    from controller.adapters.diameter_peer import DiameterNode
    from controller.proto import diameter as dia

    async def main() -> None:
        async def handler(req: Any, conn: Any) -> Any:
            return dia.AmAnswer(session_id=req.session_id, result_code=2001,
                                origin_host="aaah.home.example", origin_realm="home.example",
                                user_name=req.user_name, reg_reply=bytes(28),
                                home_address=req.home_address,
                                home_agent_address=req.home_agent_address)
        node = DiameterNode("aaah.home.example", "home.example", handler=handler)
        port = await node.listen("127.0.0.1", 0)
        _reply({"ready": True, "port": port, "pid": os.getpid()})
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await node.close()
    asyncio.run(main())
    return 0


def serve_ref_pydiameter() -> int:
    """One hop of python-diameter's own threaded Node: answers AMR with AMA."""
    from diameter.message.commands import AaMobileNodeAnswer
    from diameter.message.constants import E_RESULT_CODE_DIAMETER_SUCCESS
    from diameter.node import Node
    from diameter.node.application import SimpleThreadingApplication

    def handle(app: Any, message: Any) -> Any:
        answer: AaMobileNodeAnswer = message.to_answer()
        answer.session_id = message.session_id
        answer.origin_host = b"aaah.home.example"
        answer.origin_realm = b"home.example"
        answer.result_code = E_RESULT_CODE_DIAMETER_SUCCESS
        answer.auth_application_id = 2
        answer.user_name = message.user_name
        answer.mip_reg_reply = bytes(28)
        return answer

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    node = Node("aaah.home.example", "home.example", ip_addresses=["127.0.0.1"],
                tcp_port=port)
    node.idle_timeout = 3600
    peer = node.add_peer("aaa://fa1.a.example", "a.example")
    app = SimpleThreadingApplication(2, is_auth_application=True, request_handler=handle)
    node.add_application(app, [peer])
    node.start()
    _reply({"ready": True, "port": port, "pid": os.getpid()})
    sys.stdin.readline()
    os._exit(0)   # python-diameter's Node.stop joins its threads for ~10 s


# =================================================================== driver side


class Server:
    """A server subprocess of this module, driven through JSON lines."""

    def __init__(self, mode: str, *extra: str) -> None:
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.registration", mode, *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            cwd=str(REPO), env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.info = self.read(30)
        if not self.info.get("ready"):
            raise RuntimeError(f"{mode} server failed: {self.info} {self.stderr()}")

    def read(self, timeout: float = 30) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"server said nothing (exit {self.proc.poll()}): "
                               f"{self.stderr()}")
        return json.loads(line)  # type: ignore[no-any-return]

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]

    def call(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Until the server stops answering backlog (its FA counters stop moving)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            st = self.call(cmd="stats")
            done = sum(sum(c.values()) for k, c in st["roles"].items() if k.startswith("fa:"))
            if done == last:
                return
            last = done
            time.sleep(0.3)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.log.close()


class ServerGroup:
    """``--split``: the home server (AAAH, HA) and the visited server (AAAFs, FAs) as
    one ``Server`` to the driver: commands fan out, statistics are merged."""

    def __init__(self, *extra: str, topology: str | None) -> None:
        self.dir = tempfile.mkdtemp(prefix="mipvpn-bench-split-")
        conf = fixed_port_topology_file(topology, self.dir)
        self.servers: list[Server] = []
        try:   # home first: the visited side's Diameter links go to it
            for where in ("home", "visited"):
                self.servers.append(Server("--serve", "--config", conf, "--where", where,
                                           *extra))
        except BaseException:
            self.close()
            raise
        self.info = dict(self.servers[1].info)
        self.info["pids"] = [srv.info["pid"] for srv in self.servers]

    def call(self, **cmd: Any) -> dict[str, Any]:
        if cmd.get("cmd") == "profile-stop":
            parts = [srv.call(**{**cmd, "file": f"{cmd['file']}.{i}"})
                     for i, srv in enumerate(self.servers)]
            st = pstats.Stats(parts[0]["file"])
            for part in parts[1:]:
                st.add(part["file"])
            st.dump_stats(cmd["file"])
            for part in parts:
                os.unlink(part["file"])
            return {"ok": True, "file": cmd["file"]}
        replies = [srv.call(**cmd) for srv in self.servers]
        if cmd.get("cmd") != "stats":
            return replies[0]
        out: dict[str, Any] = {"per_process": replies}
        for k in ("flow_mods", "flow_batches", "bindings"):
            out[k] = sum(r[k] for r in replies)
        for k in ("tunnel_adds", "tunnel_removes", "roles", "diameter"):
            out[k] = {name: v for r in replies for name, v in r[k].items()}
        lags = [r["loop_lag_ms"] for r in replies if r.get("loop_lag_ms")]
        out["loop_lag_ms"] = max(lags, key=lambda x: x.get("max") or 0) if lags else None
        out["gc"] = {"collections": [sum(x) for x in zip(*(r["gc"]["collections"]
                                                          for r in replies))],
                     "ms": [round(sum(x), 1) for x in zip(*(r["gc"]["ms"] for r in replies))]}
        return out

    def wait_idle(self, timeout: float = 60.0) -> None:
        for srv in self.servers:
            srv.wait_idle(timeout)

    def close(self) -> None:
        for srv in reversed(self.servers):
            srv.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def build_user_rrq(i: int, coa: str, ha: str, ident: int) -> bytes:
    from controller.loadgen import build_rrq
    return build_rrq(user_nai(i), str(USER_BASE + i), ha, coa, SPI, KEY, ident)


def process_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes ``pids`` used so far (/proc; all threads)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick   # utime, stime
    return total


class LoadGenerator:
    """Virtual MNs over UDP: closed loop (window) or open loop (rate)."""

    def __init__(self, info: dict[str, Any], users: int, sockets: int = 4) -> None:
        self.targets = [(tuple(info["ingress"][k]), info["coa"][k])
                        for k in sorted(info["ingress"])]
        self.ha = info["ha"]
        self.users = users
        self.socks = []
        for _ in range(sockets):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            self.socks.append(s)
        self.poller = select.poll()
        self.by_fd = {s.fileno(): s for s in self.socks}
        for s in self.socks:
            self.poller.register(s, select.POLLIN)
        self.next_user = 0
        self.busy: dict[bytes, tuple[int, int, float]] = {}  # home addr -> (user, ident, t)
        self.last_sent = [-1e9] * users
        # the server process(es) whose CPU time a closed loop divides by registrations
        self.server_pids: list[int] = list(info.get("pids") or [info["pid"]])
        self._last_ident = 0

    def close(self) -> None:
        for s in self.socks:
            s.close()

    def _send_one(self) -> bool:
        """Send the next user's RRQ; False when no user may register yet (each waits
        ``USER_SPACING`` s after its last registration and for its reply)."""
        now = time.perf_counter()
        for _ in range(min(self.users, 64)):
            i = self.next_user
            if now - self.last_sent[i] < USER_SPACING:
                return False          # round robin: everyone after i is more recent
            self.next_user = (self.next_user + 1) % self.users
            home = (USER_BASE + i).packed
            if home not in self.busy:
                break
        else:
            return False
        self.last_sent[i] = now
        dst, coa = self.targets[i % len(self.targets)]
        ident = max(mip.ntp_identification(time.time()), self._last_ident + 256)
        self._last_ident = ident
        raw = build_user_rrq(i, coa, self.ha, ident)
        t = time.perf_counter()
        self.busy[home] = (i, ident, t)
        self.socks[i % len(self.socks)].sendto(raw, dst)
        return True

    def _receive(self, timeout_ms: int, lat: list[float], codes: dict[int, int]) -> int:
        got = 0
        for fd, _ev in self.poller.poll(timeout_ms):
            s = self.by_fd[fd]
            while True:
                try:
                    data = s.recv(2048)
                except (BlockingIOError, InterruptedError):
                    break
                t = time.perf_counter()
                if len(data) < RRP.size:
                    continue
                _type, code, _life, home, _ha, ident = RRP.unpack_from(data)
                entry = self.busy.get(home)
                if entry is None or entry[1] != ident:
                    continue
                del self.busy[home]
                lat.append(t - entry[2])
                codes[code] = codes.get(code, 0) + 1
                got += 1
        return got

    def _drain(self, lat: list[float], codes: dict[int, int], wait: float) -> int:
        deadline = time.perf_counter() + wait
        while self.busy and time.perf_counter() < deadline:
            self._receive(20, lat, codes)
        lost = len(self.busy)
        self.busy.clear()
        return lost

    def closed_loop(self, window: int, duration: float, warmup: float = 0.5
                    ) -> dict[str, Any]:
        lat: list[float] = []
        codes: dict[int, int] = {}
        t_start = time.perf_counter()
        t_measure = t_start + warmup
        t_end = t_measure + duration
        done_at_measure = 0
        cpu0 = (process_cpu_s(self.server_pids), time.process_time())
        while len(self.busy) < window and self._send_one():
            pass
        measuring = False
        while True:
            now = time.perf_counter()
            if not measuring and now >= t_measure:
                measuring = True
                lat.clear()
                codes.clear()
                done_at_measure = 0
                cpu0 = (process_cpu_s(self.server_pids), time.process_time())
            if now >= t_end:
                break
            got = self._receive(5 if len(self.busy) < window else 50, lat, codes)
            done_at_measure += got
            while len(self.busy) < window and self._send_one():
                pass
        elapsed = time.perf_counter() - t_measure
        completed = len(lat)
        server_cpu = process_cpu_s(self.server_pids) - cpu0[0]
        client_cpu = time.process_time() - cpu0[1]
        lost = self._drain([], {}, 5.0)
        ms = [x * 1000 for x in lat]
        per = max(completed, 1)
        return {"window": window, "rate": round(completed / elapsed, 1),
                "completed": completed, "codes": codes, "unanswered": lost,
                "latency_ms": summary(ms),
                # CPU time per registration: the figure that is stable on a noisy machine
                "server_cpu_us_per_reg": round(server_cpu / per * 1e6, 1),
                "loadgen_cpu_us_per_reg": round(client_cpu / per * 1e6, 1)}

    def open_loop(self, rate: float, duration: float) -> dict[str, Any]:
        lat: list[float] = []
        codes: dict[int, int] = {}
        interval = 1.0 / rate
        start = time.perf_counter()
        end = start + duration
        k = 0
        skipped = 0
        while True:
            now = time.perf_counter()
            while k * interval + start <= now and k * interval + start < end:
                if not self._send_one():
                    skipped += 1
                k += 1
                now = time.perf_counter()
            if now >= end:
                break
            wake = start + k * interval
            self._receive(max(0, int((wake - time.perf_counter()) * 1000)), lat, codes)
        sent = k - skipped
        lost = self._drain(lat, codes, 3.0)
        elapsed = time.perf_counter() - start
        ms = [x * 1000 for x in lat]
        return {"offered": rate, "sent": sent, "completed": len(lat),
                "achieved_rate": round(len(lat) / duration, 1), "codes": codes,
                "unanswered": lost, "user_busy_skips": skipped,
                "elapsed_s": round(elapsed, 2), "latency_ms": summary(ms)}


# ----------------------------------------------------------------- reference hops


def ref_ours(duration: float, windows: list[int]) -> dict[str, Any]:
    from controller.adapters.diameter_peer import DiameterNode
    from controller.proto import diameter as dia
    srv = Server("--serve-ref-ours")
    f = _amr_fields()
    out: dict[str, Any] = {"name": "our DiameterNode, one AMR/AMA hop (asyncio)"}

    async def run() -> None:
        node = DiameterNode("fa1.a.example", "a.example")
        conn = await node.connect("127.0.0.1", srv.info["port"])
        seq = iter(range(1 << 30))

        def amr() -> Any:
            return dia.AmRequest(
                session_id=f"fa1.a.example;1;{next(seq)}", origin_host="fa1.a.example",
                origin_realm="a.example", destination_realm="home.example",
                user_name=f["nai"], reg_request=f["rrq"], mn_aaa_spi=SPI,
                auth_input_length=f["input_len"], authenticator_length=f["auth_len"],
                authenticator_offset=f["auth_off"], home_address=str(USER_BASE),
                home_agent_address="10.0.0.1", feature_vector=4, foreign_agent="fa1")

        for w in windows:
            lat: list[float] = []
            stop = time.perf_counter() + duration

            async def worker() -> None:
                while time.perf_counter() < stop:
                    t = time.perf_counter()
                    await node.request(amr(), peer=conn)
                    lat.append(time.perf_counter() - t)
            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(w)))
            el = time.perf_counter() - t0
            out[f"window_{w}"] = {"rate": round(len(lat) / el, 1),
                                  "latency_ms": summary([x * 1000 for x in lat])}
        await node.close()
    try:
        asyncio.run(run())
    finally:
        srv.close()
    return out


def ref_pydiameter(duration: float, windows: list[int]) -> dict[str, Any]:
    """python-diameter both ends, each in its own process (client: ``--ref-client``)."""
    srv = Server("--serve-ref-pydiameter")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.registration", "--ref-client",
             json.dumps({"port": srv.info["port"], "duration": duration,
                         "windows": windows})],
            capture_output=True, text=True, cwd=str(REPO), timeout=60 + 4 * duration)
    finally:
        srv.close()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"python-diameter client failed: {proc.stderr[-1500:]}")
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def ref_client_pydiameter(cfg: dict[str, Any]) -> int:
    from diameter.message.avp.grouped import MipMnAaaAuth
    from diameter.message.commands import AaMobileNodeRequest
    from diameter.node import Node
    from diameter.node.application import SimpleThreadingApplication
    duration, windows = float(cfg["duration"]), list(cfg["windows"])
    f = _amr_fields()
    out: dict[str, Any] = {"name": "python-diameter Node, one AMR/AMA hop (threaded)"}
    node = Node("fa1.a.example", "a.example")
    node.idle_timeout = 3600
    peer = node.add_peer(f"aaa://aaah.home.example:{cfg['port']};transport=tcp",
                         "home.example", ip_addresses=["127.0.0.1"], is_persistent=True,
                         is_default=True)
    app = SimpleThreadingApplication(2, is_auth_application=True)
    node.add_application(app, [peer])
    node.start()
    app.wait_for_ready(10)
    counter = iter(range(1 << 30))
    lock = threading.Lock()

    def amr() -> Any:
        with lock:
            n = next(counter)
        m = AaMobileNodeRequest()
        m.session_id = f"fa1.a.example;1;{n}"
        m.auth_application_id = 2
        m.origin_host = b"fa1.a.example"
        m.origin_realm = b"a.example"
        m.destination_realm = b"home.example"
        m.user_name = f["nai"]
        m.mip_reg_request = f["rrq"]
        m.mip_mn_aaa_auth = MipMnAaaAuth(SPI, f["input_len"], f["auth_len"], f["auth_off"])
        m.mip_feature_vector = 4
        return m

    for w in windows:
        lat: list[float] = []
        stop = time.perf_counter() + duration

        def worker() -> None:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                app.send_request(amr(), timeout=5)
                lat.append(time.perf_counter() - t)
        threads = [threading.Thread(target=worker) for _ in range(w)]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        el = time.perf_counter() - t0
        out[f"window_{w}"] = {"rate": round(len(lat) / el, 1),
                              "latency_ms": summary([x * 1000 for x in lat])}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    os._exit(0)   # Node.stop joins its threads for ~10 s


# ----------------------------------------------------------------- profile


def profile_top(path: str, n: int = 25) -> dict[str, Any]:
    st = pstats.Stats(path)
    total = st.total_tt  # type: ignore[attr-defined]
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{_short(file)}:{line}({func})", "calls": nc,
                     "tottime_s": round(tt, 4), "cumtime_s": round(ct, 4)})
    by_tt = sorted(rows, key=lambda r: -r["tottime_s"])[:n]
    by_ct = sorted(rows, key=lambda r: -r["cumtime_s"])[:n]
    buf = io.StringIO()
    pstats.Stats(path, stream=buf).sort_stats("tottime").print_stats(n)
    return {"total_s": round(total, 3), "by_tottime": by_tt, "by_cumtime": by_ct,
            "text": buf.getvalue()}


def _short(file: str) -> str:
    for marker in ("/site-packages/", "/lib/python3.11/", str(REPO) + "/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def group_profile(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Own time per area (python-diameter codec, our codec, asyncio, roles, ...)."""
    areas: dict[str, float] = {}
    for r in rows:
        f = r["function"]
        if f.startswith("diameter/"):
            a = "python-diameter (encode)"
        elif f.startswith("controller/proto/diameter"):
            a = "controller/proto/diameter"
        elif f.startswith("controller/proto/mip"):
            a = "controller/proto/mip"
        elif f.startswith("controller/adapters/diameter_peer"):
            a = "controller/adapters/diameter_peer"
        elif f.startswith("controller/core"):
            a = "controller/core (roles)"
        elif f.startswith("controller/runtime"):
            a = "controller/runtime"
        elif f.startswith("controller/metrics") or f.startswith("prometheus_client"):
            a = "metrics (prometheus_client)"
        elif f.startswith("asyncio/") or "selector" in f or f.startswith("selectors"):
            a = "asyncio / selectors"
        elif "sqlite" in f or f.startswith("controller/adapters/store"):
            a = "VPN store (sqlite)"
        elif f.startswith("dataclasses") or "dataclasses" in f:
            a = "dataclasses.replace"
        elif f.startswith("~:0(<built-in method _socket") or "socket" in f:
            a = "sockets"
        elif f.startswith("logging"):
            a = "logging"
        else:
            a = "other"
        areas[a] = areas.get(a, 0.0) + r["tottime_s"]
    return dict(sorted(((k, round(v, 3)) for k, v in areas.items()), key=lambda kv: -kv[1]))


# ----------------------------------------------------------------- orchestration


def run(users: int, loads: list[float], windows: list[int], duration: float,
        topology: str | None, profile: bool, references: bool,
        what_if: str = "", split: bool = False) -> dict[str, Any]:
    res: dict[str, Any] = {"users": users, "duration_s": duration, "what_if": what_if,
                           "split": split}
    if references:
        print("reference: python-diameter Node, one AMR/AMA hop ...", flush=True)
        res["ref_python_diameter"] = ref_pydiameter(min(duration, 2.0), [1, 8])
        print("reference: our DiameterNode, one AMR/AMA hop ...", flush=True)
        res["ref_diameter_node"] = ref_ours(min(duration, 2.0), [1, 8])
        for k in ("ref_python_diameter", "ref_diameter_node"):
            r = res[k]
            print(f"  {r['name']}: {r['window_1']['rate']:,.0f}/s at 1 outstanding "
                  f"(p50 {r['window_1']['latency_ms']['median']} ms), "
                  f"{r['window_8']['rate']:,.0f}/s at 8", flush=True)
    extra = ["--users", str(users), *(["--what-if", what_if] if what_if else [])]
    srv: Server | ServerGroup = (
        ServerGroup(*extra, topology=topology) if split else
        Server("--serve", *extra, *(["--config", topology] if topology else [])))
    gen = LoadGenerator(srv.info, users)
    try:
        print("warm-up (every user registers once) ...", flush=True)
        gen.closed_loop(16, max(1.0, min(users / 300.0, 30.0)), warmup=0.0)
        srv.wait_idle()
        srv.call(cmd="freeze")
        before = srv.call(cmd="stats")
        res["saturation"] = []
        for w in windows:
            srv.call(cmd="stats", reset=True)
            r = gen.closed_loop(w, duration)
            _server_view(r, srv.call(cmd="stats"))
            srv.wait_idle()
            res["saturation"].append(r)
            print(f"  closed loop, {w:>4} outstanding: {r['rate']:>7,.0f} registrations/s  "
                  f"p50 {r['latency_ms']['median']} ms  p99 {r['latency_ms']['p99']}"
                  f" ms  codes {r['codes']}  CPU/registration: server "
                  f"{r['server_cpu_us_per_reg']} us, load generator "
                  f"{r['loadgen_cpu_us_per_reg']} us", flush=True)
        res["open_loop"] = []
        best_rate = max(r["rate"] for r in res["saturation"])
        for rate in loads:
            if rate > 2.0 * best_rate:
                print(f"  offered {rate:>6,.0f}/s: skipped (more than twice the saturation "
                      f"rate: the backlog would take minutes to drain)", flush=True)
                res["open_loop"].append({"offered": rate, "skipped": "above saturation"})
                continue
            srv.call(cmd="stats", reset=True)
            r = gen.open_loop(rate, duration)
            _server_view(r, srv.call(cmd="stats"))
            srv.wait_idle()
            res["open_loop"].append(r)
            lm = r["latency_ms"]
            print(f"  offered {rate:>6,.0f}/s: completed {r['achieved_rate']:>7,.0f}/s  "
                  f"p50 {lm['median']} ms  p99 {lm['p99']} ms  max {lm['max']} ms  "
                  f"unanswered {r['unanswered']}; server loop lag max "
                  f"{(r['server_loop_lag_ms'] or {}).get('max')} ms, GC "
                  f"{(r['server_gc'] or {}).get('collections')} "
                  f"{(r['server_gc'] or {}).get('ms')} ms", flush=True)
        after = srv.call(cmd="stats")
        done = sum(r.get("completed", 0) for r in res["saturation"] + res["open_loop"])
        res["server_counters"] = after
        fm = after["flow_mods"] - before["flow_mods"]
        res["flow_mods_per_registration"] = round(fm / max(1, done), 2)
        if profile:
            best = min(8, max(res["saturation"], key=lambda r: r["rate"])["window"])
            prof_file = os.path.join(tempfile.gettempdir(), f"mipvpn-reg-{os.getpid()}.prof")
            srv.call(cmd="profile-start")
            r = gen.closed_loop(best, duration)
            srv.call(cmd="profile-stop", file=prof_file)
            top = profile_top(prof_file)
            top["rate_under_profiler"] = r["rate"]
            top["registrations"] = r["completed"]
            top["areas_s"] = group_profile(
                [x for x in _all_rows(prof_file)])
            res["profile"] = top
            per = 1e6 * top["total_s"] / max(1, r["completed"] + 0.5 * best)
            print(f"profile (server loop thread, window {best}): {top['total_s']:.2f} s "
                  f"CPU for {r['completed']} registrations (~{per:.0f} us each under "
                  f"cProfile)", flush=True)
            for area, s in top["areas_s"].items():
                print(f"    {area:36s} {s:7.3f} s", flush=True)
            os.unlink(prof_file)
    finally:
        gen.close()
        srv.close()
    return res


def _server_view(r: dict[str, Any], st: dict[str, Any]) -> None:
    """Attach the server's stall detectors for the phase just run."""
    r["server_loop_lag_ms"] = st.get("loop_lag_ms")
    r["server_gc"] = st.get("gc")


def _all_rows(path: str) -> list[dict[str, Any]]:
    st = pstats.Stats(path)
    return [{"function": f"{_short(file)}:{line}({func})", "tottime_s": tt}
            for (file, line, func), (_cc, _nc, tt, _ct, _c) in st.stats.items()]  # type: ignore[attr-defined]


def plot(res: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    ol = [r for r in res.get("open_loop", []) if "skipped" not in r]
    if ol:
        offered = [r["offered"] for r in ol]
        a.plot(offered, [r["achieved_rate"] for r in ol], "o-", label="completed/s")
        a.plot(offered, offered, ":", color="grey", label="offered")
        a.set_xlabel("offered load (registrations/s)")
        a.set_ylabel("registrations/s")
        ax2 = a.twinx()
        ax2.plot(offered, [r["latency_ms"]["p99"] or 0 for r in ol], "s--", color="C3",
                 label="p99 latency")
        ax2.plot(offered, [r["latency_ms"]["median"] or 0 for r in ol], "^--", color="C2",
                 label="p50 latency")
        ax2.set_ylabel("latency (ms)")
        ax2.set_yscale("log")
        a.legend(loc="upper left")
        ax2.legend(loc="lower right")
        a.set_title("full registrations: throughput vs load")
    sat = res.get("saturation", [])
    if sat:
        b.plot([r["window"] for r in sat], [r["rate"] for r in sat], "o-")
        b.set_xscale("log", base=2)
        b.set_yscale("log")
        b.set_xlabel("registrations outstanding (closed loop)")
        b.set_ylabel("registrations/s (log)")
        b.set_title("saturation")
        for k, style in (("ref_python_diameter", "C1--"), ("ref_diameter_node", "C2--")):
            if k in res:
                best = max(v["rate"] for kk, v in res[k].items() if kk.startswith("window"))
                b.axhline(best, color=style[:2], linestyle="--",  # one hop = 2 messages
                          label=f"{'python-diameter' if 'python' in k else 'DiameterNode'}"
                                f" 1 hop: {best:,.0f}/s")
        b.axhline(2000, color="grey", linestyle=":", label="target 2,000/s")
        b.legend(fontsize=8)
    save_plot(fig, path)


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser("registration", __doc__)
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--loads", default="100,500,1000,2000",
                    help="offered loads (registrations/s), open loop")
    ap.add_argument("--windows", default="1,8,32,128",
                    help="closed-loop concurrency levels for saturation")
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per phase")
    ap.add_argument("--config", default=None)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--serve-ref-ours", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--serve-ref-pydiameter", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--ref-client", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--split", action="store_true",
                    help="run the controller as two processes: home (AAAH, HA, CN-GWs) "
                         "and visited (AAAFs, FAs), Diameter over loopback TCP between "
                         "them (the deployment for more than one core)")
    ap.add_argument("--where", choices=("home", "visited"), default=None,
                    help=argparse.SUPPRESS)
    ap.add_argument("--log-level", default="WARNING", help="server log level")
    ap.add_argument("--state", default=None, help="server state store: etcd://HOST:PORT "
                    "(issue 17; bench/replicas.py), default a SQLite file")
    ap.add_argument("--what-if", default="",
                    help="comma-separated optimisations tried in the benchmark's server "
                         "process only: qos-scan (skip the O(visitors) QoS scan), "
                         "gc-freeze (gc.freeze() again after the warm-up: the "
                         "server tunes the GC like mipvpn controller, once after "
                         "start-up, unless no-gc-tuning); state-memory (restart "
                         "records in an in-memory database instead of a WAL file as "
                         "mipvpn controller writes), no-persist")
    args = parse_bench_args(ap, argv)
    if args.ref_client:
        return ref_client_pydiameter(json.loads(args.ref_client))
    if args.serve or args.serve_ref_ours or args.serve_ref_pydiameter:
        logging.basicConfig(level=getattr(logging, args.log_level), stream=sys.stderr)
        if args.serve:
            return serve_runtime(args.users, args.config,
                                 [w for w in args.what_if.split(",") if w], args.where,
                                 args.state)
        return serve_ref_ours() if args.serve_ref_ours else serve_ref_pydiameter()
    m = print_machine()
    loads = [float(x) for x in args.loads.split(",") if x]
    windows = [int(x) for x in args.windows.split(",") if x]
    where = ("two processes (home: AAAH, HA; visited: AAAFs, FAs)" if args.split
             else "a separate process")
    print(f"registration: {args.users:,} users, controller in {where}, "
          f"{args.duration:g} s per phase", flush=True)
    res = run(args.users, loads, windows, args.duration, args.config,
              profile=not args.no_profile, references=not args.no_reference,
              what_if=args.what_if, split=args.split)
    res = {"benchmark": "registration", "machine": m, **res}
    best = max(res["saturation"], key=lambda r: r["rate"])
    res["saturation_rate"] = best["rate"]
    print()
    rows = [[r["offered"], r["achieved_rate"], r["latency_ms"]["median"],
             r["latency_ms"]["p99"], r["latency_ms"]["max"], r["unanswered"]]
            for r in res["open_loop"] if "skipped" not in r]
    print(table(["offered/s", "completed/s", "p50 ms", "p99 ms", "max ms", "unanswered"],
                rows, numbers=True))
    print(f"saturation: {best['rate']:,.0f} full registrations/s (window {best['window']}; "
          f"target >= 2,000/s)")
    save_results("registration", args.json, res, None if args.no_plot else plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
