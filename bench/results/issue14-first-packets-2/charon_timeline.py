"""Per move: where the first packets after a move go (probe send/recv times, charon log events)."""

import json
import re
import sys
import time
import datetime
import statistics as st
from pathlib import Path

res = json.load(open(sys.argv[1]))
D = Path(sys.argv[2])
OFF = OFF0 = time.time() - time.monotonic()  # wall - mono; realigned per move below
day = datetime.datetime.fromtimestamp(time.time(), datetime.timezone.utc).date()


def wall(line):
    m = re.match(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) ", line)
    if not m:
        return None
    h, mi, s, ms = map(int, m.groups())
    dt = datetime.datetime(
        day.year, day.month, day.day, h, mi, s, ms * 1000, tzinfo=datetime.timezone.utc
    )
    return dt.timestamp()  # wall; converted per move


logs = {
    gw: [
        (wall(line), line.rstrip())
        for line in (D / "gw" / gw / "charon.log").read_text(errors="replace").splitlines()
    ]
    for gw in ("ha", "fa1", "fa2")
}
# (wall times; each move converts with its own offset)
probes = {}
for p in D.glob("probe-*.json"):
    probes[p.stem] = json.load(open(p))
who = {"mn1": ("alice", "5001"), "mn2": ("bob", "5002")}


ctl = []
for line in (D / "controller.log").read_text(errors="replace").splitlines():
    mm = re.match(
        r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d),(\d{3}) .* tunnel (\S+) at (\S+) up in ([0-9.]+) ms",
        line,
    )
    if mm:
        y, mo, d_, h, mi, s_, ms_ = map(int, mm.groups()[:7])
        w = datetime.datetime(
            y, mo, d_, h, mi, s_, ms_ * 1000, tzinfo=datetime.timezone.utc
        ).timestamp()
        ctl.append((w, mm.group(8), mm.group(9)))
rows = {}
regs = {
    mn: [json.loads(line)["t"] for line in open(D / f"{mn}-events.jsonl") if '"registered"' in line][1:]
    for mn in who
}
idx = {mn: 0 for mn in who}
for m in res["moves"]:
    if m.get("registered") and m["walk"]["timeline_ms"].get("mn_registered") is not None:
        m["t_move"] = regs[m["mn"]][idx[m["mn"]]] - m["walk"]["timeline_ms"]["mn_registered"] / 1000
    idx[m["mn"]] += 1
for m in res["moves"]:
    mn = m["mn"]
    user, port = who[mn]
    t0 = m["t_move"] if "t_move" in m else None
    tl = m["walk"]["timeline_ms"]
    if t0 is None:
        continue
    lm = tl["link_moved"]
    to = m["to"]
    tun = f"{user}_home.example/ha-{to}"
    if "tunnel_up" in tl:
        up = t0 + tl["tunnel_up"] / 1000
        cand = [w for w, tid, gw in ctl if tid == tun and gw == to]
        if cand:
            w = min(cand, key=lambda w: abs((w - OFF0) - up))
            OFF = w - up  # this move's wall - mono (the log line is the mark, +-1 ms)
    # HA: rekey request and new outbound SA for tun
    ev = {}
    for t, line in logs["ha"]:
        if t is None:
            continue
        t = t - OFF
        if t < t0 or t > t0 + 0.5 or f"<{tun}|" not in line:
            continue
        rel = (t - t0) * 1000
        if "REKEY_SA" in line and "generating CREATE_CHILD_SA request" in line:
            ev.setdefault("ha_rekey_req", rel)
        if "outbound CHILD_SA" in line and "established" in line:
            ev.setdefault("ha_out_sa", rel)
        if "parsed CREATE_CHILD_SA request" in line:
            ev.setdefault("ha_ccs_req_in", rel)
    old_tun = f"{user}_home.example/ha-{m['from']}"
    for t, line in logs["ha"]:
        if t is None:
            continue
        t = t - OFF
        if t < t0 or t > t0 + 0.5:
            continue
        if f"vici terminate IKE_SA '{old_tun}'" in line:
            ev.setdefault("ha_term_old", (t - t0) * 1000)
    for t, line in logs[to]:
        if t is None:
            continue
        t = t - OFF
        if t < t0 or t > t0 + 0.5 or f"<{tun}|" not in line:
            continue
        rel = (t - t0) * 1000
        if "outbound CHILD_SA" in line and "established" in line:
            ev.setdefault("fa_out_sa", rel)
        if "parsed CREATE_CHILD_SA request" in line:
            ev.setdefault("fa_rekey_in", rel)
    # probes: CN received (MN->CN), MN received (CN->MN)
    cn = probes[f"probe-cn1-{port}"]["received"]
    mnp = probes[f"probe-{mn}-{port}"]["received"]
    out = {}
    for d, rec in (("up", cn), ("down", mnp)):
        after = sorted(
            (r for r in rec if r[2] / 1e9 > t0 + lm / 1000 - 0.0 and r[2] / 1e9 < t0 + 1.0),
            key=lambda r: r[2],
        )
        before = [r for r in rec if r[2] / 1e9 <= t0 + lm / 1000]
        first = after[:3]
        # first packet SENT after link_moved that arrived
        sent_after = sorted(
            (r for r in rec if r[1] / 1e9 > t0 + lm / 1000 and r[1] / 1e9 < t0 + 1.0),
            key=lambda r: r[1],
        )
        out[d] = {
            "first_recv": [
                (
                    r[0],
                    round((r[1] / 1e9 - t0) * 1000 - lm, 1),
                    round((r[2] / 1e9 - t0) * 1000 - lm, 1),
                )
                for r in first
            ],
            "first_sent_after": [
                (
                    r[0],
                    round((r[1] / 1e9 - t0) * 1000 - lm, 1),
                    round((r[2] / 1e9 - t0) * 1000 - lm, 1),
                )
                for r in sent_after[:2]
            ],
        }
    rel = {k: round(v - lm, 1) for k, v in tl.items()}
    evr = {k: round(v - lm, 1) for k, v in ev.items()}
    print(
        datetime.datetime.fromtimestamp(t0 + lm / 1000 + OFF, datetime.timezone.utc).strftime(
            "%H:%M:%S.%f"
        )[:-3],
        end=" ",
    )
    print(
        f"{mn} {m['from']}->{to} up {rel.get('tunnel_up')} rel {rel.get('uplink_released')} rrp {rel.get('rrp_sent')} reg {rel.get('mn_registered')} "
        f"fpu {rel.get('first_packet_mn_to_cn')} fpd {rel.get('first_packet_cn_to_mn')} | {evr}"
    )
    for d in ("up", "down"):
        print(
            f"     {d}: first recv (seq, sent, recv) {out[d]['first_recv']}  first sent after move {out[d]['first_sent_after']}"
        )
    rows.setdefault(mn, []).append({**{k: v for k, v in rel.items()}, **evr})
for mn, rs in rows.items():
    keys = [
        "rrq_at_fa",
        "tunnel_up",
        "uplink_released",
        "rrp_sent",
        "mn_registered",
        "ha_rekey_req",
        "ha_term_old",
        "ha_out_sa",
        "fa_out_sa",
        "ha_rekey_done",
        "first_packet_mn_to_cn",
        "first_packet_cn_to_mn",
    ]
    print(
        mn,
        {
            k: round(st.median([r[k] for r in rs if r.get(k) is not None]), 1)
            for k in keys
            if any(r.get(k) is not None for r in rs)
        },
    )
