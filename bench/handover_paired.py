"""Handover, paired: each move kind with its mechanism on, against a same-run baseline
with it off (issue 14: "the ratio is the figure that counts on a noisy machine").

One run (``mininet_scripts.scenario``: private OVS, the controller, one charon per
gateway) of ``topology/two-domains.yaml`` with two mobile nodes at acc1: mn1 (alice)
with the mechanism on, mn2 (bob) with the same VPN profile and the mechanism off.  Each
has its own 1,000 packet/s probe each way.  They move in turns, in the order A B B A
A B ... (so drift in the machine's load hits both alike), ``--moves`` times each,
``--settle`` s apart, between the kind's two access switches.

Per MN and direction: median / p95 / max gap, the gap minus the emulated link move
(the protocol-added interruption), packets lost; and mechanism / baseline for each
median (the ratio).  Kinds (``KINDS``):

- ``seamless``: ``seamless_handover`` on vs off, intra-domain (acc1 <-> acc2).  The
  run is only valid when the mechanism's moves really used the prepared IKE_SA: in the
  new FA's charon log the move's CHILD_SA came from a CREATE_CHILD_SA on an existing
  IKE_SA, not from an IKE_SA_INIT.  Under 90 % of the moves: INVALID, exit code 1
  (the benchmark would be measuring the fallback).
- ``smooth-handoff``: ``smooth_handoff`` on vs off, intra-domain.
- ``route-optimised``: alice's destination 10.32.0.0/24 behind the dynamic CN-GW2 (the
  FA<->CN-GW2 tunnel follows her), probing cn2, against bob through the HA to the
  static CN-GW, probing cn1: the same move with and without route optimisation.
- ``seamless-smooth``: both options on vs both off (the seamless check applies).
- ``inter-seamless``: ``seamless_handover`` on vs off, inter-domain (acc1 <-> acc3).

Needs root; re-executes itself in a private network namespace (``unshare -n``).

    python -m bench.handover_paired --paired seamless [--moves 20] [--settle 1.5]
        [--json bench/results/handover-paired-seamless.json] [--keep-dir]
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (REPO, bench_parser, command_line, parse_bench_args,
                          print_machine, reexec_in_private_netns, save_results, summary)
from bench.handover import summarise_walks
from controller.textutil import table
from mininet_scripts.air import LINK_MODELS

TOPOLOGY = "topology/two-domains.yaml"
DIRECTIONS = (("mn_to_cn", "MN->CN"), ("cn_to_mn", "CN->MN"))
#: the share of the mechanism's moves that must have used the prepared IKE_SA
SEAMLESS_REQUIRED = 0.9
#: s between a CHILD_SA's initiation and a rekey that counts as its promotion
PROMOTED_AFTER = 0.3
#: a kind: the two access switches, the ports each MN takes on them (its attach port
#: first; acc2:2 is mn3's), the correspondent each probes, and what is merged into
#: alice's profile (``on``) and into bob's copy of it (``off``)
KINDS: dict[str, dict[str, Any]] = {
    "seamless": {"between": ("acc1", "acc2"), "ports": {"mn1": (2, 3), "mn2": (3, 4)},
                 "cn": {"mn1": "cn1", "mn2": "cn1"},
                 "on": {"seamless_handover": True}, "off": {"seamless_handover": False},
                 "check_prepared": True},
    "smooth-handoff": {"between": ("acc1", "acc2"), "ports": {"mn1": (2, 3), "mn2": (3, 4)},
                       "cn": {"mn1": "cn1", "mn2": "cn1"},
                       "on": {"smooth_handoff": True}, "off": {"smooth_handoff": False}},
    "route-optimised": {
        "between": ("acc1", "acc2"), "ports": {"mn1": (2, 3), "mn2": (3, 4)},
        "cn": {"mn1": "cn2", "mn2": "cn1"},
        "on": {"destinations": [{"prefix": "10.32.0.0/24", "gateway": "cngw2"}]},
        "off": {"destinations": [{"prefix": "10.30.0.0/24", "gateway": "cngw"}]}},
    "seamless-smooth": {"between": ("acc1", "acc2"), "ports": {"mn1": (2, 3), "mn2": (3, 4)},
                        "cn": {"mn1": "cn1", "mn2": "cn1"},
                        "on": {"seamless_handover": True, "smooth_handoff": True},
                        "off": {"seamless_handover": False, "smooth_handoff": False},
                        "check_prepared": True},
    "inter-seamless": {"between": ("acc1", "acc3"), "ports": {"mn1": (2, 2), "mn2": (3, 3)},
                       "cn": {"mn1": "cn1", "mn2": "cn1"},
                       "on": {"seamless_handover": True}, "off": {"seamless_handover": False},
                       "check_prepared": True},
}
MECHANISM, BASELINE = "mn1", "mn2"


def paired_spec(kind: str, moves: int, settle: float) -> dict[str, Any]:
    """The scenario: both MNs registered at acc1, then ``moves`` moves each, in the
    order A B B A A B ..., ``settle`` s after each."""
    import yaml
    k = KINDS[kind]
    data = yaml.safe_load((REPO / TOPOLOGY).read_text())
    mns = data["mobile_nodes"]
    base = dict(data["vpn_profiles"][mns[MECHANISM]["nai"]])
    profiles = {mns[MECHANISM]["nai"]: {**base, **k["on"]},
                mns[BASELINE]["nai"]: {**base, **k["off"]}}
    here = {MECHANISM: 0, BASELINE: 0}        # index into ``between``
    timeline: list[dict[str, Any]] = [{"sleep": 1.0}]
    for r in range(moves):
        for mn in ((MECHANISM, BASELINE) if r % 2 == 0 else (BASELINE, MECHANISM)):
            here[mn] = 1 - here[mn]
            timeline.append({"move": mn, "to": k["between"][here[mn]],
                             "port": k["ports"][mn][here[mn]]})
            timeline.append({"sleep": settle})
    return {"name": f"bench-handover-paired-{kind}", "topology": TOPOLOGY,
            "_source": "bench.handover_paired", "mobile_nodes": [MECHANISM, BASELINE],
            "overrides": {"vpn_profiles": profiles},
            "probes": [{"mn": mn, "cn": k["cn"][mn], "rate": 1000}
                       for mn in (MECHANISM, BASELINE)],
            "timeline": timeline}


# ------------------------------------------------------------------ charon logs

_TS = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) ")
_KEY_LOADED = re.compile(r"loaded IKE shared key with id 'psk:([^']+)'")
_INITIATE = re.compile(r"vici initiate CHILD_SA '([^']+)'")


def child_sa_origins(log_text: str) -> list[dict[str, Any]]:
    """Each CHILD_SA charon was asked to initiate over VICI (``vici initiate CHILD_SA
    'X'``), and how it came up: ``create_child_sa`` (a CREATE_CHILD_SA on an IKE_SA
    that stood already: a prepared one) or ``ike_sa_init`` (a new IKE_SA: IKE_SA_INIT +
    IKE_AUTH), else ``unknown``.  Rekeys (``N(REKEY_SA)``) are not initiations.  A
    CHILD_SA stood up ahead (``PrepareTunnel(child=True)``) whose tunnel then gets a key
    loaded more than ``PROMOTED_AFTER`` s after its initiation (the move's key, loaded
    at its promotion, before the HA's rekey; the key loaded right after a
    CREATE_CHILD_SA comes within ms) and not initiated within ``PROMOTED_AFTER`` after
    that load (an ordinary add loads its key, then initiates) becomes ``standing``."""
    out: list[dict[str, Any]] = []
    pending: dict[str, dict[str, Any]] = {}
    last: dict[str, dict[str, Any]] = {}
    for line in log_text.splitlines():
        m = _KEY_LOADED.search(line)
        if m:
            rec, at = last.get(m.group(1)), _clock(line)
            if rec is not None and rec["how"] == "ike_sa_init" and rec["at"] is not None \
                    and at is not None and at - rec["at"] > PROMOTED_AFTER:
                rec["initiated"] = rec["how"]
                rec["how"], rec["promoted_at"] = "standing", at
            continue
        m = _INITIATE.search(line)
        rec = last.get(m.group(1)) if m else None
        at = _clock(line)
        if rec is not None and rec["how"] == "standing" and at is not None \
                and at - rec["promoted_at"] < PROMOTED_AFTER:   # an add's key: undone
            rec["how"] = rec.pop("initiated")
            del rec["promoted_at"]
        if m:
            rec = {"tunnel_id": m.group(1), "how": "unknown", "at": at}
            pending[m.group(1)] = last[m.group(1)] = rec
            out.append(rec)
            continue
        m = re.search(r"initiating IKE_SA (\S+)\[\d+\]", line)
        if m and m.group(1) in pending:
            pending.pop(m.group(1))["how"] = "ike_sa_init"
            continue
        if "generating CREATE_CHILD_SA request" in line and "REKEY_SA" not in line:
            sa = re.search(r"<([^|>]+)\|\d+>", line)
            if sa and sa.group(1) in pending:
                pending.pop(sa.group(1))["how"] = "create_child_sa"
    return out


def key_loads(log_text: str) -> list[dict[str, Any]]:
    """Each PSK charon loaded (``tunnel_id``, ``at``): an add's, a preparation's, or a
    promotion's (the move onto a CHILD_SA that stood: standing, or still live after a
    quick move back), which loads a key and initiates nothing."""
    out = []
    for line in log_text.splitlines():
        m = _KEY_LOADED.search(line)
        if m:
            out.append({"tunnel_id": m.group(1), "at": _clock(line)})
    return out


def _clock(line: str) -> float | None:
    m = _TS.match(line)
    if not m:
        return None
    h, mi, s, ms = (int(x) for x in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000


def _by_time(moves: list[dict[str, Any]], origins: dict[str, list[dict[str, Any]]],
             keys: dict[str, list[dict[str, Any]]], tunnel_prefix: str) -> list[str]:
    """How each move's new FA brought the tunnel up, from what its log shows between
    the move and the same MN's next move (5 s for the last): an initiation (as it was
    initiated); else a CHILD_SA promoted: ``standing`` when stood up ahead, ``live``
    when an earlier move had initiated it (a move back within the old FA's retire)
    or only a key was loaded; else ``missing``."""
    taken: set[int] = set()
    out = []
    for i, m in enumerate(moves):
        t0, fa = float(m["t_move_wall"]), m["to"]
        t1 = next((float(n["t_move_wall"]) for n in moves[i + 1:]
                   if n.get("mn") == m.get("mn")), t0 + 5.0)
        mine = [o for o in origins.get(fa, []) if o["tunnel_id"].startswith(tunnel_prefix)]
        inited = [o for o in mine if o.get("at") is not None and t0 <= o["at"] < t1]
        promoted = [o for o in mine if o.get("promoted_at") is not None
                    and t0 <= o["promoted_at"] < t1]
        keyed = [k for k in keys.get(fa, []) if k["tunnel_id"].startswith(tunnel_prefix)
                 and k.get("at") is not None and t0 <= k["at"] < t1]
        if inited:
            taken.add(id(inited[0]))
            out.append(inited[0].get("initiated", inited[0]["how"]))
        elif promoted:
            out.append("live" if id(promoted[0]) in taken else "standing")
        else:
            out.append("live" if keyed else "missing")
    return out


def prepared_check(moves: list[dict[str, Any]], origins: dict[str, list[dict[str, Any]]],
                   tunnel_prefix: str, required: float = SEAMLESS_REQUIRED,
                   keys: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """How many of the mechanism's moves brought their new FA's tunnel up on a prepared
    IKE_SA.  ``moves``: the mechanism MN's moves (``to``: the new FA); ``origins``:
    ``child_sa_origins`` per gateway; ``tunnel_prefix``: its HA<->FA tunnels' ids
    (``alice_home.example/ha-``).  The k-th move to an FA is that FA's k-th initiation
    of such a tunnel after the first registration's (fa1's first).  With the moves'
    ``t_move_wall`` (seconds of the day, as charon's log) and ``keys`` (``key_loads``
    per gateway) each move is matched by time instead (``_by_time``)."""
    if moves and keys is not None and all(m.get("t_move_wall") is not None for m in moves):
        per_move = _by_time(moves, origins, keys, tunnel_prefix)
    else:
        per_move = []
        seen: dict[str, int] = {"fa1": 1}
        for m in moves:
            fa = m["to"]
            mine = [o for o in origins.get(fa, [])
                    if o["tunnel_id"].startswith(tunnel_prefix)]
            k = seen.get(fa, 0)
            seen[fa] = k + 1
            per_move.append(mine[k]["how"] if k < len(mine) else "missing")
    used = fresh = missing = standing = live = 0
    for how in per_move:
        if how in ("create_child_sa", "standing", "live"):
            used += 1
            standing += how == "standing"
            live += how == "live"
        elif how == "ike_sa_init":
            fresh += 1
        else:
            missing += 1
    n = len(moves)
    share = used / n if n else 0.0
    return {"moves": n, "on_prepared_ike_sa": used, "standing_child_sa": standing,
            "live_child_sa": live, "new_ike_sa": fresh,
            "not_found": missing, "share": round(share, 3), "required": required,
            "valid": n > 0 and share >= required, "per_move": per_move}


# ------------------------------------------------------------------ the figures


def per_mn(moves: list[dict[str, Any]]) -> dict[str, Any]:
    """One MN's moves: per direction gap, gap minus link move, lost (n, median, p95,
    max ...), the link move, and the walk's medians."""
    done = [m for m in moves if m.get("registered") and isinstance(m.get("gap_ms"), dict)]
    s: dict[str, Any] = {"moves": len(moves), "registered": len(done)}
    for d, _ in DIRECTIONS:
        s[f"gap_ms_{d}"] = summary([m["gap_ms"][d] for m in done], 1)
        s[f"lost_{d}"] = summary([m["lost"][d] for m in done], 1)
        for key in ("protocol_added_ms", "lost_beyond_link_move"):
            s[f"{key}_{d}"] = summary(
                [m["walk"][key][d] for m in done
                 if (m.get("walk") or {}).get(key, {}).get(d) is not None], 1)
    s["link_move_ms"] = summary([m["phases_ms"]["link_move (emulation)"] for m in done
                                 if "link_move (emulation)" in m.get("phases_ms", {})], 1)
    s["zero_lost_both_ways"] = sum(1 for m in done
                                   if all(m["lost"][d] == 0 for d, _ in DIRECTIONS))
    s.update(summarise_walks(done))
    return s


