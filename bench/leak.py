"""Leaks over register/expire cycles: lifetime expiry without renewal removes the
binding, its tunnels and its flows, and nothing else stays behind (issue 5).

The controller runtime (``controller.runtime.Runtime``: every role, Diameter over
loopback TCP, Mobile IPv4 over UDP) runs in this process with recording gateways
(live tunnel set per gateway: adds minus removes) and a flow sink that applies every
flow-mod batch to a fake OpenFlow table per switch
(``controller/testing/fakeoftable.py``).
Its clock (``Runtime.now``) is a fake one the benchmark advances, so a cycle does not
wait for lifetimes in real time; everything else is real (sockets, Diameter, MIPv4
authenticators, identification timestamps checked against that clock).

One cycle: N virtual MNs register (real RRQs, MN-AAA authenticated, over UDP to the FA
ingress; alternately through fa1 and fa2), the clock jumps past their lifetime and the
FAs' retransmission hold, every role's lifetime tick runs; then the state must be back
at the baseline measured before the first cycle: HA bindings and pending updates,
AAAH/AAAF session caches and pending maps, FA visitors / pending / departed /
in-progress holds / handoffs, CN-GW bindings, the runtime's tunnel log, virtual-MN
addresses, open handover records, barriers, Diameter in-flight requests, live tunnels
per gateway and installed flows per switch.  Memory (tracemalloc and RSS) is sampled
every ``--sample`` cycles after a warm-up; the slope per 100 cycles is reported (a
least-squares fit), with the allocation sites that grew most between the end of the
warm-up and the end of the run.

    python -m bench.leak [--cycles 1000] [--mns 10] [--lifetime 2] [--json F]
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import socket
import sys
import tempfile
import shutil
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.common import (bench_parser, parse_bench_args, print_machine, pyplot, save_plot,
                          save_results)

USER_BASE = ipaddress.IPv4Address("10.64.0.0")
KEY = bytes(range(16))
SPI = 300


def user_nai(i: int) -> str:
    return f"user{i}@home.example"


class FakeClock:
    """Wall-clock seconds that only move when told (``Runtime.now`` replaced)."""

    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def rss_kib() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 with fewer than two points)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


class LeakHarness:
    """The runtime with live-tunnel gateways, fake flow tables and a fake clock."""

    def __init__(self, mns: int, lifetime: int, topology: str | None = None, *,
                 fake_clock: bool = True) -> None:
        from bench.registration import free_port_topology
        from controller.core.aaa_home import Destination, UserRecord, VpnProfile
        from controller.core.vpn import QosSpec, SecuritySpec
        from controller.testing.gateways import RecordingGateway
        from controller.runtime import Runtime
        from controller.testing.fakeoftable import FakeOFTable

        class LiveGateway(RecordingGateway):
            """Live tunnel set, add/remove counts; no ever-growing log."""

            def __init__(self, name: str) -> None:
                super().__init__(name)
                self.adds = self.removes = 0

            def add_tunnel(self, side: Any, timeout: float = 5.0) -> float:
                with self._lock:
                    self.adds += 1
                    self.tunnels_up[side.tunnel_id] = side.tunnel_id
                return 0.0

            def remove_tunnel(self, tunnel_id: str) -> None:
                with self._lock:
                    self.removes += 1
                    self.tunnels_up.pop(tunnel_id, None)

        self.mns = mns
        self.lifetime = lifetime
        self.topo = free_port_topology(topology)
        self.gws: dict[str, LiveGateway] = {}
        self.tables: dict[int, Any] = {}
        self.other_mods = 0

        def factory(name: str) -> LiveGateway:
            self.gws[name] = LiveGateway(name)
            return self.gws[name]

        def sink(dpid: int, mods: Any) -> None:
            table = self.tables.setdefault(dpid, FakeOFTable(dpid))
            flow_mods = [m for m in mods if hasattr(m, "flow")]
            self.other_mods += len(mods) - len(flow_mods)   # meters (QoS)
            table.apply(flow_mods)

        self.run_dir = tempfile.mkdtemp(prefix="mipvpn-leak-")
        self.clock = FakeClock()
        self.rt = Runtime(self.topo, self.run_dir, ":memory:", rest=None,
                          gateway_factory=factory, flow_sink=sink, fa_ingress=True,
                          advertise=False)
        if fake_clock:
            self.rt.now = self.clock  # type: ignore[method-assign]
        conf = next(iter(self.topo.vpn_profiles.values()), None)
        dests = tuple(Destination(d.prefix, d.gateway) for d in conf.destinations) \
            if conf else ()
        sec = SecuritySpec(conf.security.ike, conf.security.esp) if conf else SecuritySpec()
        for i in range(mns):
            nai = user_nai(i)
            self.rt.store.put_user(UserRecord(nai, str(USER_BASE + i), "ha", SPI, KEY))
            self.rt.store.put_profile(VpnProfile(nai, dests, sec, QosSpec()))
        self.ha_ip = self.topo.gateways["ha"].core.ip
        self.fas = sorted(k.split(":", 1)[1] for k in self.rt.roles if k.startswith("fa:"))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.rt.start()
        if not self.call(self.rt.wait_links(), 15):
            raise RuntimeError("Diameter links did not come up")
        if self.rt.now is self.clock:
            # the benchmark runs the lifetime ticks itself, right after moving the
            # clock: the runtime's periodic ticker would race it (state checked while
            # its removals are still in flight)
            self.call(self._stop_ticker())
        # the stationary CN-GW <-> HA tunnel(s) are part of the baseline
        deadline = time.monotonic() + 10
        want = sum(len(s.ends()) for s in self.rt.roles["aaah"].static_tunnels())
        while sum(len(g.tunnels_up) for g in self.gws.values()) < want or any(
                self.rt.gateway_health.get(n, {}).get("reconciles", 0) < 1
                for n in self.gws):   # and every gateway's start-up reconcile is done
            if time.monotonic() > deadline:
                raise RuntimeError("static tunnels not set")
            time.sleep(0.02)

    def stop(self) -> None:
        self.sock.close()
        self.rt.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.rt.loop).result(timeout)

    # ------------------------------------------------------------ one cycle

    def register_all(self, fa: str, timeout: float = 10.0) -> dict[int, int]:
        from controller.loadgen import build_rrq
        from controller.proto import mip
        ep = self.rt.ingress[f"fa:{fa}"].address
        coa = self.topo.gateways[fa].core.ip
        ident = mip.ntp_identification(self.clock.t)
        for i in range(self.mns):
            raw = build_rrq(user_nai(i), str(USER_BASE + i), self.ha_ip, coa, SPI, KEY,
                            ident + i, lifetime=self.lifetime)
            self.sock.sendto(raw, ep)
        codes: dict[int, int] = {}
        self.sock.settimeout(timeout)
        got = 0
        while got < self.mns:
            try:
                data, _ = self.sock.recvfrom(4096)
            except socket.timeout:
                break
            if len(data) >= 2 and data[0] == mip.REGISTRATION_REPLY:
                codes[data[1]] = codes.get(data[1], 0) + 1
                got += 1
        return codes

    def expire(self) -> None:
        """Jump past the lifetime and the FAs' retransmission hold; run every tick."""
        from controller.core import foreign_agent
        self.clock.t += self.lifetime + foreign_agent.IN_PROGRESS_HOLD + 1.0
        rt = self.rt

        async def tick() -> None:
            # the tasks a registration leaves (e.g. "left elsewhere") finish first
            await self._settle()
            now = rt.now()
            for key, role in list(rt.roles.items()):
                if hasattr(role, "on_tick"):
                    actions = role.on_tick(now)
                    if actions:
                        await rt.execute(key, actions)
            await self._settle()
        self.call(tick())

    async def _stop_ticker(self) -> None:
        for task in list(self.rt._tasks):
            if "_ticker" in repr(task.get_coro()):
                task.cancel()

    async def _settle(self) -> None:
        me = asyncio.current_task()
        for _ in range(200):
            busy = [t for t in self.rt._tasks if not t.done() and t is not me
                    and "_left_elsewhere" in repr(t.get_coro())]
            if not busy:
                return
            await asyncio.sleep(0.005)

    # ------------------------------------------------------------ state

    def state(self) -> dict[str, int]:
        return self.call(self._state())  # type: ignore[no-any-return]

    async def _state(self) -> dict[str, int]:
        rt = self.rt
        s: dict[str, int] = {}
        for key, role in sorted(rt.roles.items()):
            for attr in ("bindings", "sessions", "pending", "visitors", "departed",
                         "in_progress", "handoffs", "handoff_pending", "_handoff_ident",
                         "_last_ident", "session_expires"):
                val = getattr(role, attr, None)
                if isinstance(val, dict):
                    s[f"{key}.{attr}"] = len(val)
        s["runtime.tunnel_log"] = len(rt.tunnel_log)
        s["runtime.virtual_mn"] = len(rt._virtual_mn)
        s["runtime.on_demand_seen"] = len(rt._on_demand_seen)
        s["runtime.barriers"] = len(rt.barriers)
        s["runtime.handovers_open"] = len(rt.handovers.open)
        s["runtime.tasks"] = sum(1 for t in rt._tasks if not t.done())
        for key, node in sorted(rt.nodes.items()):
            s[f"diameter.{key}.connections"] = len(node.connections)
            s[f"diameter.{key}.in_flight"] = sum(len(c._pending) for c in node.connections)
        eps = [(f"mip.{k}", ep) for k, ep in rt.mip.items()] + [
            (f"ingress.{k}", ep) for k, ep in rt.ingress.items()]
        for key, ep in sorted(eps, key=lambda kv: kv[0]):
            s[f"{key}.waiting"] = len(getattr(ep, "_waiting", {}))
            s[f"{key}.tasks"] = sum(1 for t in getattr(ep, "_tasks", ()) if not t.done())
        for name, gw in sorted(self.gws.items()):
            s[f"tunnels.{name}"] = len(gw.tunnels_up)
            s[f"tunnels.{name}.adds_minus_removes"] = gw.adds - gw.removes
        for dpid, table in sorted(self.tables.items()):
            s[f"flows.{rt.fabric.switch_of_dpid(dpid) or hex(dpid)}"] = len(table.flows)
        s["metrics.series"] = sum(len(getattr(m, "_metrics", {}) or {})
                                  for m in _collectors(rt.metrics))
        return s

    def fill_cycles(self, cycles_run: int) -> int:
        """Cycles after which the runtime's bounded history buffers (handover log,
        each Diameter node's latency window) are full, from how fast each filled in
        the first ``cycles_run`` cycles: memory grows until then by design."""
        rt = self.rt
        need = 0
        bufs = [rt.handovers.records] + [n.latencies for n in rt.nodes.values()]
        for buf in bufs:
            per_cycle = len(buf) / max(1, cycles_run)
            if per_cycle and buf.maxlen:
                need = max(need, int(buf.maxlen / per_cycle) + 1)
        return need


