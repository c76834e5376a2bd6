import json
import statistics as st
from pathlib import Path

cap = Path("/tmp/h14g/cap")
D = Path(open(cap / "dir").read().split()[2])
res = json.load(open(cap / "run.json"))
H = json.load(open(cap / "hops.json"))
idx = {}
for gw, rows in H.items():
    for src, dst, seq, pk, t in rows:
        idx[(gw, src, dst, int(seq), pk)] = t
regs = [json.loads(line)["t"] for line in open(D / "mn1-events.jsonl") if '"registered"' in line][1:]
P = {k: json.load(open(D / f"probe-{k}.json"))["received"] for k in ("cn1-5001", "mn1-5001")}
MN, CN = "10.10.0.100", "10.30.0.10"
agg = {}
k = 0
for m in res["moves"]:
    if m["mn"] != "mn1":
        continue
    tl = m["walk"]["timeline_ms"]
    t0 = regs[k] - tl["mn_registered"] / 1000
    k += 1
    lm = t0 + tl["link_moved"] / 1000
    new, old = m["to"], m["from"]
    # pcap (CLOCK_REALTIME) vs monotonic drifts over the run: align per move on the
    # steady uplink before it (MN send -> old FA in: the minimum is one OVS hop)
    corr = min(
        (idx[(old, MN, CN, r[0], "0")] - r[1] / 1e9)
        for r in P["cn1-5001"]
        if lm - 1.0 < r[1] / 1e9 < lm - 0.3 and (old, MN, CN, r[0], "0") in idx
    )
    def rel0(t):
        return None if t is None else round((t - lm) * 1000, 1)

    def rel(t):
        return None if t is None else round((t - corr - lm) * 1000, 1)
    marks = {
        x: round(tl[x] - tl["link_moved"], 1)
        for x in ("tunnel_up", "uplink_released", "ha_rekey_done")
        if x in tl
    }
    print(f"move {old}->{new} marks {marks}")
    for d, key, src, dst, hops in (
        (
            "up",
            "cn1-5001",
            MN,
            CN,
            [(new, "0"), (new, "4"), ("ha", "0"), ("ha", "4"), ("cngw", "0"), ("cngw", "4")],
        ),
        (
            "down",
            "mn1-5001",
            CN,
            MN,
            [
                ("cngw", "0"),
                ("cngw", "4"),
                ("ha", "0"),
                ("ha", "4"),
                (old, "0"),
                (new, "0"),
                (new, "4"),
            ],
        ),
    ):
        fp = tl.get("first_packet_mn_to_cn" if d == "up" else "first_packet_cn_to_mn")
        if fp is None:
            continue
        tfp = t0 + fp / 1000
        first = sorted((r for r in P[key] if r[2] / 1e9 >= tfp - 1e-7), key=lambda r: r[2])[:1]
        for r in first:
            seq = r[0]
            times = (
                [("sent", rel0(r[1] / 1e9))]
                + [
                    (f"{g}/{'in' if p == '0' else 'out'}", rel(idx.get((g, src, dst, seq, p))))
                    for g, p in hops
                ]
                + [("recv", rel0(r[2] / 1e9))]
            )
            print(f"   {d} seq {seq}: " + "  ".join(f"{n} {v}" for n, v in times))
            for n, v in times:
                if v is not None:
                    agg.setdefault((d, n), []).append(v)
print()
for d in ("up", "down"):
    print(d, "  ".join(f"{n}: {st.median(v):.1f}" for (dd, n), v in agg.items() if dd == d))

# steady state: the same hops for packets sent 1.0-0.3 s before each move
steady = {}
k = 0
for m in res["moves"]:
    if m["mn"] != "mn1":
        continue
    tl = m["walk"]["timeline_ms"]
    t0 = regs[k] - tl["mn_registered"] / 1000
    k += 1
    lm = t0 + tl["link_moved"] / 1000
    old = m["from"]
    corr = min(
        (idx[(old, MN, CN, r[0], "0")] - r[1] / 1e9)
        for r in P["cn1-5001"]
        if lm - 1.0 < r[1] / 1e9 < lm - 0.3 and (old, MN, CN, r[0], "0") in idx
    )
    for d, key, src, dst, hops in (
        ("up", "cn1-5001", MN, CN, [(old, "0"), ("ha", "0"), ("cngw", "0")]),
        ("down", "mn1-5001", CN, MN, [("cngw", "0"), ("ha", "0"), (old, "0")]),
    ):
        for r in P[key]:
            if not (lm - 1.0 < r[1] / 1e9 < lm - 0.3):
                continue
            ts = [r[1] / 1e9] + [idx.get((g, src, dst, r[0], p)) for g, p in hops] + [r[2] / 1e9]
            if None in ts:
                continue
            ts = [ts[0]] + [t - corr for t in ts[1:-1]] + [ts[-1]]
            for i in range(len(ts) - 1):
                steady.setdefault((d, i), []).append((ts[i + 1] - ts[i]) * 1000)
for d, names in (
    ("up", ["MN->FA", "FA->HA", "HA->CNGW", "CNGW->CN"]),
    ("down", ["CN->CNGW", "CNGW->HA", "HA->FA", "FA->MN"]),
):
    print(
        "steady",
        d,
        "  ".join(
            f"{n}: p50 {st.median(steady[(d, i)]):.1f} p90 {sorted(steady[(d, i)])[int(len(steady[(d, i)]) * 0.9)]:.1f}"
            for i, n in enumerate(names)
        ),
    )
