"""Overload: 10x the nominal registration rate for 30 s (issue 5) — no crash, the excess
refused (or queued) with bounded memory, nothing half-installed.

Nominal = 100 registrations/s (docs/decisions.md), so 10x = 1,000/s, about three times
what the runtime completes at saturation on this machine (docs/benchmarks.md).  The
controller runtime runs in its own process (``--serve``: every role, Diameter over
loopback TCP, MIPv4 over UDP, recording gateways that keep the live tunnel set, a fake
OpenFlow table per switch; the same runtime ``bench.leak`` drives, on the real clock);
this process offers real Registration Requests open loop (``bench.registration``'s
``LoadGenerator``: virtual MNs, MN-AAA authenticated, each waiting for its reply).

Phases: nominal rate for ``--nominal-duration`` s, then ``--multiple`` x nominal for
``--duration`` s (the runtime's CPU is the bottleneck), then the same overload for
``--slow-duration`` s with the home AAA answering ``--slow-aaa`` s late (the
bottleneck is downstream: registrations pile up in flight at the FAs, where admission
control acts).  The virtual MNs give up on a reply after 3 s and may register again
(an MN retransmits).  Per phase: sent, accepted (code 0), refused by admission control
(code 66), other codes, timed out (no reply within 3 s: dropped by the kernel's socket
buffer or queued too long), latency; the server's RSS sampled every
0.25 s, the largest number of registrations in flight per FA, the event-loop lag.
After the run, once the server is idle: is it alive, and is its state consistent —
every HA binding has its FA visitor, that FA's steering flows and both tunnel ends; no
FA visitor without its HA binding; no live tunnel nobody holds; no pending entry left
at any role; no Diameter request in flight.

    python -m bench.overload [--nominal 100] [--multiple 10] [--duration 30]
        [--users 10000] [--max-pending N] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import (REPO, bench_parser, parse_bench_args, print_machine, pyplot,
                          save_plot, save_results, summary)
from bench.leak import LeakHarness, rss_kib
from bench.registration import LoadGenerator, Server, _reply


# =================================================================== server process


def greedy_ingress(rt: Any) -> None:
    """Hand every waiting Registration Request to the FA as soon as the loop wakes, as
    the product's path does: real MNs' RRQs arrive as OpenFlow packet-ins, which os-ken's
    thread passes to the loop one by one as they come (``Runtime.packet_in``).  The
    load generator's UDP ingress is read by asyncio's datagram transport, one datagram
    per loop iteration: under overload the backlog then waits in the kernel's socket
    buffer, where the FA can neither see nor refuse it.  A second reader on a
    duplicate of each ingress socket drains it (up to 1,024 datagrams per wake-up)."""
    import socket as _socket

    def install() -> None:
        for ep in rt.ingress.values():
            sock = ep.transport.get_extra_info("socket")
            dup = _socket.socket(fileno=os.dup(sock.fileno()))
            dup.setblocking(False)

            def drain(dup: Any = dup, ep: Any = ep) -> None:
                for _ in range(1024):
                    try:
                        data, addr = dup.recvfrom(65535)
                    except (BlockingIOError, InterruptedError):
                        return
                    ep.datagram_received(data, addr)
            rt.loop.add_reader(dup.fileno(), drain)
    rt.loop.call_soon_threadsafe(install)


def serve(users: int, topology: str | None, max_pending: int | None,
          ingress: str = "greedy") -> int:
    h = LeakHarness(users, 300, topology, fake_clock=False)
    rt = h.rt
    if max_pending is not None:
        for fa in rt.foreign_agents():
            fa.conf = replace(fa.conf, max_pending=max_pending)
    h.start()
    if ingress == "greedy":
        greedy_ingress(rt)
    aaa_delay = {"s": 0.0}
    aaah = rt.nodes["aaah"]
    handle = aaah.handler

    async def slow_handler(req: Any, conn: Any) -> Any:
        """A distant or struggling home AAA: every answer ``aaa_delay`` s late."""
        if aaa_delay["s"]:
            await asyncio.sleep(aaa_delay["s"])
        return await handle(req, conn)  # type: ignore[misc]
    aaah.handler = slow_handler
    samples: list[dict[str, Any]] = []
    lag: list[float] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sampler() -> None:
        while not stop.wait(0.25):
            samples.append({"t": round(time.monotonic() - t0, 2), "rss_kib": rss_kib(),
                            "in_flight": {f.conf.name: len(f.pending)
                                          for f in rt.foreign_agents()},
                            "tasks": sum(len(ep._tasks) for ep in rt.ingress.values())})

    async def lag_monitor() -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.01)
            lag.append((loop.time() - t - 0.01) * 1000.0)

    threading.Thread(target=sampler, daemon=True).start()
    asyncio.run_coroutine_threadsafe(lag_monitor(), rt.loop)
    _reply({"ready": True, "pid": os.getpid(), "ha": h.ha_ip,
            "ingress": {k: list(ep.address) for k, ep in rt.ingress.items()},
            "coa": {k: h.topo.gateways[k.split(":", 1)[1]].core.ip for k in rt.ingress},
            "max_pending": {f.conf.name: f.conf.max_pending for f in rt.foreign_agents()}})
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd.get("cmd")
        if op == "stats":
            since = float(cmd.get("since", 0.0))
            window = [s for s in samples if s["t"] >= since]
            _reply({"t": round(time.monotonic() - t0, 2),
                    "roles": {k: dict(getattr(r, "counters", {}))
                              for k, r in rt.roles.items()},
                    "rss_kib": rss_kib(), "samples": window,
                    "bindings": len(rt.roles["ha"].bindings),
                    "loop_lag_ms": summary(list(lag), 1),
                    "diameter": {k: dict(n.counters) for k, n in rt.nodes.items()}})
            if cmd.get("reset"):
                lag.clear()
        elif op == "aaa-delay":
            aaa_delay["s"] = float(cmd["s"])
            _reply({"ok": True})
        elif op == "check":
            _reply(h.call(consistency(h)))
        elif op == "quit":
            break
    stop.set()
    h.stop()
    _reply({"bye": True})
    return 0


async def consistency(h: LeakHarness) -> dict[str, Any]:
    """What the state of the idle runtime says: problems (empty = consistent)."""
    rt = h.rt
    ha = rt.roles["ha"]
    problems: list[str] = []
    fas = {f.conf.name: f for f in rt.foreign_agents()}
    expected: dict[str, set[str]] = {name: set() for name in h.gws}
    for spec in rt.static_tunnels:
        for end in spec.ends():
            expected[end].add(spec.tunnel_id)
    for nai, b in ha.bindings.items():
        fa = fas.get(b.foreign_agent)
        visitor = fa.visitors.get(nai) if fa else None
        if visitor is None:
            problems.append(f"HA binding {nai} at {b.foreign_agent}: no FA visitor")
            continue
        table = h.tables.get(fa.conf.access_dpid)
        macs = {str(v).lower() for f in (table.flows if table else [])
                for k, v in f.match if k in ("eth_src", "eth_dst")}
        if visitor.mn_mac.lower() not in macs:
            problems.append(f"{nai}: no steering flows at {fa.conf.name}'s switch")
        for t in b.vpn_info.tunnels_of(ha.name):
            if t.psk:
                expected[ha.name].add(t.tunnel_id)
        for t in visitor.vpn_info.tunnels_of(fa.conf.name):
            expected[fa.conf.name].add(t.tunnel_id)
    for name, fa in fas.items():
        for nai in fa.visitors:
            b = ha.bindings.get(nai)
            if b is None or b.foreign_agent != name:
                problems.append(f"FA {name} visitor {nai}: no HA binding there")
    for name, gw in h.gws.items():
        live = set(gw.tunnels_up)
        if live - expected[name]:
            problems.append(f"{name}: {len(live - expected[name])} live tunnels nobody "
                            f"holds, e.g. {sorted(live - expected[name])[:2]}")
        if expected[name] - live:
            problems.append(f"{name}: {len(expected[name] - live)} tunnels missing, e.g. "
                            f"{sorted(expected[name] - live)[:2]}")
    visitors = sum(len(f.visitors) for f in fas.values())
    flows = sum(len(t.flows) for t in h.tables.values())
    stuck = {}
    for key, role in rt.roles.items():
        for attr in ("pending", "handoff_pending"):
            n = len(getattr(role, attr, {}) or {})
            if n:
                stuck[f"{key}.{attr}"] = n
    in_flight = sum(len(c._pending) for n in rt.nodes.values() for c in n.connections)
    if stuck:
        problems.append(f"pending entries left: {stuck}")
    if in_flight:
        problems.append(f"{in_flight} Diameter requests in flight")
    return {"bindings": len(ha.bindings), "visitors": visitors, "flows": flows,
            "tunnels_live": {n: len(g.tunnels_up) for n, g in h.gws.items()},
            "pending_left": stuck, "diameter_in_flight": in_flight,
            "problems": problems[:20], "problem_count": len(problems),
            "consistent": not problems}


# =================================================================== driver


class OverloadServer(Server):
    """``bench.registration.Server`` running this module's ``--serve``."""

    def __init__(self, *extra: str) -> None:  # noqa: D107 - same protocol as Server
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.overload", "--serve", *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            cwd=str(REPO), env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.info = self.read(60)
        if not self.info.get("ready"):
            raise RuntimeError(f"overload server failed: {self.info} {self.stderr()}")


