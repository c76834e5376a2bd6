"""Summary of paired runs: per MN medians of the walk, the first packets' send times, loss."""

import json
import sys
import statistics as st
from pathlib import Path


def med(xs):
    xs = [x for x in xs if x is not None]
    return round(st.median(xs), 1) if xs else None


def run_dir(log):
    for line in open(log):
        if line.startswith("run directory kept:"):
            return Path(line.split()[-1])


def summarise(js):
    res = json.load(open(js))
    D = run_dir(js.replace(".json", ".log"))
    regs = {
        mn: [json.loads(line)["t"] for line in open(D / f"{mn}-events.jsonl") if '"registered"' in line][1:]
        for mn in ("mn1", "mn2")
    }
    P = {
        k: json.load(open(D / f"probe-{k}.json"))["received"]
        for k in ("cn1-5001", "mn1-5001", "cn1-5002", "mn2-5002")
    }
    own = {"mn1": ("cn1-5001", "mn1-5001"), "mn2": ("cn1-5002", "mn2-5002")}
    idx = {"mn1": 0, "mn2": 0}
    rows = {"mn1": [], "mn2": []}
    for m in res["moves"]:
        mn = m["mn"]
        tl = m["walk"]["timeline_ms"]
        if tl.get("mn_registered") is None or not m.get("registered"):
            idx[mn] += 1
            continue
        t0 = regs[mn][idx[mn]] - tl["mn_registered"] / 1000
        idx[mn] += 1
        lm = tl["link_moved"]
        r = {k: (v - lm) for k, v in tl.items()}
        for d, k in zip(("up", "down"), own[mn]):
            fp = tl.get(f"first_packet_{'mn_to_cn' if d == 'up' else 'cn_to_mn'}")
            if fp is None:
                continue
            # the packet that ended the gap: its send time
            hit = [x for x in P[k] if abs(x[2] / 1e9 - (t0 + fp / 1000)) < 1e-6]
            if hit:
                r[f"sent_{d}"] = (hit[0][1] / 1e9 - t0) * 1000 - lm
        r["lost_up"] = m["walk"]["lost_beyond_link_move"]["mn_to_cn"]
        r["lost_down"] = m["walk"]["lost_beyond_link_move"]["cn_to_mn"]
        r["gap_up"] = m["walk"]["protocol_added_ms"]["mn_to_cn"]
        r["gap_down"] = m["walk"]["protocol_added_ms"]["cn_to_mn"]
        rows[mn].append(r)
    keys = [
        "rrq_at_fa",
        "tunnel_up",
        "uplink_released",
        "ha_rekey_done",
        "rrp_sent",
        "mn_registered",
        "first_packet_mn_to_cn",
        "sent_up",
        "first_packet_cn_to_mn",
        "sent_down",
        "gap_up",
        "gap_down",
        "lost_up",
        "lost_down",
    ]
    out = {mn: {k: med([r.get(k) for r in rs]) for k in keys} for mn, rs in rows.items()}
    out["code"] = res.get("code")
    out["load_after"] = res.get("load_after")
    out["ratio"] = res.get("ratio")
    return out


if __name__ == "__main__":
    for js in sys.argv[1:]:
        s = summarise(js)
        print(js, "load", s["load_after"])
        for mn in ("mn1", "mn2"):
            print("  ", mn, {k: v for k, v in s[mn].items() if v is not None})
