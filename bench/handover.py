"""Handover: repeated intra-domain moves fa1 <-> fa2 through the real data plane.

Mininet + userspace OVS + one charon per gateway + the controller process, exactly as
``mipvpn demo`` / ``mipvpn scenario`` bring them up (``mininet_scripts.scenario``), with
a 1,000 packet/s probe each way between mn1 and cn1.  After the first registration the
MN's link moves acc1 -> acc2 -> acc1 ... ``--moves`` times (``--settle`` s apart).

Per move: the data-plane gap and packets lost per direction (``mininet_scripts.probe``),
the signalling time per phase (the controller's ``/v1/handovers`` marks and the MN's
events), registration -> tunnel ready (``rrq_at_fa`` -> ``tunnel_up``), the IKE exchange
at the new FA as charon logged it (vici initiate -> IKE_SA_INIT -> IKE_AUTH -> CHILD_SA),
and separately the emulation's own link-move time (``MipvpnNet.move_host``: one OVSDB
transaction until ovs-vswitchd has applied it).

``--ike ecp256,x25519,modp2048`` repeats the whole run once per IKE DH group (the user's
VPN profile is overridden in the run's copy of the topology; product code unchanged).
``--esp aes128gcm16,aes128gcm16-ecp256`` does the same per ESP proposal (with and
without a DH group: what perfect forward secrecy costs a move); with both options every
combination runs.

Runs in a private network namespace (re-executes itself under ``unshare -n``): one
userspace OVS per namespace, and other runs may share the machine.  Needs root.

    python -m bench.handover [--moves 20] [--settle 1.5] [--ike ecp256,x25519]
                             [--esp aes128gcm16,aes128gcm16-ecp256] [--json F]
    python -m bench.handover --topology topology/two-domains.yaml --between acc1,acc3
                                                             # inter-domain moves fa1 <-> fa3
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import (REPO, bench_parser, parse_bench_args, print_machine, pyplot,
                          reexec_in_private_netns, save_plot, save_results, summary)
from controller.textutil import table
from mininet_scripts.air import LINK_MODELS

IKE_GROUPS = {"ecp256": "aes128-sha256-ecp256", "x25519": "aes128-sha256-x25519",
              "modp2048": "aes128-sha256-modp2048", "modp3072": "aes128-sha256-modp3072",
              "ecp384": "aes256-sha384-ecp384"}


#: ``--kind``: the four kinds of move the issue names.  mn1 (alice) moves; ``profile``
#: is merged into alice's VPN profile in the run's copy of the topology; ``port`` is
#: the access port it moves to (acc2:2 is mn3's in two-domains).
KINDS: dict[str, dict[str, Any]] = {
    "intra": {"topology": "topology/default.yaml", "between": ("acc1", "acc2"),
              "cn": "cn1", "port": 2, "profile": {}},
    "inter": {"topology": "topology/two-domains.yaml", "between": ("acc1", "acc3"),
              "cn": "cn1", "port": 2, "profile": {}},
    "route-optimised": {"topology": "topology/two-domains.yaml", "between": ("acc1", "acc2"),
                        "cn": "cn2", "port": 9,
                        "profile": {"destinations": [{"prefix": "10.32.0.0/24",
                                                      "gateway": "cngw2"}]}},
    "smooth-handoff": {"topology": "topology/two-domains.yaml", "between": ("acc1", "acc2"),
                       "cn": "cn1", "port": 9, "profile": {"smooth_handoff": True}},
    # issue 14: intra with the profile's seamless_handover (the neighbour FA's IKE_SA
    # stands ahead; the move runs CREATE_CHILD_SA only); its baseline is "intra"
    "intra-seamless": {"topology": "topology/default.yaml", "between": ("acc1", "acc2"),
                       "cn": "cn1", "port": 2, "profile": {"seamless_handover": True}},
}


def move_spec(moves: int, settle: float, ike: str | None, topology: str,
              between: tuple[str, str] = ("acc1", "acc2"), cn: str = "cn1", port: int = 2,
              profile: dict[str, Any] | None = None,
              esp: str | None = None) -> dict[str, Any]:
    """A scenario: register, then ``moves`` alternating moves between ``between[1]`` and
    ``between[0]`` (mn1's attachment switch), probing ``cn``; ``profile`` is merged into
    mn1's user's VPN profile, ``ike`` and ``esp`` into every profile."""
    timeline: list[dict[str, Any]] = [{"sleep": 1.0}]
    for k in range(moves):
        timeline.append({"move": "mn1", "to": between[1] if k % 2 == 0 else between[0],
                         "port": port})
        timeline.append({"sleep": settle})
    spec: dict[str, Any] = {
        "name": "bench-handover", "topology": topology, "_source": "bench.handover",
        "mobile_nodes": ["mn1"], "probes": [{"mn": "mn1", "cn": cn, "rate": 1000}],
        "timeline": timeline}
    if ike or esp or profile:
        import yaml
        data = yaml.safe_load((REPO / topology).read_text())
        profiles = data.get("vpn_profiles") or {}
        mine = data["mobile_nodes"]["mn1"]["nai"]
        over = {}
        for nai, prof in profiles.items():
            prof = dict(prof)
            if ike:
                prof["security"] = {**(prof.get("security") or {}), "ike": ike}
            if esp:
                prof["security"] = {**(prof.get("security") or {}), "esp": esp}
            if profile and nai == mine:
                prof.update(profile)
            over[nai] = prof
        spec["overrides"] = {"vpn_profiles": over}
    return spec


# ------------------------------------------------------------------ charon logs

_TS = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) ")
_SA = re.compile(r"<([^|>]+)\|(\d+)>")


def _t(line: str) -> float | None:
    m = _TS.match(line)
    if not m:
        return None
    t = datetime.strptime(m.group(1), "%H:%M:%S.%f")
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def ike_exchanges(log: Path) -> list[dict[str, Any]]:
    """Each IKE_SA this charon initiated: ms from ``vici initiate`` to IKE_SA_INIT sent,
    the IKE_SA_INIT and IKE_AUTH round trips, and to CHILD_SA established."""
    if not log.exists():
        return []
    out: list[dict[str, Any]] = []
    by_sa: dict[str, dict[str, Any]] = {}
    last_vici: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        t = _t(line)
        if t is None:
            continue
        m = re.search(r"vici initiate CHILD_SA '([^']+)'", line)
        if m:
            last_vici[m.group(1)] = t
            continue
        m = re.search(r"initiating IKE_SA (\S+)\[(\d+)\]", line)
        if m:
            name = m.group(1)
            rec = {"tunnel_id": name, "vici_initiate": last_vici.pop(name, t), "start": t}
            by_sa[f"{name}|{m.group(2)}"] = rec
            out.append(rec)
            continue
        sa = _SA.search(line)
        if sa is None:
            continue
        rec = by_sa.get(f"{sa.group(1)}|{sa.group(2)}")
        if rec is None:
            continue
        if "sending packet" in line and "init_sent" not in rec:
            rec["init_sent"] = t
        elif "parsed IKE_SA_INIT response" in line:
            rec["init_recv"] = t
        elif "generating IKE_AUTH request" in line:
            rec["auth_built"] = t
        elif "parsed IKE_AUTH response" in line:
            rec["auth_recv"] = t
        elif "CHILD_SA" in line and "established" in line and "child_up" not in rec:
            rec["child_up"] = t
    result = []
    for rec in out:
        def ms(a: str, b: str) -> float | None:
            if a in rec and b in rec:
                return round((rec[b] - rec[a]) * 1000, 1)
            return None
        result.append({"tunnel_id": rec["tunnel_id"],
                       "vici_to_init_sent_ms": ms("vici_initiate", "init_sent"),
                       "ike_sa_init_rtt_ms": ms("init_sent", "init_recv"),
                       "ike_auth_rtt_ms": ms("auth_built", "auth_recv"),
                       "vici_to_child_up_ms": ms("vici_initiate", "child_up")})
    return result


def create_child_exchanges(log: Path) -> list[float]:
    """Round trips (ms) of the CREATE_CHILD_SA exchanges this charon initiated (rekeys,
    further CHILD_SAs): where an ESP proposal with a DH group costs its key exchange."""
    if not log.exists():
        return []
    sent: dict[str, float] = {}
    out: list[float] = []
    for line in log.read_text(errors="replace").splitlines():
        t = _t(line)
        sa = _SA.search(line)
        if t is None or sa is None:
            continue
        key = f"{sa.group(1)}|{sa.group(2)}"
        if "generating CREATE_CHILD_SA request" in line:
            sent[key] = t
        elif "parsed CREATE_CHILD_SA response" in line and key in sent:
            out.append(round((t - sent.pop(key)) * 1000, 1))
    return out


# ------------------------------------------------------------------ the run


def run_once(moves: int, settle: float, ike: str | None, topology: str,
             keep_dir: bool, between: tuple[str, str] = ("acc1", "acc2"),
             esp: str | None = None, link_model: str = "carrier",
             **kind: Any) -> dict[str, Any]:
    """One run; ``kind``: ``cn``, ``port``, ``profile`` of ``move_spec``."""
    from controller.adapters.private_files import private_run_dir
    from mininet_scripts.demo import read_events, rest_get
    from mininet_scripts.scenario import ScenarioRun

    spec = move_spec(moves, settle, ike, topology, between, esp=esp, **kind)
    run_dir = private_run_dir("mipvpn-bench-handover-")   # 0700: keys, DB, token
    run = ScenarioRun(spec, run_dir, "127.0.0.1:8080", 6653, link_model=link_model)
    res: dict[str, Any] = {"link_model": link_model,
                           "ike_proposal": ike or "(topology default)",
                           "esp_proposal": esp or "(topology default)"}
    try:
        t0 = time.monotonic()
        out = run.run()
        res["wall_s"] = round(time.monotonic() - t0, 1)
        handovers = rest_get(run.demo.rest, "/v1/handovers")
        events = read_events(run.events["mn1"])
        res["scenario_ok"] = out.get("ok")
        res["failed"] = out.get("failed")
        res["registration_ms"] = out.get("registration_ms")
        res["moves"] = _per_move(run, out, handovers, events)
        ike_fa = {}
        for fa in ("fa1", "fa2", "fa3"):
            ike_fa[fa] = ike_exchanges(run_dir / "gw" / fa / "charon.log")
        res["ike_exchanges"] = ike_fa
        res["create_child_rtt_ms"] = {
            gw: create_child_exchanges(run_dir / "gw" / gw / "charon.log")
            for gw in ("ha", "fa1", "fa2", "fa3")}
        _attach_ike(res["moves"], ike_fa)
        res["probe"] = out.get("probes")
    finally:
        run.close()
        if keep_dir:
            print(f"run directory kept: {run_dir}", flush=True)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    return res


def _per_move(run: Any, out: dict[str, Any], handovers: list[dict[str, Any]],
              events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    nai = run.topo.mobile_nodes["mn1"].nai
    recs = [h for h in handovers if h.get("nai") == nai and h.get("previous_fa")]
    moves = []
    for k, (move, res) in enumerate(zip(run.moves, out.get("moves", []))):
        entry = dict(res)
        rec = recs[k] if k < len(recs) else {}
        marks = rec.get("marks", {})
        phases = entry.setdefault("phases_ms", {})
        reg = move.get("registered")
        rrq = None
        if reg is not None:
            rrq = max((e for e in events if e["event"] == "rrq_sent" and e["t"] <= reg["t"]),
                      key=lambda e: e["t"], default=None)
        if rrq is not None:
            # the MN's RRQ can leave before move_host has returned: the link-move
            # time and the MN's detection overlap,
            # so they are reported together here and the emulation's time separately
            phases["move_to_rrq_sent"] = round((rrq["t"] - move["t_move"]) * 1000, 3)
            if "rrq_at_fa" in marks:
                phases["rrq_to_fa"] = round((marks["rrq_at_fa"] - rrq["t"]) * 1000, 3)
            if "rrp_sent" in marks and reg is not None:
                phases["rrp_to_mn"] = round((reg["t"] - marks["rrp_sent"]) * 1000, 3)
        if "rrq_at_fa" in marks and "tunnel_up" in marks:
            entry["registration_to_tunnel_ready_ms"] = round(
                (marks["tunnel_up"] - marks["rrq_at_fa"]) * 1000, 3)
        if reg is not None:
            entry["move_to_registered_ms"] = round((reg["t"] - move["t_move"]) * 1000, 3)
        entry["link_move_ms"] = move["link_move_ms"]
        moves.append(entry)
    return moves


def _attach_ike(moves: list[dict[str, Any]], ike_fa: dict[str, list[dict[str, Any]]]
                ) -> None:
    """The k-th initiation logged by an FA's charon is its k-th arrival (fa1's first
    one is the initial registration)."""
    seen = {"fa1": 1, "fa2": 0}
    for m in moves:
        fa = m.get("to")
        lst = ike_fa.get(fa, [])
        k = seen.get(fa, 0)
        if k < len(lst):
            m["ike_at_new_fa"] = lst[k]
        seen[fa] = k + 1


def summarise(res: dict[str, Any]) -> dict[str, Any]:
    moves = [m for m in res.get("moves", []) if m.get("registered")]
    s: dict[str, Any] = {"moves": len(res.get("moves", [])), "registered": len(moves)}
    for d in ("mn_to_cn", "cn_to_mn"):
        s[f"gap_ms_{d}"] = summary([m["gap_ms"][d] for m in moves if "gap_ms" in m], 1)
        s[f"lost_{d}"] = summary([m["lost"][d] for m in moves if "lost" in m], 1)
    s["link_move_ms"] = summary([m["link_move_ms"] for m in moves], 1)
    s["registration_to_tunnel_ready_ms"] = summary(
        [m["registration_to_tunnel_ready_ms"] for m in moves
         if "registration_to_tunnel_ready_ms" in m], 1)
    s["move_to_registered_ms"] = summary(
        [m["move_to_registered_ms"] for m in moves if "move_to_registered_ms" in m], 1)
    names: list[str] = []
    for m in moves:
        for n in m.get("phases_ms", {}):
            if n not in names:
                names.append(n)
    s["phases_ms_median"] = {n: summary([m["phases_ms"][n] for m in moves
                                         if n in m.get("phases_ms", {})], 2)["median"]
                             for n in names}
    s.update(summarise_walks(moves))
    for key in ("vici_to_init_sent_ms", "ike_sa_init_rtt_ms", "ike_auth_rtt_ms",
                "vici_to_child_up_ms"):
        vals = [m["ike_at_new_fa"][key] for m in moves
                if m.get("ike_at_new_fa", {}).get(key) is not None]
        s[f"ike_{key}"] = summary(vals, 1)
    s["create_child_rtt_ms"] = summary(
        [v for lst in (res.get("create_child_rtt_ms") or {}).values() for v in lst], 1)
    return s


def summarise_walks(moves: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 14, over the moves' walks (``mininet_scripts.demo_results.move_walk``):
    each point's median ms since the move started (in that order: the median move's
    walk down to the first packet each way) and, per direction, the first packet
    since the move started, since the FA's tunnel was up, and the gap minus the
    emulation's link move (the protocol-added interruption)."""
    walks = [m["walk"] for m in moves if m.get("walk")]
    names: list[str] = []
    for w in walks:
        names += [n for n in w.get("timeline_ms", {}) if n not in names]
    medians = {n: summary([w["timeline_ms"][n] for w in walks
                           if n in w.get("timeline_ms", {})], 2)["median"] for n in names}
    out: dict[str, Any] = {"walk_median_ms": dict(sorted(
        ((n, v) for n, v in medians.items() if v is not None), key=lambda kv: kv[1]))}
    for key in ("first_packet_ms", "tunnel_up_to_first_packet_ms", "protocol_added_ms"):
        for d in ("mn_to_cn", "cn_to_mn"):
            out[f"{key}_{d}"] = summary([w[key][d] for w in walks
                                         if w.get(key, {}).get(d) is not None], 1)
    # issue 14's "registration -> tunnel ready": the RRQ at the new FA -> its tunnel up
    out["rrq_at_fa_to_tunnel_up_ms"] = summary(
        [w["timeline_ms"]["tunnel_up"] - w["timeline_ms"]["rrq_at_fa"] for w in walks
         if {"tunnel_up", "rrq_at_fa"} <= set(w.get("timeline_ms", {}))], 1)
    # h14g: a promoted move's HA rekey (the downlink on the new FA by then at the latest)
    out["tunnel_up_to_ha_rekey_done_ms"] = summary(
        [w["timeline_ms"]["ha_rekey_done"] - w["timeline_ms"]["tunnel_up"] for w in walks
         if {"tunnel_up", "ha_rekey_done"} <= set(w.get("timeline_ms", {}))], 1)
    # moves whose first RRQ was lost (the MN's 1 s retransmission timer is in the gap)
    out["moves_rrq_retransmitted"] = sum(1 for w in walks if w.get("rrq_tries", 1) > 1)
    return out


