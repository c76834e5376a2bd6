"""``bench.registration``'s report: cProfile tables and areas, and the plot.
"""

from __future__ import annotations

import io
import pstats
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


