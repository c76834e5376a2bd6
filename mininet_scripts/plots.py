"""PNG plots of a run (matplotlib, no display needed).

* ``probe_timeline``: the probe stream both ways over time, each move marked, the
  data-plane gap shaded; a zoom around each move shows every packet (sequence number
  against arrival time) so the gap and the missing packets are visible; the one-way
  latency below.
* ``phase_breakdown``: one panel per registration/move, a bar per signalling phase (ms);
  totals are drawn hatched, since they contain the other phases.

Inputs are what the demo and the scenarios already write: the probe JSON files
(``mininet_scripts.probe``: ``received`` = [[seq, send_ns, recv_ns], ...], times on
``CLOCK_MONOTONIC``) and the results dict (``moves[i]`` with ``from``, ``to``,
``gap_ms``, ``lost``, ``phases_ms`` and ``t_move_ns``, the move's monotonic time).

Re-plot a kept run::

    python -m mininet_scripts.plots --results out.json --mn-probe RUN/probe-mn.json \\
        --cn-probe RUN/probe-cn.json --out plots/
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never open a window
import matplotlib.ticker  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["demo_plots", "paired_moves", "phase_breakdown", "probe_timeline"]

MS = 1e6  # ns per ms
DIRECTIONS = (("mn_to_cn", "MN → CN", "tab:blue"), ("cn_to_mn", "CN → MN", "tab:orange"))
TOTALS = ("signalling_total", "controller_total")


def _arrivals(received: Sequence[Sequence[int]]) -> tuple[Any, Any, Any]:
    """(recv_ns, seq, latency_ms) sorted by arrival."""
    if not received:
        empty = np.zeros(0)
        return empty, empty, empty
    arr = np.asarray(received, dtype=np.int64)
    arr = arr[np.argsort(arr[:, 2])]
    return arr[:, 2], arr[:, 0], (arr[:, 2] - arr[:, 1]) / MS


def _largest_gap(recv_ns: Any) -> tuple[int, int] | None:
    if len(recv_ns) < 2:
        return None
    i = int(np.argmax(np.diff(recv_ns)))
    return int(recv_ns[i]), int(recv_ns[i + 1])


def _gap_around(recv_ns: Any, t_ns: int, before_ms: float = 500.0,
                after_ms: float = 3000.0) -> tuple[int, int] | None:
    """The largest inter-arrival gap overlapping [t - before, t + after] (as
    ``probe.analyse`` measures it)."""
    if len(recv_ns) < 2:
        return None
    lo, hi = t_ns - before_ms * MS, t_ns + after_ms * MS
    a, b = recv_ns[:-1], recv_ns[1:]
    mask = (b >= lo) & (a <= hi)
    if not mask.any():
        return None
    d = np.where(mask, b - a, -1)
    i = int(np.argmax(d))
    return int(a[i]), int(b[i])


def probe_timeline(mn_probe: dict[str, Any], cn_probe: dict[str, Any],
                   moves: Sequence[dict[str, Any]], out: str | Path, *,
                   title: str = "probe stream", bin_ms: float = 50.0) -> Path:
    """Write the probe-stream PNG to ``out``.  ``mn_probe``/``cn_probe``: the probe JSON
    of each end; ``moves``: results entries (``t_move_ns`` marks the move; without it
    the largest gap is marked instead)."""
    streams = {"mn_to_cn": _arrivals(cn_probe.get("received", [])),   # what the CN got
               "cn_to_mn": _arrivals(mn_probe.get("received", []))}   # what the MN got
    starts = [p["start_ns"] for p in (mn_probe, cn_probe) if p.get("start_ns")]
    firsts = [int(s[0][0]) for s in streams.values() if len(s[0])]
    t0 = min(starts or firsts or [0])
    move_ts: list[int | None] = [m.get("t_move_ns") for m in moves]
    if any(t is None for t in move_ts):
        gap = _largest_gap(streams["mn_to_cn"][0]) or _largest_gap(streams["cn_to_mn"][0])
        move_ts = [t if t is not None else (gap[0] if gap else None) for t in move_ts]
    zooms = [(m, t) for m, t in zip(moves, move_ts) if t is not None]

    nrows = 2 + len(zooms)
    fig, axes = plt.subplots(nrows, 1, figsize=(10, 3.0 * nrows), squeeze=False)
    ax_rate, ax_lat = axes[0][0], axes[-1][0]
    fig.suptitle(title)

    # 1. arrivals per bin, as packets/s
    for key, label, colour in DIRECTIONS:
        recv = streams[key][0]
        if not len(recv):
            continue
        rel = (recv - t0) / 1e9
        edges = np.arange(0.0, rel.max() + bin_ms / 1000.0, bin_ms / 1000.0)
        if len(edges) < 2:
            continue
        counts, _ = np.histogram(rel, bins=edges)
        ax_rate.step(edges[:-1], counts * (1000.0 / bin_ms), where="post", label=label,
                     color=colour, linewidth=0.9)
    ax_rate.set_ylabel(f"received (pkt/s, {bin_ms:g} ms bins)")
    ax_rate.set_xlabel("time since probe start (s)")

    # 2. one zoom per move: each packet as a dot
    for row, (move, t_move) in enumerate(zooms, start=1):
        ax = axes[row][0]
        assert t_move is not None
        gaps = {key: _gap_around(streams[key][0], t_move) for key, _, _ in DIRECTIONS}
        ends = [g[1] for g in gaps.values() if g]
        hi = max(ends + [t_move]) + 150 * MS
        lo = min([g[0] for g in gaps.values() if g] + [t_move]) - 100 * MS
        for key, label, colour in DIRECTIONS:
            recv, seq, _ = streams[key]
            sel = (recv >= lo) & (recv <= hi)
            ax.plot((recv[sel] - t_move) / MS, seq[sel], ".", markersize=2, color=colour,
                    label=label)
            g = gaps[key]
            if g:
                ax.axvspan((g[0] - t_move) / MS, (g[1] - t_move) / MS, color=colour,
                           alpha=0.15)
        ax.axvline(0.0, color="red", linestyle="--", linewidth=1)
        what = f"move {move.get('from', '?')} → {move.get('to', '?')}"
        if move.get("kind"):
            what += f" ({move['kind']})"
        ax.set_title(what + ": " + _gap_text(move, gaps), fontsize=9)
        ax.set_xlabel("time since the move (ms)")
        ax.set_ylabel("sequence number")
        ax.legend(loc="upper left", fontsize=8)
        ax_rate.axvline((t_move - t0) / 1e9, color="red", linestyle="--", linewidth=1)
        ax_rate.annotate(what, xy=((t_move - t0) / 1e9, 1.0),
                         xycoords=("data", "axes fraction"), fontsize=8, color="red",
                         ha="left", va="top", xytext=(3, -3), textcoords="offset points")
        ax_lat.axvline((t_move - t0) / 1e9, color="red", linestyle="--", linewidth=1)

    # 3. one-way latency
    for key, label, colour in DIRECTIONS:
        recv, _, lat = streams[key]
        if len(recv):
            ax_lat.plot((recv - t0) / 1e9, lat, ".", markersize=1, color=colour, label=label)
    ax_lat.set_ylabel("one-way latency (ms)")
    ax_lat.set_xlabel("time since probe start (s)")
    for ax in (ax_rate, ax_lat):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower left", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, out)


def _gap_text(move: dict[str, Any], gaps: dict[str, tuple[int, int] | None]) -> str:
    parts = []
    for key, label, _ in DIRECTIONS:
        gap = (move.get("gap_ms") or {}).get(key)
        if gap is None and gaps.get(key):
            g = gaps[key]
            assert g is not None
            gap = (g[1] - g[0]) / MS
        lost = (move.get("lost") or {}).get(key)
        if gap is not None:
            parts.append(f"{label} gap {gap:.1f} ms" + (f", {lost} lost" if lost is not None
                                                          else ""))
    return "; ".join(parts) or "no packets around the move"


def phase_breakdown(handovers: Sequence[tuple[str, dict[str, float]]], out: str | Path, *,
                    title: str = "signalling phases per handover") -> Path:
    """Write one horizontal bar chart per (label, phases_ms) to ``out``."""
    handovers = [(label, phases) for label, phases in handovers if phases]
    n = max(1, len(handovers))
    rows = [len(p) for _, p in handovers] or [1]
    fig, axes = plt.subplots(n, 1, figsize=(10, 1.2 + 0.32 * sum(rows) + 0.6 * n),
                             squeeze=False,
                             gridspec_kw={"height_ratios": [max(r, 1) for r in rows]})
    fig.suptitle(title)
    if not handovers:
        axes[0][0].text(0.5, 0.5, "no handover records", ha="center", va="center")
        axes[0][0].set_axis_off()
    for ax_row, (label, phases) in zip(axes, handovers):
        ax = ax_row[0]
        names = list(phases)
        values = [float(phases[k]) for k in names]
        colours = ["lightgrey" if k in TOTALS else f"C{i % 10}" for i, k in enumerate(names)]
        bars = ax.barh(range(len(names)), values, color=colours, edgecolor="black",
                       linewidth=0.4)
        for bar, name in zip(bars, names):
            if name in TOTALS:
                bar.set_hatch("//")
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(label, fontsize=10, loc="left")
        ax.set_xlabel("ms")
        top = max(values) if values else 1.0
        for i, v in enumerate(values):
            ax.text(v + top * 0.01, i, f"{v:.2f}", va="center", fontsize=7)
        ax.set_xlim(0, top * 1.15 if top > 0 else 1)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, out)


def paired_moves(res: dict[str, Any], out: str | Path) -> Path:
    """``bench.handover_paired``: per move, the mechanism's MN against the baseline's
    in the same run: the gap (top) and the packets lost (bottom), each direction, with
    each MN's median as a line and the medians' ratio in the title."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 6.5), sharex=True)
    who = (("mechanism", "mn1", "tab:green", "o-"), ("baseline", "mn2", "tab:red", "s--"))
    for col, (d, label, _) in enumerate(DIRECTIONS):
        for row, (metric, unit) in enumerate((("gap_ms", "gap (ms)"), ("lost", "lost (pkts)"))):
            ax = axes[row][col]
            for part, mn, colour, style in who:
                moves = [m for m in res.get("moves", []) if m.get("mn") == mn]
                ys = [float((m.get(metric) or {}).get(d, np.nan)) for m in moves]
                ax.plot(range(1, len(ys) + 1), ys, style, color=colour, markersize=4,
                        label=f"{part} ({mn})")
                med = (res.get(part) or {}).get(f"{metric}_{d}", {}).get("median")
                if med is not None:
                    ax.axhline(med, color=colour, linestyle=":", linewidth=1)
            ratio = (res.get("ratio") or {}).get(f"{metric}_{d}")
            ax.set_title(f"{label} {unit.split(' ')[0]}: median on/off "
                         f"{'-' if ratio is None else format(ratio, '.2f')}", fontsize=10)
            ax.set_ylabel(unit)
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            if row == 1:
                ax.set_xlabel("move of each MN")
    axes[0][0].legend(fontsize=8)
    valid = "" if res.get("valid", True) else ": INVALID (prepared IKE_SA not used)"
    on = res.get("profile_on") or {}
    what = (" + ".join(on) + " on vs off" if on and all(isinstance(v, bool) for v in on.values())
            else "mechanism vs baseline")
    fig.suptitle(f"paired handover, {res.get('kind', '?')}: {what}, same run{valid}",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


def _save(fig: Any, out: str | Path) -> Path:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def results_handovers(res: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    """(label, phases_ms) for the registration and each move of a results dict."""
    out: list[tuple[str, dict[str, float]]] = []
    reg = dict(res.get("registration_phases_ms") or {})
    if reg:
        if isinstance(res.get("registration_ms"), (int, float)):
            reg = {**reg, "signalling_total": float(res["registration_ms"])}
        out.append(("registration", reg))
    for i, m in enumerate(res.get("moves", []), 1):
        label = f"move {i}: {m.get('from', '?')} → {m.get('to', '?')} ({m.get('kind', '?')})"
        if m.get("mn"):
            label = f"{m['mn']} {label}"
        out.append((label, dict(m.get("phases_ms") or {})))
    return out


def demo_plots(res: dict[str, Any], mn_probe: str | Path, cn_probe: str | Path,
               out_dir: str | Path, *, prefix: str = "") -> list[Path]:
    """The demo's two PNGs: ``probe-timeline.png`` and ``handover-phases.png``."""
    from mininet_scripts.probe import load_result
    out_dir = Path(out_dir)
    name = res.get("topology", "")
    written = []
    if Path(mn_probe).exists() and Path(cn_probe).exists():
        written.append(probe_timeline(
            load_result(str(mn_probe)), load_result(str(cn_probe)), res.get("moves", []),
            out_dir / f"{prefix}probe-timeline.png",
            title=f"probe stream ({name}), {res.get('probe', {}).get('rate_pps', '?')} "
                  "pkt/s each way"))
    written.append(phase_breakdown(results_handovers(res),
                                   out_dir / f"{prefix}handover-phases.png",
                                   title=f"signalling phases per handover ({name})"))
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mininet_scripts.plots",
                                 description="plot a demo/scenario run")
    ap.add_argument("--results", required=True, help="results JSON (`mipvpn demo --json`)")
    ap.add_argument("--mn-probe", help="the MN's probe JSON (probe-mn.json in the run dir)")
    ap.add_argument("--cn-probe", help="the CN's probe JSON (probe-cn.json in the run dir)")
    ap.add_argument("--out", required=True, help="folder for the PNGs")
    args = ap.parse_args(argv)
    res = json.loads(Path(args.results).read_text())
    mn = args.mn_probe or "/nonexistent"
    cn = args.cn_probe or "/nonexistent"
    for path in demo_plots(res, mn, cn, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
