"""Scale: per-handover processing time and memory per binding, 100 -> 100,000 bindings.

The pure core roles (FA, AAAF, AAAH, HA) of the default topology are built with
``controller.core.roles.build_roles`` over an in-memory ``VpnStore`` seeded with N users;
no sockets, no threads.  A synchronous executor (``Runtime.execute``'s semantics, as the
unit-test harness ``tests/unit/harness.py`` walks them) delivers every action at once.

1. Fill: users register through FA1 on the full path (FA -> AAAF -> AAAH -> HA), in
   order, until the roles hold N active bindings (HA binding cache, AAAH and AAAF
   session caches, FA1 visitors).  Filling passes the Diameter dataclasses directly
   (no codec) to be quick.
2. At each size, ``--moves`` sample users (drawn at random among the registered ones)
   move FA1 -> FA2 and back (intra-domain, claim 17: RRQ at FA2 naming the previous FA,
   AAAF answers locally, FA2 relays to the HA, HA re-points, FA1 tears down).  Each move
   is timed end to end with ``perf_counter``, every Diameter message going through
   ``encode`` -> ``decode`` as on the wire.
3. Memory (a second pass, tracemalloc on): traced bytes held after ``gc.collect()`` at
   each size; bytes per binding = the slope between sizes.  SQLite's own memory (the VPN
   database, not per binding state) is not traced.

    python -m bench.scale [--sizes 100,1000,10000,100000] [--moves 500] [--json F]
"""

from __future__ import annotations

import gc
import ipaddress
import random
import sys
import time
import tracemalloc
from typing import Any

from bench.common import (DEFAULT_TOPOLOGY, bench_parser, parse_bench_args, print_machine,
                          pyplot, save_plot, save_results, summary)
from controller.textutil import table
from controller.adapters.store import VpnStore
from controller.config import Topology, load_topology
from controller.core.aaa_home import Destination, UserRecord, VpnProfile
from controller.core.actions import (AddTunnel, AnswerDiameter, Mark, NotifyVisitorLeft,
                                     RelayToHomeAgent, RemoveTunnel, ReplyMip, SendDiameter,
                                     SendFlows, SendMip, SendToMobileNode, VisitorMoved)
from controller.core.dispatch import Dispatch
from controller.core.roles import build_roles
from controller.core.vpn import QosSpec, SecuritySpec
from controller.proto import diameter as dia
from controller.proto import mip, mip_keys, mip_rrq

T0 = 1_700_000_000.0
USER_BASE = ipaddress.IPv4Address("10.64.0.0")   # virtual users' home addresses
KEY = bytes(range(16))
SPI = 300


def user_nai(i: int) -> str:
    return f"user{i}@home.example"


HA_SPI = 301
HA_KEY = bytes(range(16, 32))
_HAS_MN_HA = "mn_ha_key" in getattr(UserRecord, "__dataclass_fields__", {})


def user_record(i: int) -> UserRecord:
    """Virtual user ``i`` (with an MN-HA association when the user model has one:
    the AAAF answers a move locally only when the HA can authenticate it)."""
    extra: dict[str, Any] = {"mn_ha_spi": HA_SPI, "mn_ha_key": HA_KEY} if _HAS_MN_HA else {}
    return UserRecord(user_nai(i), str(USER_BASE + i), "ha", SPI, KEY, **extra)


def seed_users(store: VpnStore, start: int, stop: int, profile_of: Any) -> None:
    for i in range(start, stop):
        store.put_user(user_record(i))
        store.put_profile(profile_of(user_nai(i)))


def make_rrq(store: Any, i: int, ha: str, coa: str, ident: int,
             previous_coa: str | None = None,
             mn_fa: tuple[int, bytes] | None = None) -> bytes:
    """The RRQ of virtual user ``i`` as the MN client builds it: NAI, [previous FA
    CVSE], [MN-HA auth when the user has an MN-HA key], MN-AAA auth, [MN-FA auth with
    ``mn_fa`` (SPI, key) from the nonce of the user's last accepted reply]."""
    user = store.user(user_nai(i)) if store is not None else None
    ha_key = getattr(user, "mn_ha_key", b"") if user is not None else b""
    return mip_rrq.build_rrq(
        nai=user_nai(i), home_address=str(USER_BASE + i), home_agent=ha,
        care_of_address=coa, identification=ident, lifetime=300, mn_aaa_spi=SPI,
        mn_aaa_key=KEY, previous_coa=previous_coa or None,
        ha_spi=user.mn_ha_spi if ha_key else None, ha_key=ha_key or None,
        fa_spi=mn_fa[0] if mn_fa else None, fa_key=mn_fa[1] if mn_fa else None)