def print_summary(label: str, s: dict[str, Any]) -> None:
    print(f"\n== {label}: {s['registered']}/{s['moves']} moves re-registered")
    rows = []
    for d, name in (("mn_to_cn", "MN->CN"), ("cn_to_mn", "CN->MN")):
        g, lo = s[f"gap_ms_{d}"], s[f"lost_{d}"]
        rows.append([f"gap {name} ms", g["median"], g["p95"], g["max"]])
        rows.append([f"lost {name} pkts", lo["median"], lo["p95"], lo["max"]])
    for key, name in (("registration_to_tunnel_ready_ms", "RRQ at FA -> tunnel up ms"),
                      ("move_to_registered_ms", "link move -> MN registered ms"),
                      ("link_move_ms", "emulation link move ms"),
                      ("ike_vici_to_child_up_ms", "IKE at FA: vici -> CHILD_SA ms"),
                      ("ike_ike_sa_init_rtt_ms", "  IKE_SA_INIT round trip ms"),
                      ("ike_ike_auth_rtt_ms", "  IKE_AUTH round trip ms"),
                      ("ike_vici_to_init_sent_ms", "  vici -> first packet ms"),
                      ("create_child_rtt_ms", "CREATE_CHILD_SA round trip ms")):
        v = s.get(key) or {}
        rows.append([name, v.get("median"), v.get("p95"), v.get("max")])
    print(table(["", "median", "p95", "max"], rows, numbers=True))
    print("signalling phases (median ms):")
    for n, v in s["phases_ms_median"].items():
        print(f"    {n:28s} {v if v is not None else '-':>8}")
    if s.get("walk_median_ms"):
        rows = []
        for key, name in (("first_packet_ms", "first packet since the move"),
                          ("tunnel_up_to_first_packet_ms", "  since the FA's tunnel up"),
                          ("protocol_added_ms", "gap minus link move")):
            for d, arrow in (("mn_to_cn", "MN->CN"), ("cn_to_mn", "CN->MN")):
                v = s.get(f"{key}_{d}") or {}
                rows.append([f"{name} {arrow} ms", v.get("median"), v.get("p95"),
                             v.get("max")])
        print(table(["", "median", "p95", "max"], rows, numbers=True))
        print(f"moves whose first RRQ was lost (retransmitted after 1 s): "
              f"{s.get('moves_rrq_retransmitted', 0)}")
        print("the median move's walk (ms since the move started):")
        for n, v in s["walk_median_ms"].items():
            print(f"    {v:8.2f}  {n}")


