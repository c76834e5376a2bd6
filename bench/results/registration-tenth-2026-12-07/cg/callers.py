# ruff: noqa  (a measurement script kept as it was run)
"""Callers of one function in `callgrind_annotate --inclusive=yes --tree=both` output:
k instructions per renewal (100 renewals) and calls.  Usage: callers.py TREE FUNCTION
[--callees] (its callees instead)."""
import re, sys
lines = open(sys.argv[1]).read().split("\n")
for i, l in enumerate(lines):
    if re.search(r"\*\s+\S*" + re.escape(sys.argv[2]) + r" ", l):
        rows = []
        down = "--callees" in sys.argv
        j = i + 1 if down else i - 1
        while 0 <= j < len(lines) and lines[j].strip():
            m = re.search(r"^\s*([\d,]+) .*" + (">" if down else "<") + r" +(\S+) \((\S+)x\)", lines[j])
            if m:
                rows.append((int(m.group(1).replace(",", "")), m.group(2).split(":")[-1], m.group(3)))
            j += 1 if down else -1
        print(f"{sys.argv[2]}: {int(l.split()[0].replace(',', '')) / 100 / 1000:.1f} k per renewal")
        for v, name, n in sorted(rows, reverse=True)[:15]:
            print(f"{v / 100 / 1000:8.1f} k  {name}  ({n} calls)")
        break