def whole_run(probes: list[dict[str, Any]] | None, mn: str,
              moves: list[dict[str, Any]]) -> dict[str, int] | None:
    """``mn``'s probe over the whole run (while both its ends ran): lost per direction,
    and of them those no move's window counted (``lost_outside_moves``: e.g. a blip on
    the live path seconds after a move, when a preparation stood a CHILD_SA up)."""
    probe = next((p for p in probes or () if p.get("mn") == mn), None)
    if probe is None:
        return None
    out: dict[str, int] = {}
    for d, _ in DIRECTIONS:
        if probe.get(f"{d}_lost") is None:
            continue
        counted = sum(int(m["lost"][d]) for m in moves if isinstance(m.get("lost"), dict))
        out[f"lost_{d}"] = int(probe[f"{d}_lost"])
        out[f"lost_outside_moves_{d}"] = int(probe[f"{d}_lost"]) - counted
    return out


def ratios(on: dict[str, Any], off: dict[str, Any]) -> dict[str, float | None]:
    """mechanism / baseline for each median (None where the baseline's is 0)."""
    out: dict[str, float | None] = {}
    for key in ("gap_ms", "protocol_added_ms", "lost", "lost_beyond_link_move"):
        for d, _ in DIRECTIONS:
            if f"{key}_{d}" not in on or f"{key}_{d}" not in off:
                continue        # a result file of before the split
            a, b = on[f"{key}_{d}"]["median"], off[f"{key}_{d}"]["median"]
            out[f"{key}_{d}"] = (round(a / b, 3) if a is not None and b not in (None, 0)
                                 else None)
    return out


