# ruff: noqa  (a measurement script kept as it was run)
"""System calls per renewal from `strace -f -c` of harness.py: (N=100 run - N=1 run) / 99,
for before-* and after-* (see README)."""
import sys
from pathlib import Path

def calls(path):
    out = {}
    for line in Path(path).read_text().splitlines():
        f = line.split()
        if len(f) >= 5 and f[0][0].isdigit():
            out[f[-1]] = int(f[3])
    return out

here = Path(__file__).parent
rows = {}
for lab in ("before", "after"):
    a, b = calls(here / f"{lab}-n100.txt"), calls(here / f"{lab}-n1.txt")
    rows[lab] = {k: (a.get(k, 0) - b.get(k, 0)) / 99 for k in set(a) | set(b)}
names = sorted(set(rows["before"]) | set(rows["after"]),
               key=lambda k: -max(abs(rows["before"].get(k, 0)), abs(rows["after"].get(k, 0))))
print("| system call | before | after |")
print("|---|---|---|")
for k in names:
    b, a = rows["before"].get(k, 0), rows["after"].get(k, 0)
    if max(abs(b), abs(a)) >= 0.5:
        print(f"| {k} | {b:.1f} | {a:.1f} |")