class Controller:
    """The roles of one controller and a synchronous executor over them."""

    def __init__(self, topo: Topology, store: VpnStore, *, remember_mn_fa: bool = True
                 ) -> None:
        self.topo = topo
        self.store = store
        self.built = build_roles(topo, store)
        self.roles: dict[str, Any] = self.built.roles
        self.dispatch = Dispatch(self.roles)   # the runtime's routing between roles
        self.wire = True                 # Diameter through encode -> decode
        self.flow_mods = 0
        self.tunnel_ops = 0
        self.replies: list[bytes] = []
        # each user's MN-FA association (SPI, key), derived like the MN client does from
        # the nonce in its last accepted reply (RFC 3957; issue 11): a move is answered
        # by the foreign AAA only when it is signed with it.  Off where nothing moves
        # (the memory pass: the MNs' keys are not the controller's memory).
        self.mn_fa: dict[int, tuple[int, bytes]] | None = {} if remember_mn_fa else None
        dom = self.built.home_domain
        assert dom is not None and dom.home_agent is not None
        self.routes: dict[str, dict[str, str]] = {"aaah": {dom.home_agent.host: "ha"}}
        for key in self.roles:
            if key.startswith("aaaf:"):
                fdom = topo.domains[key.split(":", 1)[1]]
                self.routes[key] = {r: "aaah" for r in self.built.home_realms}
                for k, role in self.roles.items():
                    if k.startswith("fa:") and role.conf.realm == fdom.realm:
                        self.routes[k] = {fdom.realm: key}
        self.ha_core = topo.gateways["ha"].core.ip
        self.coa = {n: g.core.ip for n, g in topo.gateways.items()
                    if g.kind == "foreign_agent"}

    def register(self, now: float, i: int, fa: str, previous: str | None = None) -> bytes:
        """User ``i`` sends a Registration Request at ``fa``; returns the reply bytes."""
        mn_fa = self.mn_fa.get(i) if self.mn_fa is not None else None
        raw = make_rrq(self.store, i, self.ha_core, self.coa[fa], mip.ntp_identification(now),
                       previous_coa=self.coa[previous] if previous else None, mn_fa=mn_fa)
        self.replies.clear()
        key = f"fa:{fa}"
        self.execute(now, key, self.roles[key].on_registration_request(
            now, raw, "02:00:00:00:00:01", 2))
        reply = self.replies[-1] if self.replies else b""
        if self.mn_fa is not None and len(reply) > 1 and reply[1] in (0, 1):
            self._take_nonce(i, reply)
        return reply

    def _take_nonce(self, i: int, reply: bytes) -> None:
        """Keep the MN-FA key of the reply's nonce, if it has one (a move answered by
        the foreign AAA has none: the key stays), as ``MobileNodeState`` does."""
        assert self.mn_fa is not None
        rrp = mip.decode(reply)
        nonce = mip_keys.nonce_reply(rrp) if isinstance(rrp, mip.RegistrationReply) else None
        if nonce is not None:
            self.mn_fa[i] = (nonce.spi, mip_keys.mn_fa_key(KEY, nonce.nonce, user_nai(i)))

    def execute(self, now: float, key: str, actions: list[Any]) -> Any:
        dispatch = self.dispatch
        result = None
        for action in actions:
            if isinstance(action, Mark):
                continue
            if isinstance(action, (AddTunnel, RemoveTunnel)):
                self.tunnel_ops += 1
            elif isinstance(action, SendFlows):
                self.flow_mods += len(action.mods)
            elif isinstance(action, SendDiameter):
                answer = self._diameter(now, key, action)
                follow = dispatch.diameter_outcome(now, key, action.request.session_id,
                                                   answer)
                answer = self.execute(now, key, follow)
                if answer is not None:
                    result = answer
            elif isinstance(action, (AnswerDiameter, ReplyMip)):
                result = action.answer if isinstance(action, AnswerDiameter) else action.raw
            elif isinstance(action, RelayToHomeAgent):
                reply = self.execute(now, "ha",
                                     self.roles["ha"].on_registration_request(now, action.raw))
                self.execute(now, key, dispatch.home_agent_outcome(now, key, action, reply))
            elif isinstance(action, SendToMobileNode):
                self.replies.append(action.raw)
            elif isinstance(action, NotifyVisitorLeft):
                for other, follow in dispatch.visitor_left(now, action):
                    self.execute(now, other, follow)
            elif isinstance(action, VisitorMoved):
                for other, follow in dispatch.left_elsewhere(now, action):
                    self.execute(now, other, follow)
            elif isinstance(action, SendMip):
                pass   # binding messages (route optimisation): none in this topology
            else:
                raise TypeError(f"unknown action {action!r}")
        return result

    def _diameter(self, now: float, key: str, action: SendDiameter) -> Any:
        dst = self.routes[key][action.to]
        request = dia.decode(dia.encode(action.request)) if self.wire else action.request
        receiver = self.roles[dst]
        if isinstance(request, dia.AmRequest):
            actions = receiver.on_amr(now, request)
        else:
            actions = receiver.on_har(now, request)
        answer = self.execute(now, dst, actions)
        if answer is None or not self.wire:
            return answer
        return dia.decode(dia.encode(answer))

    def bindings(self) -> int:
        return len(self.roles["ha"].bindings)


