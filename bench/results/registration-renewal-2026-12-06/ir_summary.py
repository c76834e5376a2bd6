# ruff: noqa  (a measurement script kept as it was run)
"""cg/{first,renew}-{before,after}-N.txt (ir.sh's output) -> Ir per registration,
raw and corrected for the idle runtime (Ir - 0.874 M x measured wall s, the constant of
registration-cost-2026-12-05c), and after/before per run.  python ir_summary.py > ir.txt"""
import re, sys
from pathlib import Path
d = Path(__file__).parent / "cg"
IDLE = 0.874e6
for kind in ("first", "renew"):
    n = 1
    while (d / f"{kind}-before-{n}.txt").exists() and (d / f"{kind}-after-{n}.txt").exists():
        per = {}
        for label in ("before", "after"):
            t = (d / f"{kind}-{label}-{n}.txt").read_text()
            m = re.search(r"^(\d+) ", t, re.M); w = re.search(r"measured wall s ([\d.]+)", t)
            if not m or not w:
                break
            ir, wall = int(m.group(1)), float(w.group(1))
            calls = re.search(r"gateway calls in the measured ones (.*)", t)
            per[label] = (ir / 100, (ir - IDLE * wall) / 100)
            print(f"{kind:5s} run {n} {label:6s} Ir {ir:,} wall {wall} s  per registration "
                  f"raw {ir / 100 / 1e6:.3f} M, corrected {(ir - IDLE * wall) / 100 / 1e6:.3f} M"
                  + (f"  gateway calls {calls.group(1)}" if calls else ""))
        if len(per) == 2:
            print(f"{kind:5s} run {n} after/before raw {per['after'][0] / per['before'][0]:.4f}, "
                  f"corrected {per['after'][1] / per['before'][1]:.4f}")
        n += 1