def print_paired(kind: str, res: dict[str, Any]) -> None:
    on, off, ratio = res["mechanism"], res["baseline"], res["ratio"]
    print(f"\n== {kind}: mechanism (mn1) {on['registered']}/{on['moves']}, baseline "
          f"(mn2) {off['registered']}/{off['moves']} moves re-registered")
    rows = []
    for key, what in (("gap_ms", "gap ms"), ("protocol_added_ms", "gap - link move ms"),
                      ("lost", "lost pkts"),
                      ("lost_beyond_link_move", "lost beyond link move")):
        for d, arrow in DIRECTIONS:
            if f"{key}_{d}" not in on or f"{key}_{d}" not in off:
                continue
            a, b = on[f"{key}_{d}"], off[f"{key}_{d}"]
            rows.append([f"{what} {arrow}", a["median"], a["p95"], a["max"],
                         b["median"], b["p95"], b["max"], ratio[f"{key}_{d}"]])
    print(table(["", "on median", "on p95", "on max", "off median", "off p95", "off max",
                 "on/off"], rows, numbers=True))
    print(f"link move (emulation) median: on {on['link_move_ms']['median']} ms, "
          f"off {off['link_move_ms']['median']} ms; moves with 0 lost both ways: "
          f"on {on['zero_lost_both_ways']}, off {off['zero_lost_both_ways']}")
    whole = [res.get("whole_run", {}).get(who) or {} for who in ("mechanism", "baseline")]
    print("whole run, probe lost (of it outside every move's window): "
          + "; ".join(f"{arrow} on {whole[0].get(f'lost_{d}')} "
                      f"({whole[0].get(f'lost_outside_moves_{d}')}), off "
                      f"{whole[1].get(f'lost_{d}')} ({whole[1].get(f'lost_outside_moves_{d}')})"
                      for d, arrow in DIRECTIONS))
    ready = [(s.get("rrq_at_fa_to_tunnel_up_ms") or {}).get("median") for s in (on, off)]
    print(f"RRQ at the new FA -> its tunnel up, median: on {ready[0]} ms, off {ready[1]} ms")
    first = {(s, d): ((x.get(f"tunnel_up_to_first_packet_ms_{d}") or {}).get("median"))
             for s, x in (("on", on), ("off", off)) for d, _ in DIRECTIONS}
    print(f"after the new FA's tunnel up, median: HA's rekey done on "
          f"{(on.get('tunnel_up_to_ha_rekey_done_ms') or {}).get('median')} ms; first "
          f"packet MN->CN on {first[('on', 'mn_to_cn')]} / off {first[('off', 'mn_to_cn')]}"
          f" ms, CN->MN on {first[('on', 'cn_to_mn')]} / off {first[('off', 'cn_to_mn')]} ms")
    chk = res.get("prepared_check")
    if chk:
        print(f"prepared IKE_SA used (CREATE_CHILD_SA at the new FA): "
              f"{chk['on_prepared_ike_sa']}/{chk['moves']} moves ({chk['share']:.0%}; "
              f"of them promoted standing CHILD_SAs {chk.get('standing_child_sa', 0)}, "
              f"live ones (kept standing from an earlier stay, or a quick move back) "
              f"{chk.get('live_child_sa', 0)}; "
              f"new IKE_SA {chk['new_ike_sa']}, not found {chk['not_found']}); "
              f"baseline's: {res.get('baseline_prepared', {}).get('on_prepared_ike_sa')}")
        if not chk["valid"]:
            print(f"INVALID: fewer than {chk['required']:.0%} of the moves used the "
                  f"prepared IKE_SA: this run measured the fallback")


