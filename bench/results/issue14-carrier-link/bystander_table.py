"""The median over the runs of each bystander row of bystander.txt (its input)."""
import re
import statistics as st
import sys

cur = None
data: dict = {}
for line in open(sys.argv[1]):
    m = re.match(r'== (\S+)-(carrier|replug)-\d+', line)
    if m:
        cur = (m.group(1), m.group(2))
        continue
    m = re.match(r'(mn\d) moving; bystander (up|down): .*bucket: (.*)', line)
    if m and cur:
        vals = {int(a): float(b) for a, b in (x.split(':') for x in m.group(3).split())}
        data.setdefault(cur + (m.group(1), m.group(2)), []).append(vals)
print("\nmedian over the runs of each row above (ms; send time after link_moved):")
print(f"{'kind':16} {'model':8} {'moving':7} {'way':5} "
      + " ".join(f"{b:>5}" for b in range(-40, 160, 20)))
for k in sorted(data):
    rows = data[k]
    print(f"{k[0]:16} {k[1]:8} {k[2]:7} {k[3]:5} "
          + " ".join(f"{st.median(r[b] for r in rows):5.0f}" for b in range(-40, 160, 20))
          + f"   ({len(rows)} runs)")
