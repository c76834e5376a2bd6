"""Mobility experiments at scale: a generated topology, a mobility model (or a replayed
trace), a run of a given duration, a report (JSON + HTML with plots).

`mipvpn experiment FILE [--duration S] [--out DIR] [--pcap FILE] [--record-trace FILE]
[--replay-trace FILE]` (root).  The bring-up, the MN clients and the probes are the
scenario runner's (``mininet_scripts.scenario``, ``demo``); this module adds the
schedule, the sampling and the report.  Schema (docs/experiments.md)::

    name: grid16-walk
    topology: topology/grid-4x4.yaml      # a topology with ``generate`` (cell graph)
    duration: 300                         # seconds of mobility after registration
    mobility: {model: random_walk, seed: 1, dwell: [20, 60]}
    # or: trace: traces/x.csv             # replay (relative to the repository)
    probes: {sample: 5, rate: 200, cn: cn1, seed: 1}   # probed MNs, packets/s each way
    sample_interval: 5                    # seconds between REST samples
    move_timeout: 15                      # a move not re-registered by then failed

A move *completed* when the MN's client logged a registration through the FA of the
cell it moved to; the run's verdict also needs, at the end, a binding for every MN at
the FA of its cell.  Exit code 0 only then.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from controller.mobility import (MobilityError, Step, check_trace, dump_trace, make_trace,
                                 moves_of, parse_model, parse_trace)
from controller.topogen import GenerateError, cell_graph
from mininet_scripts.demo import DemoError, read_events, rest_get, say, wait_for
from mininet_scripts.scenario import ROOT, ScenarioRun

TOP_KEYS = {"name", "description", "topology", "duration", "mobility", "trace", "probes",
            "sample_interval", "move_timeout", "processes"}
PROBE_KEYS = {"sample", "rate", "cn", "seed"}


class ExperimentError(ValueError):
    pass


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_experiment(path: str | Path) -> dict[str, Any]:
    """Read and check an experiment YAML; errors name the file and the key."""
    src = str(path)
    try:
        spec = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ExperimentError(f"{src}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ExperimentError(f"{src}: not valid YAML: {exc}") from None
    if not isinstance(spec, dict):
        raise ExperimentError(f"{src}: an experiment is a mapping")
    unknown = sorted(set(spec) - TOP_KEYS)
    if unknown:
        raise ExperimentError(f"{src}: {unknown[0]}: unknown key (known: "
                              f"{', '.join(sorted(TOP_KEYS))})")
    for key in ("name", "topology", "duration"):
        if key not in spec:
            raise ExperimentError(f"{src}: {key}: missing required key")
    if not _number(spec["duration"]) or not 1 <= spec["duration"] <= 86400:
        raise ExperimentError(f"{src}: duration: {spec['duration']!r} is not seconds "
                              "(1..86400)")
    if ("mobility" in spec) == ("trace" in spec):
        raise ExperimentError(f"{src}: mobility: give exactly one of mobility (a model) "
                              "or trace (a file to replay)")
    if "mobility" in spec:
        try:
            parse_model(spec["mobility"], src)
        except MobilityError as exc:
            raise ExperimentError(str(exc)) from None
    probes = spec.get("probes") or {}
    if not isinstance(probes, dict) or set(probes) - PROBE_KEYS:
        raise ExperimentError(f"{src}: probes: a mapping of {sorted(PROBE_KEYS)} expected")
    for key, lo, hi in (("sample", 0, 1000), ("rate", 1, 10000), ("seed", 0, 2**31)):
        if key in probes and not (isinstance(probes[key], int) and lo <= probes[key] <= hi
                                  and not isinstance(probes[key], bool)):
            raise ExperimentError(f"{src}: probes.{key}: {probes[key]!r} is not an "
                                  f"integer in {lo}..{hi}")
    for key, lo, hi in (("sample_interval", 0.5, 600), ("move_timeout", 1, 120)):
        if key in spec and not (_number(spec[key]) and lo <= spec[key] <= hi):
            raise ExperimentError(f"{src}: {key}: {spec[key]!r} is not seconds ({lo}..{hi})")
    spec["_source"] = src
    return spec


def _repo_path(name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else ROOT / path


def plan(spec: dict[str, Any], replay: str | None = None, duration: float | None = None
         ) -> tuple[Any, dict[str, str], list[Step], list[str]]:
    """(cell graph, each MN's initial cell, the trace, the probed MNs) of an experiment,
    without running anything.  ``replay`` (a trace file) overrides the spec's model."""
    src = spec["_source"]
    topo_path = _repo_path(spec["topology"])
    try:
        data = yaml.safe_load(topo_path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ExperimentError(f"{src}: topology: cannot read {topo_path}: {exc}") from None
    if not isinstance(data, dict) or "generate" not in data:
        raise ExperimentError(f"{src}: topology: {spec['topology']} has no generate spec "
                              "(the cell graph comes from it; controller/topogen.py)")
    try:
        graph = cell_graph(data["generate"])
    except GenerateError as exc:
        raise ExperimentError(f"{topo_path}: {exc}") from None
    from controller.config import ConfigError, parse_topology
    try:
        topo = parse_topology(data, str(topo_path))
    except ConfigError as exc:
        raise ExperimentError(str(exc)) from None
    start = {name: mn.attach_switch for name, mn in topo.mobile_nodes.items()}
    length = float(duration if duration is not None else spec["duration"])
    try:
        trace_file = replay or (str(_repo_path(spec["trace"])) if "trace" in spec else None)
        if trace_file is not None:
            try:
                text = Path(trace_file).read_text()
            except OSError as exc:
                raise ExperimentError(f"{trace_file}: cannot read: {exc.strerror}") from None
            trace = [s for s in parse_trace(text, trace_file) if s.t < length]
            check_trace(trace, start, graph, trace_file)
        else:
            trace = make_trace(spec["mobility"], graph, start, length, src)
    except MobilityError as exc:
        raise ExperimentError(str(exc)) from None
    probes = spec.get("probes") or {}
    rng = random.Random(f"mipvpn-probes:{probes.get('seed', 1)}")
    names = list(start)
    sample = sorted(rng.sample(names, min(int(probes.get("sample", 3)), len(names))),
                    key=names.index)
    return graph, start, trace, sample


# ---------------------------------------------------------------------------- costs


def process_usage(root_pid: int, extra: list[int]) -> dict[str, Any]:
    """Processes in the tree under ``root_pid`` (plus ``extra`` PIDs and their trees):
    count, RSS sum and CPU ticks, by kind (charon, controller, mn_client, probe, ovs,
    other)."""
    children: dict[int, list[int]] = {}
    info: dict[int, tuple[str, int, int]] = {}  # pid -> (name, rss_kib, ticks)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:]
        fields = rest.split()
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss_kib = int(fields[21]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        ticks = int(fields[11]) + int(fields[12])
        info[pid] = (_kind(name, cmd), rss_kib, ticks)
    seen: set[int] = set()
    todo = [root_pid, *extra]
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in info:
            continue
        seen.add(pid)
        todo.extend(children.get(pid, []))
    seen.discard(root_pid)   # the runner itself is not part of the emulation's cost
    by_kind: dict[str, dict[str, int]] = {}
    for pid in seen:
        kind, rss, ticks = info[pid]
        k = by_kind.setdefault(kind, {"processes": 0, "rss_kib": 0, "cpu_ticks": 0})
        k["processes"] += 1
        k["rss_kib"] += rss
        k["cpu_ticks"] += ticks
    return {"processes": len(seen), "rss_kib": sum(info[p][1] for p in seen),
            "cpu_ticks": sum(info[p][2] for p in seen), "by_kind": by_kind}


def _kind(name: str, cmd: str) -> str:
    if "charon" in name:
        return "charon"
    if "controller.cli controller" in cmd:
        return "controller"
    for module in ("mn_client", "probe"):
        if f"mininet_scripts.{module}" in cmd:
            return module
    if name.startswith(("ovs-", "ovsdb")):
        return "ovs"
    return "other"


# ---------------------------------------------------------------------------- the run


class ExperimentRun(ScenarioRun):
    """The scenario runner's bring-up and probes, with a mobility schedule."""

    def __init__(self, spec: dict[str, Any], run_dir: Path, rest: str, of_port: int,
                 trace: list[Step], sample: list[str], pcap: str | None = None) -> None:
        scenario = {"name": spec["name"], "topology": spec["topology"], "timeline": [],
                    "processes": spec.get("processes") or [], "_source": spec["_source"]}
        super().__init__(scenario, run_dir, rest, of_port)
        self.exp = spec
        self.trace = trace
        self.sample = sample
        self.pcap = pcap
        self.duration = float(spec["duration"])
        self.interval = float(spec.get("sample_interval", 5))
        self.move_timeout = float(spec.get("move_timeout", 15))
        self.samples: list[dict[str, Any]] = []
        self.handovers: dict[int, dict[str, Any]] = {}   # seq -> record (merged samples)
        self.failures: list[str] = []
        self.t0 = 0.0
        self._stop = threading.Event()
        self._capture: subprocess.Popen[bytes] | None = None

    # -- sampling (a thread: REST calls must not delay the moves)

    def _sample(self) -> None:
        t = time.monotonic()
        row: dict[str, Any] = {"t": round(t - self.t0, 3)}
        ovs_pids = [int(p.read_text().strip()) for p in (self.run_dir / "ovs").rglob("*.pid")
                    if p.read_text().strip().isdigit()]
        row["usage"] = process_usage(os.getpid(), ovs_pids)
        row["loadavg"] = os.getloadavg()
        try:
            row["counters"] = rest_get(self.demo.rest, "/v1/counters", timeout=10)
            tunnels = rest_get(self.demo.rest, "/v1/tunnels", timeout=20)
            intended = tunnels.get("intended", [])
            row["tunnels"] = {"intended": len(intended),
                              "up": sum(1 for x in intended if x.get("state") == "up"),
                              "failed": sum(1 for x in intended if x.get("state") == "failed")}
            row["sas"] = {gw: (len(s) if isinstance(s, list) else None)
                          for gw, s in tunnels.get("gateways", {}).items()}
            row["bindings"] = len(rest_get(self.demo.rest, "/v1/bindings", timeout=10))
            for rec in rest_get(self.demo.rest, "/v1/handovers", timeout=10):
                self.handovers[rec["seq"]] = rec
        except Exception as exc:  # noqa: BLE001 - a sample lost is reported, not fatal
            row["error"] = str(exc)
        row["took_s"] = round(time.monotonic() - t, 3)
        self.samples.append(row)

    def _sampler(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    # -- moves

    def _move_now(self, step: Step) -> None:
        mn, conf = step.mn, self.topo.mobile_nodes[step.mn]
        previous = [m for m in self.moves if m["mn"] == mn and m["state"] == "pending"]
        for m in previous:
            m["state"] = "failed"
            m["why"] = "moved on before it re-registered"
        fa_from = self.topo.switches[self.location[mn]].foreign_agent
        fa_to = self.topo.switches[step.cell].foreign_agent
        t_move = time.monotonic()
        try:
            link_s = self.demo.mnet.move_host(mn, step.cell, conf.attach_port)
        except Exception as exc:  # noqa: BLE001 - the move failed; the run goes on
            self.moves.append({"mn": mn, "from": fa_from, "to": fa_to, "t_move": t_move,
                               "t": step.t, "state": "failed", "why": f"link move: {exc}",
                               "registered": None, "link_move_ms": None})
            return
        self.location[mn] = step.cell
        self.moves.append({"mn": mn, "from": fa_from, "to": fa_to, "t_move": t_move,
                           "t": step.t, "link_move_ms": round(link_s * 1000, 3),
                           "registered": None, "state": "pending",
                           "fa_ip": self.topo.gateways[fa_to].inside.ip})

    def _resolve(self) -> None:
        pending = [m for m in self.moves if m["state"] == "pending"]
        events: dict[str, list[dict[str, Any]]] = {}
        now = time.monotonic()
        for m in pending:
            if m["mn"] not in events:
                events[m["mn"]] = read_events(self.events[m["mn"]])
            reg = next((e for e in events[m["mn"]] if e["event"] == "registered"
                        and e["t"] >= m["t_move"] and e.get("fa") == m["fa_ip"]), None)
            if reg is not None:
                m["registered"], m["state"] = reg, "completed"
            elif now - m["t_move"] > self.move_timeout:
                m["state"], m["why"] = "failed", f"no re-registration in {self.move_timeout:g} s"

    def _progress(self, final: bool = False) -> None:
        done = sum(1 for m in self.moves if m["state"] == "completed")
        failed = sum(1 for m in self.moves if m["state"] == "failed")
        pending = len(self.moves) - done - failed
        planned = len(moves_of(self.trace))
        elapsed = min(self.duration, time.monotonic() - self.t0)
        width = 30
        bar = "#" * int(width * elapsed / self.duration)
        usage = self.samples[-1]["usage"] if self.samples else {}
        line = (f"[{bar:<{width}}] {elapsed:5.0f}/{self.duration:.0f} s  moves "
                f"{len(self.moves)}/{planned}  ok {done}  pending {pending}  failed {failed}"
                f"  procs {usage.get('processes', '?')}  "
                f"RSS {usage.get('rss_kib', 0) / 1024 / 1024:.1f} GiB")
        if sys.stdout.isatty():
            print("\r" + line, end="\n" if final else "", flush=True)
        else:
            print(line, flush=True)

    def run(self) -> dict[str, Any]:
        demo, topo = self.demo, self.topo
        if self.pcap:
            self._start_capture()
        t_bring = time.monotonic()
        demo.bring_up()
        bring_up_s = time.monotonic() - t_bring
        mns = list(topo.mobile_nodes)
        say(f"starting {len(mns)} MN clients")
        t_reg0 = time.monotonic()
        for mn in mns:
            self.location[mn] = topo.mobile_nodes[mn].attach_switch
            self.clients[mn], self.events[mn] = demo.start_mn_client(mn)
        t_reg: dict[str, float] = {}
        for mn in mns:
            reg = wait_for(f"{mn}'s first registration", lambda m=mn: next(
                (e for e in read_events(self.events[m]) if e["event"] == "registered"), None),
                max(30.0, 0.5 * len(mns)))
            t_reg[mn] = round((reg["t"] - t_reg0) * 1000, 3)
        registered_all_s = time.monotonic() - t_reg0
        say(f"{len(mns)} MNs registered in {registered_all_s:.1f} s")
        cn = (self.exp.get("probes") or {}).get("cn") or next(iter(topo.hosts))
        rate = int((self.exp.get("probes") or {}).get("rate", 200))
        for i, mn in enumerate(self.sample):
            self._start_probe(i, {"mn": mn, "cn": cn, "rate": rate})
        if self.sample:
            time.sleep(1.0)
        self.t0 = time.monotonic()
        sampler = threading.Thread(target=self._sampler, name="sampler", daemon=True)
        sampler.start()
        last_progress = 0.0
        schedule = moves_of(self.trace)
        k = 0
        try:
            while True:
                now = time.monotonic() - self.t0
                while k < len(schedule) and schedule[k].t <= now:
                    self._move_now(schedule[k])
                    k += 1
                self._resolve()
                if now - last_progress >= (1.0 if sys.stdout.isatty() else 10.0):
                    self._progress()
                    last_progress = now
                if now >= self.duration and (k >= len(schedule)):
                    pending = any(m["state"] == "pending" for m in self.moves)
                    if not pending or now >= self.duration + self.move_timeout:
                        break
                time.sleep(0.02)
        finally:
            self._stop.set()
            sampler.join(30)
        self._resolve()
        for m in self.moves:
            if m["state"] == "pending":
                m["state"], m["why"] = "failed", "no re-registration by the end of the run"
        self._progress(final=True)
        self._sample()  # the last one, after the moves
        for p in self.probes:
            from mininet_scripts.demo import _stop_proc
            _stop_proc(p["mn_proc"])
            _stop_proc(p["cn_proc"])
        bindings = {b["nai"]: b["foreign_agent"]
                    for b in rest_get(demo.rest, "/v1/bindings", timeout=10)}
        for mn in mns:
            nai = topo.mobile_nodes[mn].nai
            fa = topo.switches[self.location[mn]].foreign_agent
            if nai not in bindings:
                self.failures.append(f"{mn} ({nai}) has no binding at the end")
            elif bindings[nai] != fa:
                self.failures.append(f"{mn} ({nai}) is bound at {bindings[nai]}, but is "
                                     f"in the cell of {fa}")
        for m in self.moves:
            if m["state"] == "failed":
                self.failures.append(f"move of {m['mn']} at {m['t']:g} s {m['from']} -> "
                                     f"{m['to']}: {m['why']}")
        if self._capture is not None:
            self._stop_capture()
        from mininet_scripts.experiment_report import results
        return results(self, t_reg, bring_up_s, registered_all_s, bindings)

    # -- control-plane capture (Diameter + MIPv4 on loopback, as test_conformance)

    def _start_capture(self) -> None:
        ports = sorted({d.aaa.listen_port for d in self.topo.domains.values() if d.aaa}
                       | {d.home_agent.diameter_listen_port for d in self.topo.domains.values()
                          if d.home_agent})
        ha = self.topo.home_domain().home_agent
        bpf = " or ".join([f"tcp port {p}" for p in ports]
                          + ["udp port 434", f"udp port {ha.mip_listen_port}" if ha else ""]
                          ).rstrip(" or")
        log = Path(str(self.pcap) + ".dumpcap.log")
        self._capture = subprocess.Popen(["dumpcap", "-q", "-i", "lo", "-f", bpf, "-w",
                                          str(self.pcap)], stdout=subprocess.DEVNULL,
                                         stderr=open(log, "wb"))  # noqa: SIM115
        wait_for("dumpcap", lambda: "Capturing on" in log.read_text(errors="replace")
                 or self._capture.poll() is not None, 15)   # type: ignore[union-attr]
        if self._capture.poll() is not None:
            raise DemoError(f"dumpcap did not start: {log.read_text()}")

    def _stop_capture(self) -> None:
        proc, self._capture = self._capture, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)   # dumpcap finishes the file on SIGTERM
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def close(self) -> None:
        self._stop.set()
        if self._capture is not None:
            self._stop_capture()
        super().close()


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "?"


def run_experiment_cli(args: Any) -> int:
    try:
        spec = load_experiment(args.file)
        if args.duration is not None:
            spec["duration"] = args.duration
        graph, start, trace, sample = plan(spec, args.replay_trace, args.duration)
    except ExperimentError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.record_trace:
        fmt = "json" if args.record_trace.endswith(".json") else "csv"
        Path(args.record_trace).write_text(dump_trace(trace, fmt))
        say(f"trace written to {args.record_trace} ({len(moves_of(trace))} moves)")
    say(f"{spec['name']}: {len(start)} MNs over {graph.number_of_nodes()} cells, "
        f"{len(moves_of(trace))} moves in {spec['duration']:g} s, probing {sample}")
    if args.dry_run:
        return 0
    if os.geteuid() != 0:
        print("experiments need root (Mininet, Open vSwitch, strongSwan)", file=sys.stderr)
        return 2

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    commit = _commit()   # the code that runs, before anything may be committed meanwhile
    run_dir = Path(tempfile.mkdtemp(prefix=f"mipvpn-exp-{spec['name']}-"))
    os.chmod(run_dir, 0o755)
    out = Path(args.out or f"experiment-{spec['name']}")
    out.mkdir(parents=True, exist_ok=True)
    run = ExperimentRun(spec, run_dir, args.rest, args.of_port, trace, sample,
                        pcap=str(Path(args.pcap).resolve()) if args.pcap else None)
    keep = args.keep_dir
    try:
        res = run.run()
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except DemoError as exc:
        say(f"FAILED: {exc}; logs in {run_dir}")
        keep = True
        return 1
    finally:
        run.close()
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    res["command"] = " ".join(["mipvpn", "experiment", *sys.argv[2:]]) \
        if sys.argv[1:2] == ["experiment"] else " ".join(sys.argv)
    res["commit"] = commit
    from mininet_scripts.experiment_report import write_report
    paths = write_report(res, out)
    s = res["summary"]
    print(f"experiment {spec['name']}: {s['moves']} moves, {s['completed']} completed, "
          f"{s['failed']} failed; {len(res['failures'])} failures; "
          f"{'OK' if res['ok'] else 'FAILED'}")
    for p in paths:
        say(f"written {p}")
    return 0 if res["ok"] else 1