def run_paired(kind: str, moves: int, settle: float, keep_dir: bool,
               link_model: str = "carrier") -> dict[str, Any]:
    from controller.adapters.private_files import private_run_dir
    from mininet_scripts.scenario import ScenarioRun

    spec = paired_spec(kind, moves, settle)
    run_dir = private_run_dir("mipvpn-bench-paired-")   # 0700: keys, DB, token
    run = ScenarioRun(spec, run_dir, "127.0.0.1:8080", 6653, link_model=link_model)
    res: dict[str, Any] = {"kind": kind, "topology": TOPOLOGY, "link_model": link_model,
                           "between": list(KINDS[kind]["between"]),
                           "profile_on": KINDS[kind]["on"], "profile_off": KINDS[kind]["off"]}
    try:
        t0 = time.monotonic()
        out = run.run()
        res["wall_s"] = round(time.monotonic() - t0, 1)
        res["scenario_ok"], res["failed"] = out.get("ok"), out.get("failed")
        res["registration_ms"] = out.get("registration_ms")
        res["probes"] = out.get("probes")
        res["moves"] = out.get("moves", [])
        logs = {gw: (run_dir / "gw" / gw / "charon.log").read_text(errors="replace")
                for gw in ("fa1", "fa2", "fa3") if (run_dir / "gw" / gw / "charon.log").exists()}
        origins = {gw: child_sa_origins(text) for gw, text in logs.items()}
        res["child_sa_origins"] = origins
        keys = {gw: key_loads(text) for gw, text in logs.items()}
    finally:
        run.close()
        if keep_dir:
            print(f"run directory kept: {run_dir}", flush=True)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    mine = [m for m in res["moves"] if m["mn"] == MECHANISM]
    base = [m for m in res["moves"] if m["mn"] == BASELINE]
    res["mechanism"], res["baseline"] = per_mn(mine), per_mn(base)
    res["ratio"] = ratios(res["mechanism"], res["baseline"])
    res["whole_run"] = {"mechanism": whole_run(res["probes"], MECHANISM, mine),
                        "baseline": whole_run(res["probes"], BASELINE, base)}
    if KINDS[kind].get("check_prepared"):
        res["prepared_check"] = prepared_check(mine, origins, "alice_home.example/ha-",
                                               keys=keys)
        res["baseline_prepared"] = prepared_check(base, origins, "bob_home.example/ha-",
                                                  keys=keys)
        res["valid"] = res["prepared_check"]["valid"]
    else:
        res["valid"] = True
    return res