class MnLoadGenerator(LoadGenerator):
    """``LoadGenerator`` whose virtual MNs give up on a reply after ``timeout`` s (an MN
    retransmits, RFC 5944 §3.6.3): the user may register again, the request counts as
    timed out.  Without it, every request the kernel dropped under overload would keep
    its user busy for ever and the offered load would collapse."""

    def __init__(self, info: dict[str, Any], users: int, timeout: float = 3.0) -> None:
        super().__init__(info, users)
        self.timeout = timeout
        self.timed_out = 0

    def _send_one(self) -> bool:
        cutoff = time.perf_counter() - self.timeout
        busy = self.busy
        while busy:
            home, (_i, _ident, t) = next(iter(busy.items()))
            if t > cutoff:
                break
            del busy[home]
            self.timed_out += 1
        return super()._send_one()


def phase(srv: OverloadServer, gen: MnLoadGenerator, name: str, rate: float,
          duration: float) -> dict[str, Any]:
    t_start = srv.call(cmd="stats", reset=True)["t"]
    gen.timed_out = 0
    r = gen.open_loop(rate, duration)
    st = srv.call(cmd="stats", since=t_start)
    srv.wait_idle(60)
    codes = {int(k): v for k, v in r["codes"].items()}
    rss = [s["rss_kib"] for s in st["samples"]]
    in_flight = [sum(s["in_flight"].values()) for s in st["samples"]]
    denied = sum(c.get("admission_denied", 0) for k, c in st["roles"].items()
                 if k.startswith("fa:"))
    return {"phase": name, "offered_per_s": rate, "duration_s": duration,
            "sent": r["sent"], "accepted": codes.get(0, 0),
            "refused_66": codes.get(66, 0),
            "other_codes": {str(k): v for k, v in codes.items() if k not in (0, 66)},
            "timed_out": gen.timed_out + r["unanswered"],
            "unanswered_at_end": r["unanswered"], "user_busy_skips": r["user_busy_skips"],
            "accepted_per_s": round(codes.get(0, 0) / duration, 1),
            "latency_ms": r["latency_ms"],
            "fa_admission_denied_total": denied,
            "server_rss_kib": {"start": rss[0] if rss else None,
                               "max": max(rss) if rss else None,
                               "end": rss[-1] if rss else None},
            "max_in_flight": max(in_flight) if in_flight else 0,
            "ha_bindings_after": st["bindings"],
            "loop_lag_ms": st["loop_lag_ms"],
            "rss_series": [(s["t"] - t_start, s["rss_kib"]) for s in st["samples"]],
            "in_flight_series": [(s["t"] - t_start, sum(s["in_flight"].values()))
                                 for s in st["samples"]]}