def _collectors(metrics: Any) -> list[Any]:
    return [v for v in vars(metrics).values() if hasattr(v, "_metrics")]


#: not expected back at the baseline: Prometheus label sets (one series per result code
#: / kind / phase / switch seen: bounded, checked for growth after the warm-up instead)
NOT_BASELINE = ("metrics.series",)


def diff(state: dict[str, int], base: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Keys whose value is not back at the baseline."""
    out = {}
    for k in sorted(set(state) | set(base)):
        if k in NOT_BASELINE:
            continue
        if state.get(k, 0) != base.get(k, 0):
            out[k] = (base.get(k, 0), state.get(k, 0))
    return out


def run(cycles: int, mns: int, lifetime: int, sample: int, warmup: int | None,
        topology: str | None = None, top: int = 8, progress: bool = True) -> dict[str, Any]:
    """``warmup`` cycles (default: until the bounded history buffers are full), then
    ``cycles`` measured cycles; every cycle is checked against the baseline."""
    h = LeakHarness(mns, lifetime, topology)
    h.start()
    try:
        base = h.state()
        res: dict[str, Any] = {"cycles": cycles, "mns": mns, "lifetime_s": lifetime,
                               "sample_every": sample, "baseline": base}
        codes: dict[int, int] = {}
        mismatched: list[dict[str, Any]] = []
        samples: list[dict[str, Any]] = []
        peak: dict[str, int] = {}
        snap0 = None
        warm = warmup
        tracemalloc.start(1)
        t0 = time.perf_counter()
        c = 0
        while True:
            c += 1
            if warm is None and c == 3:   # two cycles: one through each FA
                warm = h.fill_cycles(2)
                res["bounded_buffers_full_after_cycles"] = warm
            measured = c - (warm or 0)
            if warm is not None and measured > cycles:
                break
            fa = h.fas[(c - 1) % len(h.fas)]
            got = h.register_all(fa)
            for k, v in got.items():
                codes[k] = codes.get(k, 0) + v
            if c == 1:
                res["registered_state"] = h.state()
            if c <= 3 or c % sample == 0:
                for k, v in h.state().items():
                    peak[k] = max(peak.get(k, 0), v)
            h.expire()
            st = h.state()
            d = diff(st, base)
            if d:
                mismatched.append({"cycle": c, "diff": {k: list(v) for k, v in d.items()}})
            if warm is not None and c == warm:
                res["metrics_series_after_warmup"] = st["metrics.series"]
                gc.collect()
                snap0 = tracemalloc.take_snapshot()
            if c % sample == 0 or (warm is not None and measured == cycles):
                gc.collect()
                cur, _peak = tracemalloc.get_traced_memory()
                samples.append({"cycle": c, "measured": warm is not None and measured > 0,
                                "traced_kib": round(cur / 1024, 1), "rss_kib": rss_kib(),
                                "elapsed_s": round(time.perf_counter() - t0, 2)})
                if progress:
                    print(f"  cycle {c:>5}{' (warm-up)' if not samples[-1]['measured'] else '':10}"
                          f" traced {cur / 1024:9.1f} KiB  RSS {samples[-1]['rss_kib']:>7} KiB"
                          f"  not at baseline: {len(mismatched)} cycles  "
                          f"({samples[-1]['elapsed_s']} s)", flush=True)
        gc.collect()
        snap1 = tracemalloc.take_snapshot()
        tracemalloc.stop()
        elapsed = time.perf_counter() - t0
        after = [s for s in samples if s["measured"]] or samples
        res.update({
            "warmup_cycles": warm,
            "total_cycles": c - 1,
            "elapsed_s": round(elapsed, 1),
            "registrations": sum(codes.values()),
            "codes": {str(k): v for k, v in sorted(codes.items())},
            "final_state": h.state(),
            "metrics_series_final": st["metrics.series"],
            "cycles_not_at_baseline": len(mismatched),
            "first_mismatches": mismatched[:5],
            "peak_state_while_registered": peak,
            "samples": samples,
            "traced_slope_kib_per_100_cycles": round(100 * slope(
                [s["cycle"] for s in after], [s["traced_kib"] for s in after]), 2),
            "rss_slope_kib_per_100_cycles": round(100 * slope(
                [s["cycle"] for s in after], [s["rss_kib"] for s in after]), 2),
            "traced_kib_measured": [after[0]["traced_kib"], after[-1]["traced_kib"]],
            "rss_kib_measured": [after[0]["rss_kib"], after[-1]["rss_kib"]],
            "traced_slope_all_kib_per_100_cycles": round(100 * slope(
                [s["cycle"] for s in samples], [s["traced_kib"] for s in samples]), 2),
            "gateway_totals": {n: {"adds": g.adds, "removes": g.removes}
                               for n, g in h.gws.items()},
        })
        if snap0 is not None:
            stats = snap1.compare_to(snap0, "lineno")
            res["top_growth_after_warmup"] = [
                {"where": str(s.traceback[0]) if s.traceback else "?",
                 "size_diff_kib": round(s.size_diff / 1024, 1), "count_diff": s.count_diff}
                for s in stats[:top]]
        return res
    finally:
        h.stop()


def plot(res: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    if plt is None or not res.get("samples"):
        return
    fig, a = plt.subplots(figsize=(7, 4))
    xs = [s["cycle"] for s in res["samples"]]
    a.plot(xs, [s["traced_kib"] / 1024 for s in res["samples"]], "o-",
           label="tracemalloc (MiB)")
    a.plot(xs, [s["rss_kib"] / 1024 for s in res["samples"]], "s-", label="RSS (MiB)")
    a.axvline(res["warmup_cycles"], color="grey", linestyle=":",
              label="end of warm-up (bounded history buffers full)")
    a.set_xlabel("register/expire cycles")
    a.set_ylabel("MiB")
    a.set_ylim(bottom=0)
    a.set_title(f"{res['mns']} MNs per cycle: memory over cycles")
    a.legend()
    save_plot(fig, path)


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser("leak", __doc__)
    ap.add_argument("--cycles", type=int, default=1000, help="measured cycles")
    ap.add_argument("--mns", type=int, default=10, help="MNs registering per cycle")
    ap.add_argument("--lifetime", type=int, default=2, help="registration lifetime (s)")
    ap.add_argument("--sample", type=int, default=25, help="memory sample every N cycles")
    ap.add_argument("--warmup", type=int, default=None,
                    help="cycles before the measured ones (default: until the runtime's "
                         "bounded history buffers are full)")
    ap.add_argument("--config", default=None)
    args = parse_bench_args(ap, argv)
    import logging
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    m = print_machine()
    print(f"leak: warm-up + {args.cycles} cycles of {args.mns} MNs register -> expire "
          f"(lifetime {args.lifetime} s, fake clock), runtime in this process", flush=True)
    res = run(args.cycles, args.mns, args.lifetime, max(1, args.sample), args.warmup,
              args.config)
    res = {"benchmark": "leak", "machine": m, **res}
    print()
    print(f"registrations: {res['registrations']:,} (codes {res['codes']}) in "
          f"{res['elapsed_s']} s")
    print(f"cycles whose state was not back at the baseline: "
          f"{res['cycles_not_at_baseline']} of {res['total_cycles']}")
    for mm in res["first_mismatches"][:3]:
        print(f"    cycle {mm['cycle']}: {mm['diff']}")
    reg = res.get("registered_state", {})
    print("while registered -> after expiry (baseline): " + ", ".join(
        f"{k} {reg.get(k)}->{res['final_state'].get(k)} ({res['baseline'].get(k)})"
        for k in sorted(reg) if reg.get(k) != res["baseline"].get(k))[:1500])
    print(f"memory over the {res['cycles']} cycles after {res['warmup_cycles']} warm-up "
          f"cycles: tracemalloc {res['traced_kib_measured'][0]} -> "
          f"{res['traced_kib_measured'][1]} KiB, RSS {res['rss_kib_measured'][0]} -> "
          f"{res['rss_kib_measured'][1]} KiB; slope: tracemalloc "
          f"{res['traced_slope_kib_per_100_cycles']:+.2f} KiB / 100 cycles, RSS "
          f"{res['rss_slope_kib_per_100_cycles']:+.1f} KiB / 100 cycles "
          f"(whole run, tracemalloc: {res['traced_slope_all_kib_per_100_cycles']:+.2f})")
    print(f"Prometheus series: {res.get('metrics_series_after_warmup')} after the warm-up, "
          f"{res['metrics_series_final']} at the end")
    for g in res.get("top_growth_after_warmup", [])[:5]:
        print(f"    {g['size_diff_kib']:+8.1f} KiB {g['count_diff']:+6d} objects  "
              f"{g['where']}")
    save_results("leak", args.json, res, None if args.no_plot else plot)
    return 0 if res["cycles_not_at_baseline"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