def plot(res: dict[str, Any], path: Path) -> None:
    from mininet_scripts.plots import paired_moves
    paired_moves(res, path)
    print(f"plot: {path}", flush=True)


def git_describe() -> str:
    import subprocess
    try:
        return subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser("handover_paired", __doc__)
    ap.add_argument("--paired", required=True, choices=sorted(KINDS), metavar="KIND",
                    help=f"the move kind: {', '.join(KINDS)}")
    ap.add_argument("--moves", type=int, default=20, help="moves per MN")
    ap.add_argument("--settle", type=float, default=1.5, help="seconds after each move")
    ap.add_argument("--keep-dir", action="store_true")
    ap.add_argument("--link-model", choices=LINK_MODELS, default="carrier",
                    help="how the emulation moves a link: carrier (cell links made "
                         "ahead, a move flips carriers) or replug (del-port + add-port)")
    args = parse_bench_args(ap, argv)
    if os.geteuid() != 0:
        print("bench.handover_paired needs root (Mininet, Open vSwitch, strongSwan)",
              file=sys.stderr)
        return 2
    command = command_line("handover_paired", argv)
    code = reexec_in_private_netns([sys.executable, "-m", "bench.handover_paired",
                                    *(argv if argv is not None else sys.argv[1:])])
    if code is not None:
        return code
    m = print_machine()
    print(f"handover, paired ({args.paired}): {args.moves} moves each, mn1 with "
          f"{KINDS[args.paired]['on']} against mn2 with {KINDS[args.paired]['off']}, "
          f"link model {args.link_model}", flush=True)
    r = run_paired(args.paired, args.moves, args.settle, args.keep_dir, args.link_model)
    print_paired(args.paired, r)
    res = {"benchmark": "handover-paired", "machine": m, "code": git_describe(),
           "settle_s": args.settle, "moves_per_mn": args.moves, "command": command, **r}
    save_results(f"handover-paired-{args.paired}", args.json, res,
                 None if args.no_plot else plot)
    return 0 if r["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
