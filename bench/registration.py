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
- profile: the saturation run again with cProfile on the server's event-loop thread,
  and from it the server's CPU per registration split by component (codec, transport,
  roles, persistence, MIPv4, event loop: ``registration_report.cpu_by_component``),
  scaled to the unprofiled run's CPU per registration.

    python -m bench.registration [--users 10000] [--loads 100,500,1000,2000]
        [--windows 1,8,32,128] [--duration 3] [--json F]
"""

from __future__ import annotations

import argparse
import json
import re
import logging
import os
import sys
import tempfile
import time
from typing import Any

from bench.common import bench_parser, parse_bench_args, print_machine, save_results
from bench.registration_load import (  # noqa: F401  (re-exported)
    LoadGenerator, process_cpu_s, ref_client_pydiameter, ref_ours, ref_pydiameter)
from bench.registration_report import (  # noqa: F401  (re-exported)
    _all_rows, _short, component_table, cpu_by_component, group_profile, plot, profile_top)
from bench.registration_server import (  # noqa: F401  (re-exported)
    HOME_ROLES, KEY, RRP, SPI, USER_BASE, USER_SPACING, Server, ServerGroup, _amr_fields,
    _reply, build_user_rrq, fixed_port_topology_file, free_port_topology, placement,
    serve_ref_ours, serve_ref_pydiameter, serve_runtime, user_nai)
from controller.textutil import table


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
    # which build of the hot modules the server ran (issue 15): compiled or pure
    res["server_build"] = srv.info.get("build")
    print(f"server: {res['server_build']}", flush=True)
    try:
        print("warm-up (every user registers once) ...", flush=True)
        gen.closed_loop(16, max(1.0, min(users / 300.0, 30.0)), warmup=0.0)
        srv.wait_idle()
        # ... really (issue 15): on a loaded machine the time above was not enough, and
        # the measured loops mixed first registrations into the renewals
        deadline = time.monotonic() + 120.0
        while srv.call(cmd="stats").get("bindings", users) < users \
                and time.monotonic() < deadline:
            gen.closed_loop(16, 2.0, warmup=0.0)
            srv.wait_idle()
        srv.call(cmd="freeze")
        before = srv.call(cmd="stats")
        res["saturation"] = []
        for w in windows:
            st0 = srv.call(cmd="stats", reset=True)
            r = gen.closed_loop(w, duration)
            _server_view(r, srv.call(cmd="stats"), st0)
            srv.wait_idle()
            res["saturation"].append(r)
            print(f"  closed loop, {w:>4} outstanding: {r['rate']:>7,.0f} registrations/s  "
                  f"p50 {r['latency_ms']['median']} ms  p99 {r['latency_ms']['p99']}"
                  f" ms  codes {r['codes']}  CPU/registration: server "
                  f"{r['server_cpu_us_per_reg']} us (kernel "
                  f"{r['server_system_us_per_reg']} us), load generator "
                  f"{r['loadgen_cpu_us_per_reg']} us; state transactions/registration "
                  f"{r.get('state_commits_per_reg')}", flush=True)
            print(f"    server CPU us/registration by thread: "
                  f"{r.get('server_thread_cpu_us_per_reg')}", flush=True)
            print(f"    first registrations {r.get('first_registrations')}, renewals "
                  f"{r.get('renewals')}; gateway calls/registration "
                  f"{r.get('gateway_calls_per_reg')}", flush=True)
        res["open_loop"] = []
        best_rate = max(r["rate"] for r in res["saturation"])
        for rate in loads:
            if rate > 2.0 * best_rate:
                print(f"  offered {rate:>6,.0f}/s: skipped (more than twice the saturation "
                      f"rate: the backlog would take minutes to drain)", flush=True)
                res["open_loop"].append({"offered": rate, "skipped": "above saturation"})
                continue
            st0 = srv.call(cmd="stats", reset=True)
            r = gen.open_loop(rate, duration)
            _server_view(r, srv.call(cmd="stats"), st0)
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
            same = [x for x in res["saturation"] if x["window"] == best]
            res["cpu_by_component"] = cpu_by_component(
                prof_file, same[0]["server_cpu_us_per_reg"] if same else None,
                r["completed"])
            print(f"CPU per registration by component (server process, window {best}; "
                  "shares from the profile, scaled to the unprofiled run's CPU):",
                  flush=True)
            print(component_table(res["cpu_by_component"]), flush=True)
            os.unlink(prof_file)
    finally:
        gen.close()
        srv.close()
    return res


def _server_view(r: dict[str, Any], st: dict[str, Any],
                 before: dict[str, Any] | None = None) -> None:
    """Attach the server's stall detectors for the phase just run, and (with the
    statistics from before it) the state store's transactions per registration."""
    r["server_loop_lag_ms"] = st.get("loop_lag_ms")
    if "server_thread_cpu_us_per_reg" in r:
        r["server_thread_cpu_us_per_reg"] = thread_shares(
            r["server_thread_cpu_us_per_reg"], st.get("threads", {}))
    r["server_gc"] = st.get("gc")
    if before is not None and "state_commits" in st:
        def accepted(x: dict[str, Any]) -> int:
            return sum(c.get("accepted", 0) for k, c in x.get("roles", {}).items()
                       if k.startswith("fa:"))
        done = accepted(st) - accepted(before)
        if done > 0:
            r["state_commits_per_reg"] = round(
                (st["state_commits"] - before.get("state_commits", 0)) / done, 2)
            # issue 15: how many were first registrations (a new binding at the HA),
            # the rest renewals (the users register at the same FA every time), and
            # the gateway driver calls per registration, by kind
            r["first_registrations"] = st.get("bindings", 0) - before.get("bindings", 0)
            r["renewals"] = done - r["first_registrations"]
            r["gateway_calls_per_reg"] = {
                k.removeprefix("tunnel_"): round((sum(st.get(k, {}).values())
                                                  - sum(before.get(k, {}).values())) / done, 3)
                for k in ("tunnel_adds", "tunnel_promotes", "tunnel_rekeys", "tunnel_removes")}



def thread_shares(per_tid: dict[str, float], names: dict[str, str]) -> dict[str, float]:
    """CPU µs per registration by thread kind: the event loop ("mipvpn-loop"), the
    executor's and gateways' worker pools (a pool's threads summed), the rest; threads
    gone before the statistics were read count as "ended threads"."""
    out: dict[str, float] = {}
    for key, us in per_tid.items():
        name = names.get(key, "ended threads")
        kind = re.sub(r"_\d+$", "", name)     # ThreadPoolExecutor-0_3 -> ...-0
        out[kind] = round(out.get(kind, 0.0) + us, 1)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


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
                         "mipvpn controller writes), no-persist; asyncio-loop (the "
                         "runtime on asyncio's event loop instead of uvloop's); "
                         "inline-gateways (the instant tunnel drivers called in the "
                         "loop's thread, not handed to worker threads); "
                         "gc-threshold:A:B:C (gc.set_threshold(A, B, C) after the "
                         "product's GC tuning)")
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
