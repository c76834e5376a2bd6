"""``bench.registration``'s server side: the controller runtime (``--serve``) and the
two reference hops in their own processes, driven through JSON lines (``Server``,
``ServerGroup`` for ``--split``).  Also the benchmark's users (NAIs, home addresses,
key) shared with the load generator.
"""

from __future__ import annotations

import asyncio
import cProfile
import concurrent.futures
import ipaddress
import json
import os
import pstats
import select
import socket
import struct
import subprocess
import sys
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import DEFAULT_TOPOLOGY, REPO, summary
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


class InlineExecutor(concurrent.futures.Executor):
    """``--what-if inline-gateways``: runs what is submitted at once, in the caller's
    thread (the event loop's), instead of handing it to a gateway's worker thread: what
    the two hand-offs per registration cost when the driver answers at once."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting caller
            fut.set_exception(e)
        return fut

    def run(self, fn: Any, *args: Any) -> asyncio.Future[Any]:
        """``DriverWorker.run``'s interface, answered at once."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            fut.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting caller
            fut.set_exception(e)
        return fut


def _reply(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve_runtime(users: int, topology: str | None, what_if: list[str],
                  where: str | None = None, state_url: str | None = None) -> int:
    """``_serve_runtime`` in a run directory of its own, removed however the server
    ends: at ``quit``, and at SIGTERM from a driver that gave up waiting for it
    (``Server.close``; ``atexit`` does not run when a signal ends the process)."""
    run_dir = tempfile.mkdtemp(prefix="mipvpn-bench-")

    def ended(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, ended)
    try:
        return _serve_runtime(run_dir, users, topology, what_if, where, state_url)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _serve_runtime(run_dir: str, users: int, topology: str | None, what_if: list[str],
                   where: str | None, state_url: str | None) -> int:
    """The controller runtime with recording gateways; commands as JSON lines on stdin.

    ``what_if`` names optimisations to try *in this benchmark process only* (never in
    the product): ``qos-scan`` skips the runtime's per-flow-batch QoS scan over every
    visitor of the FA (``flows.visitors_qos``); its result is empty for the benchmark's
    users (their profiles set no QoS), so the flows sent are the same; ``gc-freeze``
    also moves the warm-up's objects (10,000 bindings and caches) out of the cyclic
    GC's reach.  The server tunes the GC after start-up as ``mipvpn controller`` does
    (``launcher.tune_gc``) unless ``no-gc-tuning``; ``asyncio-loop`` runs the runtime on
    asyncio's event loop instead of uvloop's (``runtime.root.new_event_loop``);
    ``inline-gateways`` calls the (instant) tunnel drivers in the loop's thread instead
    of on the gateways' worker threads (``InlineExecutor``)."""
    from controller.core.aaa_home import Destination, UserRecord, VpnProfile
    from controller.core.vpn import QosSpec, SecuritySpec
    from controller.testing.gateways import CountingGateway
    from controller.runtime import Runtime

    if "asyncio-loop" in what_if:   # asyncio's own loop instead of uvloop's (root.py)
        os.environ["MIPVPN_EVENT_LOOP"] = "asyncio"
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

    # the VPN database a file and the restart records (issue 5) in it, as `mipvpn
    # controller` keeps them by default (WAL); ``state-memory`` keeps the records in
    # memory, ``no-persist`` turns them off: the difference is what persisting costs
    vpn_db = str(Path(run_dir) / "vpn.db")
    state = state_url or (":memory:" if "state-memory" in what_if else vpn_db)
    rt = Runtime(topo, run_dir, vpn_db, rest=None, gateway_factory=factory,
                 flow_sink=sink, fa_ingress=True, advertise=False,
                 roles=placement(topo, where),
                 persist="no-persist" not in what_if, state_path=state)
    conf = next(iter(topo.vpn_profiles.values()), None)
    dests = tuple(Destination(d.prefix, d.gateway) for d in conf.destinations) if conf \
        else ()
    sec = SecuritySpec(conf.security.ike, conf.security.esp) if conf else SecuritySpec()
    seeded = range(users if where != "visited" else 0)   # the VPN DB is the home's
    rt.store.put_many([UserRecord(user_nai(i), str(USER_BASE + i), "ha", SPI, KEY)
                       for i in seeded],
                      [VpnProfile(user_nai(i), dests, sec, QosSpec()) for i in seeded])
    if "inline-gateways" in what_if:   # the tunnel drivers called in the loop's thread
        for name in list(rt.gateways_ctl.workers):
            rt.gateways_ctl.workers[name] = InlineExecutor()  # type: ignore[assignment]
    rt.start()
    if "no-gc-tuning" not in what_if:   # as `mipvpn controller` does after start-up
        from controller.launcher import tune_gc
        tune_gc()
    for item in what_if:   # gc-threshold:A:B:C, after the product's tuning (its freeze kept)
        if item.startswith("gc-threshold:"):
            import gc as _gc
            _gc.set_threshold(*(int(x) for x in item.split(":")[1:4]))
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
    from controller import compiled
    _reply({"ready": True, "pid": os.getpid(), "ha": ha_core, "run_dir": run_dir,
            "build": {**compiled.STATUS.as_dict(), "loaded": len(compiled.loaded_compiled())},
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
                    "tunnel_promotes": {n: g.promotes for n, g in gws.items()},
                    "tunnel_rekeys": {n: g.rekeys for n, g in gws.items()},
                    "bindings": len(rt.roles["ha"].bindings) if "ha" in rt.roles else 0,
                    "roles": {k: dict(getattr(r, "counters", {})) for k, r in rt.roles.items()},
                    "diameter": {k: dict(n.counters) for k, n in rt.nodes.items()},
                    "loop_lag_ms": summary(list(lag), 2),
                    "replication": rt.replication.summary() if rt.replication else None,
                    "state_commits": getattr(rt.persistence.state, "commits", 0),
                    "threads": {f"{os.getpid()}/{t.native_id}": t.name
                                for t in threading.enumerate()},
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
        # a server killed outright (SIGKILL: tests/integration/test_replicas.py) could
        # not remove its run directory (the VPN database, keys included): done here
        run_dir = self.info.get("run_dir") if isinstance(self.info, dict) else None
        if run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
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
        for k in ("flow_mods", "flow_batches", "bindings", "state_commits"):
            out[k] = sum(r.get(k, 0) for r in replies)
        for k in ("tunnel_adds", "tunnel_removes", "tunnel_promotes", "tunnel_rekeys", "roles",
                  "diameter", "threads"):
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