def _profile_factory(topo: Topology) -> Any:
    conf = topo.vpn_profiles.get("alice@home.example")
    dests = (tuple(Destination(d.prefix, d.gateway) for d in conf.destinations) if conf
             else (Destination("10.30.0.0/24", "cngw"),))
    sec = SecuritySpec(conf.security.ike, conf.security.esp) if conf else SecuritySpec()
    return lambda nai: VpnProfile(nai, dests, sec, QosSpec())


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def tick(self, dt: float = 0.001) -> float:
        """Advance the fake clock by ``dt`` seconds (fill: 1 ms per registration)."""
        self.now += dt
        return self.now


def fill(ctl: Controller, clock: Clock, start: int, stop: int) -> None:
    ctl.wire = False
    for i in range(start, stop):
        raw = ctl.register(clock.tick(), i, "fa1")
        if not raw or raw[1] != 0:
            raise RuntimeError(f"registration of {user_nai(i)} failed: {raw[:2]!r}")
    ctl.wire = True


class GcWatch:
    """Collections per generation and seconds spent in the cyclic GC (gc.callbacks)."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            g = info["generation"]
            self.count[g] += 1
            self.seconds[g] += time.perf_counter() - self._t0

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    def to_json(self) -> dict[str, Any]:
        return {"collections": self.count, "ms": [round(s * 1000, 2) for s in self.seconds]}


def measure_moves(ctl: Controller, clock: Clock, n_users: int, moves: int,
                  rng: random.Random, watch: GcWatch | None = None) -> list[float]:
    """``moves`` intra-domain handovers (half FA1 -> FA2, half back); seconds each.

    The fake clock advances 10 ms per move and 5 s between the rounds, so no user
    moves twice within the FA's retransmission hold."""
    sample = rng.sample(range(n_users), min(n_users, max(1, moves // 2)))
    times: list[float] = []
    clock.tick(5.0)
    for src, dst in (("fa1", "fa2"), ("fa2", "fa1")):
        clock.tick(5.0)
        for i in sample:
            now = clock.tick(0.01)
            t0 = time.perf_counter()
            raw = ctl.register(now, i, dst, previous=src)
            times.append(time.perf_counter() - t0)
            if not raw or raw[1] != 0:
                raise RuntimeError(f"move of {user_nai(i)} {src}->{dst} failed: "
                                   f"{mip.decode(raw) if raw else 'no reply'}")
    return times


def run(sizes: list[int], moves: int, memory: bool = True, seed: int = 1,
        topology: str | None = None) -> dict[str, Any]:
    topo = load_topology(topology or str(DEFAULT_TOPOLOGY))
    profile_of = _profile_factory(topo)
    rng = random.Random(seed)
    store = VpnStore(":memory:")
    store.seed(topo)
    ctl = Controller(topo, store)
    clock = Clock()
    rows: list[dict[str, Any]] = []
    have = 0
    t_fill = time.perf_counter()
    for k, n in enumerate(sizes):
        seed_users(store, have, n, profile_of)
        fill(ctl, clock, have, n)
        have = n
        if k == 0:   # untimed: the first moves pay one-off costs (caches, imports)
            measure_moves(ctl, clock, n, moves, rng)
        flow0, tun0 = ctl.flow_mods, ctl.tunnel_ops
        aaaf = ctl.roles["aaaf:domain-a"].counters
        local0, proxied0 = aaaf.get("local", 0), aaaf.get("proxied", 0)
        gc.collect()
        with GcWatch() as watch:
            times = measure_moves(ctl, clock, n, moves, rng)
        ms = [t * 1000.0 for t in times]
        flow1, tun1 = ctl.flow_mods, ctl.tunnel_ops
        local1, proxied1 = aaaf.get("local", 0), aaaf.get("proxied", 0)
        gc.disable()
        nogc = measure_moves(ctl, clock, n, moves, rng)
        gc.enable()
        # the roles' once-a-second housekeeping (Runtime._ticker): nothing expires here,
        # so this is the cost of looking
        tick_ms = {}
        for key, role in ctl.roles.items():
            if hasattr(role, "on_tick"):
                t0 = time.perf_counter()
                role.on_tick(clock.now)
                tick_ms[key] = round((time.perf_counter() - t0) * 1000.0, 3)
        row = {"bindings": ctl.bindings(), "handover_ms": summary(ms, 4),
               "on_tick_ms": tick_ms,
               "answered_by_aaaf_locally": local1 - local0,
               "sent_home_to_aaah": proxied1 - proxied0,
               "gc_during_moves": watch.to_json(),
               "handover_ms_gc_disabled": summary([t * 1000.0 for t in nogc], 4),
               "flow_mods_per_handover": (flow1 - flow0) / len(times),
               "tunnel_ops_per_handover": (tun1 - tun0) / len(times),
               "gc_counts": list(gc.get_count())}
        rows.append(row)
        print(f"  {row['bindings']:>7,} bindings: handover median "
              f"{row['handover_ms']['median']:.3f} ms  mean {row['handover_ms']['mean']:.3f}"
              f"  p99 {row['handover_ms']['p99']:.3f}  max {row['handover_ms']['max']:.2f}"
              f"  (fill so far {time.perf_counter() - t_fill:.1f} s)", flush=True)
        print(f"           on_tick (once a second, nothing expiring): "
              f"{', '.join(f'{k} {v:.2f} ms' for k, v in tick_ms.items())}", flush=True)
        print(f"           cyclic GC during those moves: {watch.count} collections "
              f"(gen 0/1/2), {sum(watch.seconds) * 1000:.0f} ms; with the GC disabled: "
              f"median {row['handover_ms_gc_disabled']['median']:.3f} ms, mean "
              f"{row['handover_ms_gc_disabled']['mean']:.3f}", flush=True)
    # the largest size again with the cyclic GC's view of the long-lived state frozen:
    # what `gc.freeze()` after a fill would give (a recommendation, not product code)
    gc.collect()
    gc.freeze()
    with GcWatch() as watch:
        times = measure_moves(ctl, clock, have, moves, rng)
    frozen = summary([t * 1000.0 for t in times], 4)
    gc.unfreeze()
    print(f"  {have:>7,} bindings, gc.freeze(): median {frozen['median']:.3f} ms  mean "
          f"{frozen['mean']:.3f}  max {frozen['max']:.2f}; GC {watch.count}, "
          f"{sum(watch.seconds) * 1000:.0f} ms", flush=True)
    out: dict[str, Any] = {"sizes": rows, "largest_with_gc_freeze": {
        "bindings": have, "handover_ms": frozen, "gc_during_moves": watch.to_json()}}
    del ctl, store
    gc.collect()
    if memory:
        out["memory"] = measure_memory(topo, sizes, profile_of)
    base, top = rows[0]["handover_ms"], rows[-1]["handover_ms"]
    out["ratio_largest_to_smallest"] = {
        k: round(top[k] / base[k], 3) for k in ("median", "mean", "p99") if base[k]}
    return out


def measure_memory(topo: Topology, sizes: list[int], profile_of: Any) -> list[dict[str, Any]]:
    """Traced bytes held by the roles (and the store's Python side) at each size."""
    store = VpnStore(":memory:")
    store.seed(topo)
    gc.collect()
    tracemalloc.start()
    ctl = Controller(topo, store, remember_mn_fa=False)
    clock = Clock()
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    out: list[dict[str, Any]] = []
    have = 0
    prev_bytes, prev_n = base, 0
    for n in sizes:
        seed_users(store, have, n, profile_of)
        fill(ctl, clock, have, n)
        have = n
        gc.collect()
        cur = tracemalloc.get_traced_memory()[0]
        nb = ctl.bindings()
        row = {"bindings": nb, "traced_bytes": cur - base,
               "bytes_per_binding": round((cur - base) / nb),
               "bytes_per_binding_marginal": round((cur - prev_bytes) / max(1, nb - prev_n))}
        out.append(row)
        print(f"  {nb:>7,} bindings: {(cur - base) / 1e6:8.1f} MB traced, "
              f"{row['bytes_per_binding']:,} B/binding "
              f"(marginal {row['bytes_per_binding_marginal']:,})", flush=True)
        prev_bytes, prev_n = cur, nb
    top = tracemalloc.take_snapshot().statistics("filename")[:8]
    tracemalloc.stop()
    out.append({"top_files": [{"file": s.traceback[0].filename.split("/controller/")[-1],
                               "bytes": s.size} for s in top]})
    return out


def plot(res: dict[str, Any], path: Any) -> None:
    plt = pyplot()
    if plt is None:
        return
    rows = res["sizes"]
    n = [r["bindings"] for r in rows]
    fig, ax = plt.subplots(1, 2 if res.get("memory") else 1, figsize=(10, 4), squeeze=False)
    a = ax[0][0]
    for key, style in (("median", "o-"), ("mean", "s--"), ("p99", "^:")):
        a.plot(n, [r["handover_ms"][key] for r in rows], style, label=key)
    a.set_xscale("log")
    a.set_xlabel("active bindings")
    a.set_ylabel("per-handover processing (ms)")
    a.set_title("intra-domain handover, pure roles + codec")
    a.set_ylim(bottom=0)
    a.legend()
    if res.get("memory"):
        mem = [m for m in res["memory"] if "bindings" in m]
        b = ax[0][1]
        b.plot([m["bindings"] for m in mem], [m["bytes_per_binding"] for m in mem], "o-")
        b.set_xscale("log")
        b.set_xlabel("active bindings")
        b.set_ylabel("bytes per binding (tracemalloc)")
        b.set_ylim(bottom=0)
        b.set_title("memory per binding")
    save_plot(fig, path)


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser("scale", __doc__)
    ap.add_argument("--sizes", default="100,1000,10000,100000")
    ap.add_argument("--moves", type=int, default=500, help="handovers timed per size")
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    ap.add_argument("--config", default=None, help="topology YAML (default topology)")
    args = parse_bench_args(ap, argv)
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    m = print_machine()
    print(f"scale: sizes {sizes}, {args.moves} timed intra-domain moves per size", flush=True)
    res = run(sizes, args.moves, memory=not args.no_memory, topology=args.config)
    res = {"benchmark": "scale", "machine": m, "moves_per_size": args.moves, **res}
    rows = []
    mem = {r["bindings"]: r for r in res.get("memory", []) if "bindings" in r}
    for r in res["sizes"]:
        h = r["handover_ms"]
        mm = mem.get(r["bindings"], {})
        rows.append([r["bindings"], h["median"], h["mean"], h["p99"], h["max"],
                     mm.get("bytes_per_binding"), r["flow_mods_per_handover"]])
    print()
    print(table(["bindings", "median ms", "mean ms", "p99 ms", "max ms", "B/binding",
                 "flow-mods/move"], rows, numbers=True))
    ratio = res["ratio_largest_to_smallest"]
    print(f"largest/smallest: median {ratio.get('median')}x, mean {ratio.get('mean')}x "
          f"(target <= 1.2x)")
    save_results("scale", args.json, res, None if args.no_plot else plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
