"""``bench.registration``'s report: cProfile tables and areas, and the plot.
"""

from __future__ import annotations

import io
import pstats
import re
from pathlib import Path
from typing import Any

from bench.common import REPO, pyplot, save_plot


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




# ----------------------------------------------------------------- CPU per component

#: the components of a registration's CPU (issue 15), by where the code lives; the
#: first prefix that matches a function's file (as ``_short`` shows it) wins
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Diameter codec", ("controller/proto/diameter", "diameter/")),
    ("MIPv4 codec", ("controller/proto/mip",)),
    ("persistence", ("controller/adapters/store", "controller/runtime/persistence",
                     "controller/core/persist", "sqlite3/")),
    ("roles", ("controller/core/",)),
    ("transport", ("controller/adapters/diameter_", "controller/adapters/mip_transport",
                   "controller/runtime/diameter_links", "controller/runtime/mip_io",
                   "asyncio/selector_events", "asyncio/streams", "asyncio/sslproto",
                   "socket.py", "ssl.py")),
    ("executor, gateways", ("controller/runtime/", "concurrent/futures", "threading")),
    ("metrics", ("controller/metrics", "prometheus_client/")),
    ("logging", ("logging/", "controller/logtext")),
    ("event loop", ("asyncio/", "selectors")),
)
#: the event loop's wait for I/O: wall time in cProfile (its timer), not CPU
IDLE = "~:0(<method 'poll' of 'select.epoll' objects>)"


#: a function of the compiled build (issue 15) as cProfile names it, a C function:
#: ``~:0(<built-in method controller.proto.diameter.decoding.decode>)`` or a method
#: ``~:0(<method 'x' of 'controller.core.handover.HandoverRecord' objects>)``
_COMPILED = re.compile(r"^~:0\(<(?:built-in method |method '[^']*' of ')"
                       r"(controller(?:\.\w+)+)")


def _component(fn: str) -> str | None:
    m = _COMPILED.match(fn)
    if m:   # its module's file, as if it were the source
        fn = m.group(1).replace(".", "/")
    for name, prefixes in COMPONENTS:
        if fn.startswith(prefixes):
            return name
    return None


def cpu_by_component(path: str, cpu_us_per_reg: float | None,
                     registrations: int) -> dict[str, Any]:
    """Where a registration's CPU goes, from a cProfile of the server's loop thread.

    Each function's own time goes to its component (``COMPONENTS``); the own time of
    code that belongs to none (builtins such as ``sqlite3.Connection.execute``,
    ``socket.send``, ``dataclasses.replace``, ``ipaddress``, ``json``) goes to its
    callers' components in proportion to the time each call site spent in it, up the
    call graph to the first caller that has a component.  The epoll wait is left out
    (cProfile's timer is wall time: that wait is idle).  Shares scale the *unprofiled*
    run's CPU per registration (``cpu_us_per_reg``: the server process's user + system
    time / registrations, the same window), so profiler overhead cancels out to the
    extent it is spread like the work."""
    st = pstats.Stats(path)
    stats = st.stats  # type: ignore[attr-defined]
    names = {f: f"{_short(f[0])}:{f[1]}({f[2]})" for f in stats}
    own: dict[str, float] = {}
    idle = 0.0

    memo: dict[Any, dict[str, float]] = {}

    def where(func: Any, seen: frozenset[Any]) -> dict[str, float]:
        """Fractions of ``func``'s own time per component (memoised; cycles: other)."""
        comp = _component(names.get(func, ""))
        if comp is not None:
            return {comp: 1.0}
        if func in memo:
            return memo[func]
        callers = stats[func][4] if func in stats else {}
        weights = {c: v[2] for c, v in callers.items() if c not in seen}
        total = sum(weights.values())
        out: dict[str, float] = {}
        if total <= 0 or len(seen) > 30:
            out = {"other": 1.0}
        else:
            for caller, w in weights.items():
                for c, f in where(caller, seen | {func}).items():
                    out[c] = out.get(c, 0.0) + f * w / total
        if not seen:
            memo[func] = out
        return out

    for func, (_cc, _nc, tt, _ct, _callers) in stats.items():
        if names[func] == IDLE:
            idle += tt
            continue
        for comp, f in where(func, frozenset()).items():
            own[comp] = own.get(comp, 0.0) + tt * f
    busy = sum(own.values())
    rows = {}
    for comp, s in sorted(own.items(), key=lambda kv: -kv[1]):
        share = s / busy if busy else 0.0
        rows[comp] = {"profiled_s": round(s, 3), "share": round(share, 4),
                      "us_per_reg": (round(share * cpu_us_per_reg, 1)
                                     if cpu_us_per_reg is not None else None)}
    return {"cpu_us_per_reg": cpu_us_per_reg, "registrations_profiled": registrations,
            "profiled_busy_s": round(busy, 3), "profiled_idle_s": round(idle, 3),
            "profiled_us_per_reg": round(1e6 * busy / max(1, registrations), 1),
            "components": rows}


def component_table(cost: dict[str, Any]) -> str:
    """The breakdown as a text table (µs per registration and share)."""
    from controller.textutil import table
    rows = [[comp, r["us_per_reg"], f"{100 * r['share']:.1f} %", r["profiled_s"]]
            for comp, r in cost["components"].items()]
    rows.append(["total (server process)", cost["cpu_us_per_reg"], "100 %",
                 cost["profiled_busy_s"]])
    return table(["component", "CPU us/registration", "share", "profiled s"], rows,
                 numbers=True)
