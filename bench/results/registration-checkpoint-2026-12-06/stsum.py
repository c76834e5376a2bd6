# ruff: noqa  (a measurement script kept as it was run)
import json, re, sys, glob, os
d = sys.argv[1]
b = json.load(open(f"{d}/bench.json"))
names = {}
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "threads" and isinstance(v, dict):
                for kk, vv in v.items():
                    if "/" in kk and isinstance(vv, str):
                        names[int(kk.split("/")[1])] = vv
            else:
                walk(v)
    elif isinstance(o, list):
        for x in o: walk(x)
walk(b)
for f in sorted(glob.glob(f"{d}/t.*")):
    tid = int(f.rsplit(".", 1)[1]); n = 0; t = 0.0
    for line in open(f):
        m = re.search(r"(fdatasync|fsync)\(.*<([\d.]+)>$", line.strip())
        if m: n += 1; t += float(m.group(2))
    if n: print(f"tid {tid:>7} {names.get(tid, '?'):<28} calls {n:>4} total {t*1000:8.1f} ms")
