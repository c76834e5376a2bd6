"""Home-domain replicas on etcd (issue 17): what etcd costs a registration, and what a
replica's death costs the MNs.  No Mininet, no root: etcd (Debian's ``etcd-server``)
on loopback ports in a temporary directory, the controller runtimes of
``bench.registration --serve`` (recording gateways), virtual MNs over UDP.

Layouts, all in one run (the machine's conditions shared):

- ``sqlite x1``: one home process (AAAH, HA, CN-GWs) on its SQLite state file (WAL);
- ``etcd x1``: the same on etcd (``--state etcd://...``);
- ``etcd x2``: two home processes on etcd sharing the home AAA's address
  (SO_REUSEPORT); the visited side's AAAF holds one Diameter connection, so one
  replica serves and the other follows the records through its watch.

Each with the visited side (AAAFs, FAs) in one more process.  Closed loop, window W:
registrations/s and CPU microseconds per registration of the home process(es), of etcd
and of the visited process (``/proc``, all threads), per layout.

Failover (``etcd x2``): every user registers, then an open-loop probe renews at a fixed
rate; the serving replica is killed (SIGKILL, by PID) in the middle.  Reported: the
longest gap between accepted renewals (the interruption the MNs see), where it began,
and the longest one beginning within 1 s of the kill (the Diameter failover's), renewals
unanswered or refused, bindings on the survivor afterwards (0 lost = all of them), the
survivor's own takeover records (when the dead replica's owner keys went and when it
claimed them) and the visited side's Diameter failover counters (requests resent with
the 'T' flag, failed while the link was down, redials).

    python -m bench.replicas [--users 2000] [--window 32] [--duration 4]
        [--rate 100] [--probe 12] [--json F]
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import bench_parser, parse_bench_args, print_machine, save_results, summary
from bench.registration import (RRP, LoadGenerator, Server, fixed_port_topology_file,
                                process_cpu_s)
from controller.testing.etcd import EtcdProcess
from controller.textutil import table


def _free_port() -> str:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def replica_topology(base: str, i: int) -> str:
    """Replica ``i``'s topology: the base one with the home agent's own Diameter and
    MIP ports (each replica's AAAH talks to its own HA); the home AAA's address is the
    shared one."""
    data = yaml.safe_load(Path(base).read_text())
    for dom in data["domains"].values():
        if "home_agent" in dom:
            dom["home_agent"]["diameter_listen"] = _free_port()
            dom["home_agent"]["mip_listen"] = _free_port()
    out = Path(base).with_name(f"topology-replica{i}.yaml")
    out.write_text(yaml.safe_dump(data))
    return str(out)


class ReplicaSet:
    """``replicas`` home processes on ``state`` (``sqlite`` or ``etcd``) + the visited
    process; ``info`` is what a ``LoadGenerator`` takes."""

    def __init__(self, replicas: int, state: str, users: int, topology: str | None = None,
                 log_level: str = "WARNING") -> None:
        self.dir = tempfile.mkdtemp(prefix="mipvpn-replicas-")
        self.etcd: EtcdProcess | None = None
        self.home: list[Server] = []
        self.visited: Server | None = None
        try:
            base = fixed_port_topology_file(topology, self.dir)
            common = ["--users", str(users), "--log-level", log_level]
            if state == "etcd":
                self.etcd = EtcdProcess()
                common += ["--state", f"{self.etcd.url}/bench"]
            for i in range(replicas):
                conf = base if i == 0 else replica_topology(base, i)
                self.home.append(Server("--serve", "--config", conf, "--where", "home",
                                        *common))
            self.visited = Server("--serve", "--config", base, "--where", "visited",
                                  *common)
        except BaseException:
            self.close()
            raise
        self.info = dict(self.visited.info)
        self.info["pids"] = self.home_pids

    @property
    def home_pids(self) -> list[int]:
        return [s.info["pid"] for s in self.home if s.proc.poll() is None]

    def pids(self) -> dict[str, list[int]]:
        assert self.visited is not None
        return {"home": self.home_pids, "visited": [self.visited.info["pid"]],
                "etcd": [self.etcd.pid] if self.etcd else []}

    def stats(self) -> list[dict[str, Any] | None]:
        return [s.call(cmd="stats") if s.proc.poll() is None else None for s in self.home]

    def close(self) -> None:
        for srv in ([self.visited] if self.visited else []) + self.home[::-1]:
            srv.close()
        if self.etcd is not None:
            self.etcd.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------------- measurements


def closed_loop(rs: ReplicaSet, lg: LoadGenerator, window: int, duration: float,
                warmup: float = 1.0, idle: float = 2.0) -> dict[str, Any]:
    """W registrations outstanding for ``duration`` s after ``warmup``: rate, latency
    and CPU us per registration of each group of processes, as measured and net of
    what the group burns idle (its timers, the benchmark server's 5 ms loop-lag probe,
    etcd's own ticks: measured for ``idle`` s first), which a slower layout would
    otherwise spread over fewer registrations."""
    lat: list[float] = []
    codes: dict[int, int] = {}
    groups = rs.pids()
    c0 = {g: process_cpu_s(p) for g, p in groups.items()}
    t0 = time.perf_counter()
    time.sleep(idle)
    idle_rate = {g: (process_cpu_s(p) - c0[g]) / (time.perf_counter() - t0)
                 for g, p in groups.items()}
    t_end = time.perf_counter() + warmup + duration
    measuring = False
    cpu0: dict[str, float] = {}
    t_measure = 0.0
    while True:
        now = time.perf_counter()
        if not measuring and now >= t_end - duration:
            measuring, t_measure = True, now
            lat.clear()
            codes.clear()
            cpu0 = {g: process_cpu_s(p) for g, p in groups.items()}
        if now >= t_end:
            break
        while len(lg.busy) < window and lg._send_one():
            pass
        lg._receive(5, lat, codes)
    elapsed = time.perf_counter() - t_measure
    cpu = {g: process_cpu_s(p) - cpu0[g] for g, p in groups.items()}
    lg._drain([], {}, 5.0)
    per = max(len(lat), 1)
    return {"window": window, "rate": round(len(lat) / elapsed, 1), "completed": len(lat),
            "codes": codes, "latency_ms": summary([x * 1000 for x in lat]),
            "cpu_us_per_reg": {g: round(c / per * 1e6, 1) for g, c in cpu.items()},
            "idle_cpu_ms_per_s": {g: round(r * 1e3, 1) for g, r in idle_rate.items()},
            "cpu_us_per_reg_net": {g: round(max(0.0, c - idle_rate[g] * elapsed) / per
                                            * 1e6, 1) for g, c in cpu.items()},
            "server_cpu_us_per_reg": round(cpu["home"] / per * 1e6, 1)}


def fixed_rate(rs: ReplicaSet, lg: LoadGenerator, rate: float, duration: float,
               idle_ms_per_s: dict[str, float]) -> dict[str, Any]:
    """Open loop at ``rate``/s (below every layout's saturation, so each layout does
    the same work per second): CPU us per accepted registration of each group, net of
    its idle burn."""
    groups = rs.pids()
    c0 = {g: process_cpu_s(p) for g, p in groups.items()}
    t0 = time.perf_counter()
    answered, lost, _ = probe(lg, rate, duration, duration + 1.0, lambda: None)
    elapsed = time.perf_counter() - t0
    ok = max(1, sum(1 for _s, _r, c in answered if c in (0, 1)))
    lat = [(r - s) * 1000 for s, r, c in answered if c in (0, 1)]
    return {"rate": rate, "accepted": ok, "lost_or_refused": lost,
            "latency_ms": summary(lat),
            "cpu_us_per_reg_net": {
                g: round(max(0.0, process_cpu_s(p) - c0[g]
                             - idle_ms_per_s[g] / 1e3 * elapsed) / ok * 1e6, 1)
                for g, p in groups.items()}}


def register_all(lg: LoadGenerator, users: int, window: int = 32,
                 timeout: float = 120.0) -> int:
    """Every user registers once; returns how many were accepted."""
    lat: list[float] = []
    codes: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    sent = 0
    while sent < users and time.monotonic() < deadline:
        while len(lg.busy) < window and sent < users and lg._send_one():
            sent += 1
        lg._receive(5, lat, codes)
    lg._drain(lat, codes, 5.0)
    return codes.get(0, 0)


def probe(lg: LoadGenerator, rate: float, duration: float, at: float,
          action: Any) -> tuple[list[tuple[float, float, int]], int, float]:
    """Open loop at ``rate``/s for ``duration`` s; ``action()`` at ``at`` s.  Returns
    (send time, reply time, code) per answered renewal (times from the start), the
    number unanswered, and when ``action`` ran."""
    interval = 1.0 / rate
    start = time.perf_counter()
    sent_at: dict[tuple[bytes, int], float] = {}
    answered: list[tuple[float, float, int]] = []
    acted = -1.0
    k = 0
    dropped = 0
    while True:
        now = time.perf_counter()
        if acted < 0 and now - start >= at:
            action()
            acted = time.perf_counter() - start
        if now - start >= duration:
            break
        while start + k * interval <= now:
            if lg._send_one():
                home = max(lg.busy.items(), key=lambda kv: kv[1][2])
                sent_at[(home[0], home[1][1])] = home[1][2] - start
            k += 1
        answered += _replies(lg, sent_at, start, 5)
        for key in [key for key, t in sent_at.items() if now - start - t > 3.0]:
            del sent_at[key]               # unanswered: the MN would retransmit
            lg.busy.pop(key[0], None)
            dropped += 1
    end = time.perf_counter() + 3.0
    while sent_at and time.perf_counter() < end:
        answered += _replies(lg, sent_at, start, 20)
    lost = dropped + len(sent_at) + sum(1 for _s, _r, c in answered if c not in (0, 1))
    lg.busy.clear()
    return answered, lost, acted


def _replies(lg: LoadGenerator, sent_at: dict[tuple[bytes, int], float], start: float,
             timeout_ms: int) -> list[tuple[float, float, int]]:
    out = []
    for fd, _ev in lg.poller.poll(timeout_ms):
        s = lg.by_fd[fd]
        while True:
            try:
                data = s.recv(2048)
            except (BlockingIOError, InterruptedError):
                break
            if len(data) < RRP.size:
                continue
            _type, code, _life, home, _ha, ident = RRP.unpack_from(data)
            t_sent = sent_at.pop((home, ident), None)
            if t_sent is None:
                continue
            lg.busy.pop(home, None)
            out.append((t_sent, time.perf_counter() - start, code))
    return out


def failover(users: int, rate: float, duration: float, log_level: str) -> dict[str, Any]:
    rs = ReplicaSet(2, "etcd", users, log_level=log_level)
    lg = LoadGenerator(rs.info, users)
    try:
        accepted = register_all(lg, users)
        before = rs.stats()
        serving = max(range(2), key=lambda i: before[i]["roles"]["ha"]["accepted"]
                      if before[i] else -1)
        victim = rs.home[serving].info["pid"]
        survivor = rs.home[1 - serving]
        killed_wall = [0.0]
        time.sleep(3.5)   # every user may renew again (the FA's hold, USER_SPACING)

        def kill() -> None:
            killed_wall[0] = time.time()
            os.kill(victim, signal.SIGKILL)
            rs.home[serving].proc.wait()

        answered, lost, t_kill = probe(lg, rate, duration, duration / 3, kill)
        time.sleep(3.0)   # the dead replica's session lease runs out meanwhile
        after = survivor.call(cmd="stats")
        assert rs.visited is not None
        visited = rs.visited.call(cmd="stats").get("diameter", {})
    finally:
        lg.close()
        rs.close()
    ok = sorted(r for _s, r, c in answered if c in (0, 1))
    gaps = [b - a for a, b in zip(ok, ok[1:])]
    codes: dict[str, int] = {}
    for _s, _r, c in answered:
        codes[str(c)] = codes.get(str(c), 0) + 1
    failed = sorted(s for s, _r, c in answered if c not in (0, 1))
    after_kill = [r for r in ok if r > t_kill]
    rep = after["replication"] or {}
    takeovers = rep.get("takeovers", [])
    return {
        "users": users, "registered_before": accepted, "rate": rate,
        "probe_s": duration, "killed_at_s": round(t_kill, 3), "killed_pid": victim,
        "renewals_answered": len(answered),
        "renewals_accepted": len(ok),
        "renewals_lost_or_refused": lost,
        "codes": codes,
        # renewals sent in this window (from the kill) were answered with an error
        "failed_sent_window_s": [round(failed[0] - t_kill, 3),
                                 round(failed[-1] - t_kill, 3)] if failed else None,
        "interruption_s": round(max(gaps), 3) if gaps else None,
        # where that longest gap began, from the kill
        "interruption_from_kill_s": round(ok[gaps.index(max(gaps))] - t_kill, 3)
        if gaps else None,
        # the longest gap beginning within 1 s of the kill (the Diameter failover's;
        # the takeover's comes later: owner keys gone, records claimed)
        "kill_gap_s": max((round(g, 3) for a, g in zip(ok, gaps)
                           if -1.0 <= a - t_kill <= 1.0), default=None),
        "first_accepted_after_kill_s": round(after_kill[0] - t_kill, 3)
        if after_kill else None,
        "survivor_bindings": after["bindings"],
        "bindings_lost": max(0, accepted - after["bindings"]),
        "survivor_ha_accepted": after["roles"]["ha"]["accepted"],
        "takeover_records": len(takeovers),
        # the survivor's own records: owner keys gone / claimed, after the kill
        "owner_keys_gone_after_kill_s": _after(killed_wall[0], takeovers, "orphaned_at"),
        "claimed_after_kill_s": _after(killed_wall[0], takeovers, "at"),
        "replication_counters": rep.get("counters"),
        # the visited side's Diameter nodes: requests resent after the failover
        # (RFC 6733 §5.5.4), failovers without a next connection, redials
        "visited_diameter": {k: {c: v for c, v in sorted(n.items()) if c in _FAILOVER}
                             for k, n in sorted(visited.items())},
    }


_FAILOVER = ("resent", "failover_failed", "peer_unavailable", "peer_down", "reconnected",
             "reconnect_failed", "duplicate_answered", "retransmitted_received", "timeouts")


def _after(t0: float, takeovers: list[dict[str, Any]], field: str) -> dict[str, Any]:
    xs = [t[field] - t0 for t in takeovers if t.get(field)]
    return {"min": round(min(xs), 3), "max": round(max(xs), 3)} if xs else {}


def cost(users: int, window: int, duration: float, log_level: str,
         rate: float) -> list[dict[str, Any]]:
    rows = []
    for replicas, state in ((1, "sqlite"), (1, "etcd"), (2, "etcd")):
        rs = ReplicaSet(replicas, state, users, log_level=log_level)
        lg = LoadGenerator(rs.info, users)
        try:
            register_all(lg, min(users, 500))
            r = closed_loop(rs, lg, window, duration)
            r["fixed_rate"] = fixed_rate(rs, lg, rate, duration, r["idle_cpu_ms_per_s"])
            st = rs.stats()
        finally:
            lg.close()
            rs.close()
        reps = [s["replication"] for s in st if s and s.get("replication")]
        regs = max(1, sum(s["roles"]["ha"]["accepted"] for s in st if s))
        r.update(layout=f"{state} x{replicas}", state=state, replicas=replicas,
                 # over the whole run of the home process(es), per registration
                 etcd_requests_per_reg=round(sum(x["etcd_requests"] for x in reps) / regs,
                                             2) if reps else None,
                 store_cpu_us_per_reg={k: round(sum(x["store_cpu_s"][k] for x in reps)
                                                / regs * 1e6, 1)
                                       for k in ("write", "watch")} if reps else None,
                 per_replica_ha_accepted=[s["roles"]["ha"]["accepted"] if s else None
                                          for s in st])
        fr = r["fixed_rate"]["cpu_us_per_reg_net"]
        print(f"  {r['layout']}: {r['rate']:,.0f} reg/s, home {r['server_cpu_us_per_reg']}"
              f" us/reg, etcd {r['cpu_us_per_reg']['etcd']} us/reg; at {rate:g}/s: home "
              f"{fr['home']}, etcd {fr['etcd']}, visited {fr['visited']} us/reg; store "
              f"{r['store_cpu_us_per_reg']}", flush=True)
        rows.append(r)
    return rows


def on_paper(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """N replicas on N machines, each serving 1/N of the registrations and following
    the other (N-1)/N through its watch: a replica's CPU per registration it serves is
    ``serve``, per one it follows ``follow`` (etcd x2 minus etcd x1, at the fixed rate,
    net of idle); a
    core gives 1e6 / (serve + (N-1) * follow) registrations/s per machine.  etcd's own
    CPU per registration is listed: one etcd cluster takes all N machines' writes.
    CPU only: the serving replica also waits for etcd's commit on its event loop."""
    by = {r["layout"]: r for r in rows}
    one, two = by.get("etcd x1"), by.get("etcd x2")
    if not one or not two:
        return {}
    def net(r: dict[str, Any]) -> dict[str, float]:   # at equal load when measured
        return r.get("fixed_rate", {}).get("cpu_us_per_reg_net") or r["cpu_us_per_reg_net"]
    basis, cost = "net of idle", net
    if net(one)["home"] <= 0:
        # a loaded machine: the idle burn measured before the run exceeded what the
        # run used (clipped to 0); the gross figures are an upper bound of the cost
        basis, cost = "gross (the net figure was not measurable at this load)", (
            lambda r: r["cpu_us_per_reg"])
    serve = cost(one)["home"]
    follow = max(0.0, cost(two)["home"] - serve)
    etcd = cost(one)["etcd"]
    out = {"serve_us": serve, "follow_us": round(follow, 1), "etcd_us": etcd,
           "basis": basis, "n": {}}
    for n in (1, 2, 4, 8):
        per_machine = 1e6 / (serve + (n - 1) * follow)
        out["n"][str(n)] = {"per_machine_reg_s": round(per_machine),
                            "total_reg_s": round(n * per_machine),
                            "etcd_cores_needed": round(n * per_machine * etcd / 1e6, 2)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser("replicas", __doc__)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--duration", type=float, default=4.0, help="s per closed loop")
    ap.add_argument("--rate", type=float, default=100.0, help="probe renewals/s")
    ap.add_argument("--fixed-rate", type=float, default=60.0,
                    help="open-loop registrations/s for the CPU comparison at equal load")
    ap.add_argument("--probe", type=float, default=12.0, help="s of probe (failover)")
    ap.add_argument("--log-level", default="WARNING", help="servers' log level")
    ap.add_argument("--skip-cost", action="store_true")
    ap.add_argument("--skip-failover", action="store_true")
    args = parse_bench_args(ap, argv, plot=False)
    m = print_machine()
    res: dict[str, Any] = {"benchmark": "replicas", "machine": m}
    if not args.skip_cost:
        print(f"cost: {args.users:,} users, window {args.window}, {args.duration:g} s",
              flush=True)
        res["cost"] = cost(args.users, args.window, args.duration, args.log_level,
                           args.fixed_rate)
        res["on_paper"] = on_paper(res["cost"])
        print(table(["layout", "reg/s", "home us/reg", "net", "etcd us/reg", "net",
                     "visited us/reg", "net", "p50 ms", "p99 ms"],
                    [[r["layout"], r["rate"], r["cpu_us_per_reg"]["home"],
                      r["cpu_us_per_reg_net"]["home"], r["cpu_us_per_reg"]["etcd"],
                      r["cpu_us_per_reg_net"]["etcd"], r["cpu_us_per_reg"]["visited"],
                      r["cpu_us_per_reg_net"]["visited"],
                      r["latency_ms"]["median"], r["latency_ms"]["p99"]]
                     for r in res["cost"]], numbers=True))
        print("on paper:", res["on_paper"], flush=True)
    if not args.skip_failover:
        users = max(int(args.rate * 4), 200)   # each user renews every >= 3.2 s
        print(f"failover: {users} users, probe {args.rate:g} renewals/s for "
              f"{args.probe:g} s, serving replica killed at {args.probe / 3:.1f} s",
              flush=True)
        res["failover"] = failover(users, args.rate, args.probe, args.log_level)
        f = res["failover"]
        print(f"  interruption {f['interruption_s']} s, renewals lost/refused "
              f"{f['renewals_lost_or_refused']}, bindings {f['survivor_bindings']}/"
              f"{f['registered_before']} kept, claims "
              f"{f['claimed_after_kill_s']} s after the kill", flush=True)
    save_results("replicas", args.json, res, None)
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main())
