# ruff: noqa  (a measurement script kept as it was run)
import pstats, sys
def load(f):
    st = pstats.Stats(f).stats
    out = {}
    for (fn, ln, name), (cc, nc, tt, ct, callers) in st.items():
        out[f"{fn.split('/work/main/')[-1]}:{ln}:{name}"] = (nc, tt, ct)
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
ta = sum(v[1] for v in a.values()); tb = sum(v[1] for v in b.values())
print("total tottime", round(ta,3), round(tb,3))
rows = []
for k in set(a) | set(b):
    na, tta, cta = a.get(k, (0,0,0)); nb, ttb, ctb = b.get(k, (0,0,0))
    rows.append((ttb - tta, k, na, nb, tta, ttb, cta, ctb))
rows.sort(reverse=True)
for r in rows[:30]:
    print(f"{r[0]*1e3:8.1f}ms calls {r[2]:>7}->{r[3]:>7} tot {r[4]*1e3:7.1f}->{r[5]*1e3:7.1f} cum {r[6]*1e3:7.1f}->{r[7]*1e3:7.1f} {r[1]}")