def run(nominal: float, multiple: float, duration: float, nominal_duration: float,
        users: int, max_pending: int | None, topology: str | None,
        slow_aaa: float = 0.0, slow_duration: float = 10.0,
        ingress: str = "greedy") -> dict[str, Any]:
    extra = ["--users", str(users), "--ingress", ingress]
    if max_pending is not None:
        extra += ["--max-pending", str(max_pending)]
    if topology:
        extra += ["--config", topology]
    srv = OverloadServer(*extra)
    gen = MnLoadGenerator(srv.info, users)
    res: dict[str, Any] = {"nominal_per_s": nominal, "multiple": multiple,
                           "ingress": ingress,
                           "users": users, "max_pending": srv.info["max_pending"]}
    try:
        res["phases"] = []
        plan = [("nominal", nominal, nominal_duration, 0.0),
                (f"{multiple:g}x", nominal * multiple, duration, 0.0)]
        if slow_aaa > 0:
            plan.append((f"{multiple:g}x, home AAA answers {slow_aaa:g} s late",
                         nominal * multiple, slow_duration, slow_aaa))
        for name, rate, dur, delay in plan:
            if dur <= 0:
                continue
            print(f"{name}: offering {rate:,.0f} registrations/s for {dur:g} s ...",
                  flush=True)
            srv.call(cmd="aaa-delay", s=delay)
            p = phase(srv, gen, name, rate, dur)
            p["aaa_delay_s"] = delay
            res["phases"].append(p)
            print(f"  sent {p['sent']:,}: accepted {p['accepted']:,} "
                  f"({p['accepted_per_s']:,.0f}/s), refused 66 {p['refused_66']:,}, other "
                  f"{p['other_codes']}, timed out (no reply in 3 s) {p['timed_out']:,}; p50 "
                  f"{p['latency_ms']['median']} ms p99 {p['latency_ms']['p99']} ms; "
                  f"in flight max {p['max_in_flight']}; server RSS "
                  f"{p['server_rss_kib']['start']} -> max {p['server_rss_kib']['max']} KiB",
                  flush=True)
        res["server_alive"] = srv.proc.poll() is None
        res["consistency"] = None
        if res["server_alive"]:
            srv.call(cmd="aaa-delay", s=0.0)
            deadline = time.monotonic() + 30   # the slow AAA's backlog drains first
            while True:
                c = srv.call(cmd="check")
                if not c["pending_left"] and not c["diameter_in_flight"] or \
                        time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            res["consistency"] = c
        c = res["consistency"] or {}
        print(f"server alive: {res['server_alive']}; consistent: {c.get('consistent')} "
              f"({c.get('bindings')} bindings, {c.get('visitors')} visitors, "
              f"{c.get('flows')} flows, tunnels {c.get('tunnels_live')}, pending left "
              f"{c.get('pending_left')})", flush=True)
        for p in c.get("problems", [])[:5]:
            print(f"    {p}", flush=True)
    finally:
        gen.close()
        srv.close()
    return res