def _label(r: dict[str, Any]) -> str:
    """IKE proposal, and the ESP proposal when the run set one."""
    esp = r.get("esp_proposal")
    return r["ike_proposal"] + (f" / ESP {esp}" if esp and not esp.startswith("(") else "")


def plot(results: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    a = axes[0]
    for r in results:
        moves = r.get("moves", [])
        xs = list(range(1, len(moves) + 1))
        lbl = _label(r)
        a.plot(xs, [m.get("gap_ms", {}).get("mn_to_cn", float("nan")) for m in moves], "o-",
               label=f"{lbl} MN->CN")
        a.plot(xs, [m.get("gap_ms", {}).get("cn_to_mn", float("nan")) for m in moves], "s--",
               label=f"{lbl} CN->MN")
    a.axhline(20, color="grey", linestyle=":", label="target 20 ms")
    a.set_xlabel("move")
    a.set_ylabel("data-plane gap (ms)")
    a.set_ylim(bottom=0)
    a.set_title("gap per move (intra-domain, 1 ms probe)")
    a.legend(fontsize=7)
    b = axes[1]
    r = results[0]
    walk = r["summary"].get("walk_median_ms") or {}
    if walk:
        # issue 14: the median move's walk, each segment a bar from point to point
        names = list(walk)
        for k, (n, t) in enumerate(walk.items()):
            end = walk[names[k + 1]] if k + 1 < len(names) else t
            b.barh([len(names) - k], [max(end - t, 0.3)], left=t)
            b.text(end + 1, len(names) - k, f"{n} {t:.1f}", va="center", fontsize=6)
        b.set_xlabel("ms since the move started (median per point)")
        b.set_title(f"the median move down to the first packet, IKE {_label(r)}")
        b.set_yticks([])
        save_plot(fig, path)
        return
    ph = r["summary"]["phases_ms_median"]
    order = ["move_to_rrq_sent", "rrq_to_fa", "aaa_round_trip", "ha_relay",
             "flows_installed", "fa_tunnel_up", "rrp_to_mn"]
    left = 0.0
    for n in order:
        v = ph.get(n)
        if v is None:
            continue
        b.barh([0], [v], left=left, label=f"{n} {v:.1f}")
        left += v
    lm = ph.get("link_move (emulation)")
    if lm is not None:
        b.axvline(lm, color="black", linestyle=":", label=f"emulation link move {lm:.1f}")
    gap = r["summary"]["gap_ms_cn_to_mn"]["median"]
    if gap is not None:
        b.axvline(gap, color="red", linestyle="--", label=f"gap CN->MN (median) {gap:.1f}")
    b.set_yticks([])
    b.set_xlabel("ms since the link move started (medians, stacked)")
    b.set_title(f"where a move's time goes ({_label(r)})")
    b.legend(fontsize=7, loc="upper right")
    save_plot(fig, path)


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser("handover", __doc__)
    ap.add_argument("--moves", type=int, default=20)
    ap.add_argument("--settle", type=float, default=1.5, help="seconds between moves")
    ap.add_argument("--ike", default="",
                    help=f"comma-separated DH groups to compare ({', '.join(IKE_GROUPS)}) "
                         f"or full IKE proposals; default: the topology's")
    ap.add_argument("--esp", default="",
                    help="comma-separated ESP proposals to compare, e.g. "
                         "aes128gcm16,aes128gcm16-ecp256 (without / with PFS); default: "
                         "the topology's")
    ap.add_argument("--kind", choices=sorted(KINDS), default=None,
                    help="a preset: topology, switches, correspondent and profile for "
                         "intra-domain, inter-domain, route-optimised or smooth-handoff "
                         "moves (overrides --topology and --between)")
    ap.add_argument("--topology", default="topology/default.yaml")
    ap.add_argument("--between", default="acc1,acc2",
                    help="the two access switches mn1 alternates between (the first is "
                         "its attachment); e.g. --topology topology/two-domains.yaml "
                         "--between acc1,acc3 for inter-domain moves")
    ap.add_argument("--keep-dir", action="store_true")
    ap.add_argument("--link-model", choices=LINK_MODELS, default="carrier",
                    help="how the emulation moves a link: carrier (cell links made "
                         "ahead, a move flips carriers) or replug (del-port + add-port)")
    args = parse_bench_args(ap, argv)
    if os.geteuid() != 0:
        print("bench.handover needs root (Mininet, Open vSwitch, strongSwan)", file=sys.stderr)
        return 2
    code = reexec_in_private_netns([sys.executable, "-m", "bench.handover",
                                    *(argv if argv is not None else sys.argv[1:])])
    if code is not None:
        return code
    m = print_machine()
    options = [IKE_GROUPS.get(x, x) for x in args.ike.split(",") if x] or [None]
    esps = [x for x in args.esp.split(",") if x] or [None]
    first, _, second = args.between.partition(",")
    if not first or not second or "," in second:
        ap.error("--between takes two switches: A,B")
    between = (first, second)
    kind: dict[str, Any] = {}
    if args.kind:
        preset = KINDS[args.kind]
        args.topology, between = preset["topology"], preset["between"]
        kind = {k: preset[k] for k in ("cn", "port", "profile")}
    results = []
    for ike in options:
        for esp in esps:
            print(f"handover: {args.moves} moves {between[0]} <-> {between[1]} "
                  f"({args.topology}), IKE {ike or '(topology default)'}, "
                  f"ESP {esp or '(topology default)'}", flush=True)
            r = run_once(args.moves, args.settle, ike, args.topology, args.keep_dir,
                         between, esp=esp, link_model=args.link_model, **kind)
            r["topology"], r["between"], r["kind"] = args.topology, list(between), args.kind
            r["summary"] = summarise(r)
            print_summary(_label(r), r["summary"])
            results.append(r)
    res = {"benchmark": "handover", "machine": m, "settle_s": args.settle, "runs": results}
    save_results("handover", args.json, res, None if args.no_plot else plot, data=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
