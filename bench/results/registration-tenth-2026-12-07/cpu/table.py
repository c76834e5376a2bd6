# ruff: noqa  (a measurement script kept as it was run)
"""The pairs of cpu.sh as a table: server CPU and kernel µs per registration at 8
outstanding, the ratio after / before, the rates."""
import json, statistics
from pathlib import Path
here = Path(__file__).parent
rows, ratios = [], []
for r in range(1, 9):
    b = json.loads((here / f"before-{r}.json").read_text())["saturation"][0]
    a = json.loads((here / f"after-{r}.json").read_text())["saturation"][0]
    ratio = a["server_cpu_us_per_reg"] / b["server_cpu_us_per_reg"]
    ratios.append(ratio)
    rows.append(f"| {r} | {b['server_cpu_us_per_reg']:,.1f} ({b['server_system_us_per_reg']:,.1f}) "
                f"| {a['server_cpu_us_per_reg']:,.1f} ({a['server_system_us_per_reg']:,.1f}) "
                f"| {ratio:.2f} | {b['rate']:,.1f} / {a['rate']:,.1f} |")
print("| pair | before µs/reg (kernel) | after µs/reg (kernel) | ratio | rate/s before / after |")
print("|---|---|---|---|---|")
print("\n".join(rows))
print(f"\nmedian ratio {statistics.median(ratios):.2f}; below 1 in {sum(x < 1 for x in ratios)} of {len(ratios)}")