def plot(res: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    over = [p for p in res.get("phases", []) if p["phase"] != "nominal"
            and not p.get("aaa_delay_s")]
    if plt is None or not over:
        return
    p = over[0]
    fig, a = plt.subplots(figsize=(7, 4))
    a.plot([t for t, _ in p["rss_series"]], [v / 1024 for _, v in p["rss_series"]], "-",
           label="server RSS (MiB)")
    a.set_xlabel("s since the overload started")
    a.set_ylabel("MiB")
    a.set_ylim(bottom=0)
    b = a.twinx()
    b.plot([t for t, _ in p["in_flight_series"]], [v for _, v in p["in_flight_series"]],
           color="C1", label="registrations in flight (all FAs)")
    b.set_ylabel("in flight")
    b.set_ylim(bottom=0)
    a.legend(loc="lower left")
    b.legend(loc="lower right")
    a.set_title(f"{p['offered_per_s']:,.0f} registrations/s offered for "
                f"{p['duration_s']:g} s")
    save_plot(fig, path)


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser("overload", __doc__)
    ap.add_argument("--nominal", type=float, default=100.0,
                    help="nominal registration rate (docs/decisions.md)")
    ap.add_argument("--multiple", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=30.0, help="overload seconds")
    ap.add_argument("--nominal-duration", type=float, default=5.0)
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--max-pending", type=int, default=None,
                    help="override every FA's max_pending (default: the topology's)")
    ap.add_argument("--slow-aaa", type=float, default=1.0,
                    help="then the same overload with the home AAA answering this many "
                         "seconds late (0: skip): the FAs' admission control at work")
    ap.add_argument("--slow-duration", type=float, default=10.0)
    ap.add_argument("--ingress", choices=("greedy", "asyncio"), default="greedy",
                    help="greedy: RRQs reach the FA as they arrive, like packet-ins "
                         "(default); asyncio: the datagram transport's one per loop "
                         "iteration (the backlog waits in the kernel)")
    ap.add_argument("--config", default=None)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--log-level", default="ERROR", help="server log level")
    args = parse_bench_args(ap, argv)
    if args.serve:
        logging.basicConfig(level=getattr(logging, args.log_level), stream=sys.stderr)
        return serve(args.users, args.config, args.max_pending, args.ingress)
    m = print_machine()
    print(f"overload: nominal {args.nominal:g}/s, {args.multiple:g}x for "
          f"{args.duration:g} s; {args.users:,} users; controller in its own process; "
          f"{args.ingress} ingress",
          flush=True)
    res = run(args.nominal, args.multiple, args.duration, args.nominal_duration,
              args.users, args.max_pending, args.config, args.slow_aaa,
              args.slow_duration, args.ingress)
    res = {"benchmark": "overload", "machine": m, **res}
    save_results("overload", args.json, res, None if args.no_plot else plot)
    ok = res["server_alive"] and (res["consistency"] or {}).get("consistent")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
