"""Shared helpers of the benchmarks: machine description, statistics, JSON, plots.

Benchmarks are scripts that print figures; they are not timed tests.  Each result file
starts with ``machine`` (code version, cpu, cores, load average before the run, Python)
and carries ``load_after`` and ``command`` (``save_results``), because absolute
times on a shared 2-core machine drift: compare figures only with the baseline measured
in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any, Sequence

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TOPOLOGY = REPO / "topology" / "default.yaml"
RESULTS = REPO / "bench" / "results"


def machine() -> dict[str, Any]:
    """Cores, CPU model, load average and Python: printed first by every benchmark."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model, "loadavg": list(os.getloadavg()),
            "python": platform.python_version(), "kernel": platform.release(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "code": code_version(),
            "build": _build(), "cpu_jiffies": cpu_jiffies()}


def _proc_stat() -> str:
    return Path("/proc/stat").read_text()


def cpu_jiffies() -> tuple[int, int] | None:
    """The machine's (busy, total) CPU time so far, in clock ticks, every core (the
    ``cpu`` line of /proc/stat: idle and iowait are not busy); None without /proc."""
    try:
        fields = [int(x) for x in _proc_stat().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    total = sum(fields)
    return total - fields[3] - fields[4], total


def busy_pct(start: Sequence[int] | None, end: Sequence[int] | None) -> float | None:
    """The machine's CPU busy share between two ``cpu_jiffies``, in % of all cores."""
    if not start or not end or end[1] <= start[1]:
        return None
    return round(100.0 * (end[0] - start[0]) / (end[1] - start[1]), 1)


def _build() -> dict[str, Any]:
    """Which build of the hot modules this process runs (issue 15): compiled or pure."""
    from controller import compiled
    return compiled.STATUS.as_dict()


def code_version() -> str:
    """The checkout's commit, with ``+dirty`` when files differ from it."""
    import subprocess
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def bench_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser a benchmark's ``main()`` starts with: ``python -m
    bench.<module>``, the module's docstring as its description."""
    return argparse.ArgumentParser(prog=f"python -m bench.{module}", description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def parse_bench_args(ap: argparse.ArgumentParser, argv: list[str] | None, *,
                     plot: bool = True) -> argparse.Namespace:
    """Add the options every benchmark has (``--json``: the result file, default
    bench/results/; ``--no-plot`` unless ``plot`` is False) and parse ``argv``."""
    ap.add_argument("--json", default=None, help="result file (default bench/results/)")
    if plot:
        ap.add_argument("--no-plot", action="store_true")
    return ap.parse_args(argv)


def print_machine(m: dict[str, Any] | None = None) -> dict[str, Any]:
    m = m or machine()
    la = ", ".join(f"{x:.2f}" for x in m["loadavg"])
    print(f"machine: {m['cores']} cores ({m['cpu'] or '?'}), load average {la}, "
          f"Python {m['python']}, code {m.get('code', '?')}", flush=True)
    return m


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    import math
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100.0 * len(s)) - 1))
    return s[k]


def summary(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """n, median, p95, p99, max, mean of ``values`` (rounded)."""
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, digits)
    return {"n": len(values), "median": r(percentile(values, 50)),
            "p95": r(percentile(values, 95)), "p99": r(percentile(values, 99)),
            "max": r(max(values) if values else None),
            "mean": r(sum(values) / len(values) if values else None)}


def out_paths(name: str, out: str | None) -> tuple[Path, Path]:
    """(JSON path, PNG path) for benchmark ``name``; ``out`` is a JSON file or None."""
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, path.with_suffix(".png")


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    print(f"results: {path}", flush=True)


def save_results(name: str, out: str | None, res: dict[str, Any],
                 plot: Callable[[Any, Path], None] | None, data: Any = None) -> None:
    """Every benchmark's ending: the JSON (``out`` or bench/results/NAME.json), then
    ``plot(data or res, png)`` next to it unless ``plot`` is None (``--no-plot``)."""
    path, png = out_paths(name, out)
    full = provenance(name, res)
    if full.get("cpu_busy_pct") is not None:
        print(f"machine CPU busy during the run: {full['cpu_busy_pct']} % of "
              f"{full['machine'].get('cores', '?')} cores", flush=True)
    write_json(path, full)
    if plot is not None:
        plot(res if data is None else data, png)


def command_line(name: str, argv: Sequence[str] | None = None) -> str:
    """How the figures were produced: ``python -m bench.NAME ARGS`` (this process's
    arguments), for the JSON and for bench.report's table."""
    import shlex
    if argv is None:   # python -m bench.NAME ARGS, or mipvpn bench NAME ARGS
        argv = sys.argv[3:] if sys.argv[1:3] == ["bench", name] else sys.argv[1:]
    args = list(argv)
    return " ".join(["python", "-m", f"bench.{name}", *map(shlex.quote, args)])


def provenance(name: str, res: dict[str, Any]) -> dict[str, Any]:
    """``res`` with what every committed result carries (issue 13): ``machine`` (code
    version, cpu, cores, load average before the run), ``load_after`` (load average at
    the end), ``cpu_busy_pct`` (the machine's CPU busy share from ``machine()`` to now,
    None if the run's start is unknown) and ``command``.  What a benchmark already set
    is kept."""
    out = dict(res)
    m = dict(out.get("machine") or machine())
    start = m.pop("cpu_jiffies", None)
    now = machine()
    end = now.pop("cpu_jiffies", None)
    for key, value in now.items():
        m.setdefault(key, value)
    out["machine"] = m
    out.setdefault("load_after", [round(x, 2) for x in os.getloadavg()])
    # the whole machine's CPU busy share over the run (all cores; the load average lags
    # and smooths): an emulation on 2 cores near 100 % stalls (docs/decisions.md
    # 2026-12-06, "the seamless test's probes at 500 pkt/s")
    out.setdefault("cpu_busy_pct", busy_pct(start, end))
    out.setdefault("command", command_line(name))
    return out


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display), or None if missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot (pip install matplotlib)", file=sys.stderr)
        return None
    return plt


def save_plot(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}", flush=True)


def in_private_netns() -> bool:
    """True when this process runs in a network namespace other than PID 1's."""
    try:
        return os.readlink("/proc/self/ns/net") != os.readlink("/proc/1/ns/net")
    except OSError:
        return False


def reexec_in_private_netns(argv: list[str]) -> int | None:
    """Benchmarks that start OVS/Mininet run in a private network namespace (one
    userspace OVS per namespace; other runs may share the machine).  When not yet
    isolated, re-run ``argv`` under ``unshare -n`` and return its exit code; None when
    already isolated (go on)."""
    import shutil
    import subprocess
    if in_private_netns() or os.environ.get("MIPVPN_BENCH_NETNS") == "1":
        return None
    if shutil.which("unshare") is None:
        print("unshare not found: run this benchmark in a private network namespace",
              file=sys.stderr)
        return 2
    env = {**os.environ, "MIPVPN_BENCH_NETNS": "1"}
    cmd = ["unshare", "-n", "--", "bash", "-c", 'ip link set lo up && exec "$@"', "bash",
           *argv]
    print("(re-running in a private network namespace: unshare -n)", flush=True)
    return subprocess.call(cmd, env=env)
