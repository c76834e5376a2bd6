"""Summarise this folder: each step's alternating pairs (server CPU us per registration,
closed loop, 8 outstanding) and instruction counts -> summary.json (printed too).
The runs were made from ``git archive`` exports of the commits named in ``STEPS`` (their
JSON says code "unknown": no .git in an export)."""
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: step folder -> (label before, label after, commit before, commit after, what)
STEPS = {
    "ab-codec": ("before", "after", "07c2d7b", "f62b965", "AVP templates for encoding"),
    "ab-decode": ("before", "after", "f62b965", "9c4aeb3", "indexed AVPs, inet_ntoa"),
    "ab-commit": ("before", "after", "a079a0e", "884770b", "group commit"),
    "ab-transport": ("before", "after", "884770b", "623c5ed",
                     "one read per segment, ids without copies"),
    "ab-mipcache-metrics": ("before", "after", "623c5ed", "da5e232",
                            "MIPv4 decode cache, metrics children"),
    "ab-uvloop": ("asyncio", "uvloop", "4a74b49", "4a74b49 --what-if uvloop", "uvloop"),
    "ab-total": ("before", "after", "07c2d7b", "4a74b49", "all of issue 15 so far"),
}


def side(folder: Path, label: str) -> list[dict]:
    out = []
    for f in sorted(folder.glob(f"{label}-*.json")):
        r = json.loads(f.read_text())
        sat = r["saturation"][0]
        out.append({"run": f.stem, "cpu_us": sat["server_cpu_us_per_reg"],
                    "rate": sat["rate"], "loadgen_cpu_us": sat["loadgen_cpu_us_per_reg"],
                    "state_commits_per_reg": sat.get("state_commits_per_reg"),
                    "load_before": r["machine"].get("loadavg"),
                    "load_after": r.get("load_after")})
    return out


def main() -> int:
    summary = {"steps": {}, "instructions": {}}
    for step, (a, b, ca, cb, what) in STEPS.items():
        folder = HERE / step
        if not folder.is_dir():
            continue
        before, after = side(folder, a), side(folder, b)
        pairs = [round(y["cpu_us"] / x["cpu_us"], 3) for x, y in zip(before, after)]
        s = {"what": what, "before": ca, "after": cb, "pairs_after_over_before": pairs,
             "median_cpu_us_before": statistics.median(x["cpu_us"] for x in before),
             "median_cpu_us_after": statistics.median(x["cpu_us"] for x in after),
             "runs": {a: before, b: after}}
        summary["steps"][step] = s
        print(f"{step:22s} {s['median_cpu_us_before']:7.0f} -> "
              f"{s['median_cpu_us_after']:7.0f} us  pairs {pairs}  ({what})")
    ir = HERE / "ir.txt"
    if ir.exists():
        for line in ir.read_text().splitlines():
            commit, count = line.split()[:2]
            summary["instructions"][commit] = {"ir_per_registration": int(count) / 100}
            print(f"Ir {commit}: {int(count) / 100 / 1e6:.2f} M per registration")
    (HERE / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
