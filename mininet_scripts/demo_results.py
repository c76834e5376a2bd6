"""The demo's numbers: per move the data-plane gap and loss (the probes) and where
the time went (the controller's handover records and the MN's events), down to the
first packet through in each direction (``move_walk``, issue 14); printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.core.handover import breakdown
from mininet_scripts.demo_io import _last_before

PROBE_RATE = 1000  # packets/s each way


def results(topology: str, moves: list[dict[str, Any]], registration_ms: float,
            events: list[dict[str, Any]], mn_out: Path, cn_out: Path,
            handovers: list[dict[str, Any]], tunnels: dict[str, Any],
            bindings: list[dict[str, Any]]) -> dict[str, Any]:
    from mininet_scripts.probe import analyse, load_result, steady_loss
    mn_probe, cn_probe = load_result(str(mn_out)), load_result(str(cn_out))
    ev = [(f"move{i}", int(m["t_move"] * 1e9)) for i, m in enumerate(moves)]
    spans = link_move_spans(moves)
    to_cn = analyse(cn_probe["received"], mn_probe["sent"], ev,   # what CN got
                    sender=mn_probe, receiver=cn_probe, spans=spans)
    to_mn = analyse(mn_probe["received"], cn_probe["sent"], ev,   # what MN got
                    sender=cn_probe, receiver=mn_probe, spans=spans)
    moved = [h for h in handovers if h.get("previous_fa")]
    out_moves = []
    for i, move in enumerate(moves):
        rec = moved[i] if i < len(moved) else {}
        marks = rec.get("marks", {})
        reg = move["registered"]
        rrq = _last_before(events, "rrq_sent", reg["t"])
        phases = {"link_move (emulation)": move["link_move_ms"]}
        if rrq is not None:
            phases["movement_detection"] = round((rrq["t"] - move["t_move"]) * 1000
                                                 - move["link_move_ms"], 3)
            if "rrq_at_fa" in marks:
                phases["rrq_to_fa"] = round((marks["rrq_at_fa"] - rrq["t"]) * 1000, 3)
        phases.update(rec.get("phases_ms", {}))
        if "rrp_sent" in marks:
            phases["rrp_to_mn"] = round((reg["t"] - marks["rrp_sent"]) * 1000, 3)
        if rrq is not None:
            phases["signalling_total"] = round((reg["t"] - rrq["t"]) * 1000, 3)
        w_cn, w_mn = to_cn.windows[i], to_mn.windows[i]
        out_moves.append({
            "from": move["from"], "to": move["to"], "kind": rec.get("kind", "?"),
            "t_move_ns": int(move["t_move"] * 1e9),  # CLOCK_MONOTONIC, as the probes
            "gap_ms": {"mn_to_cn": round(w_cn.gap_ms, 3), "cn_to_mn": round(w_mn.gap_ms, 3)},
            "lost": {"mn_to_cn": w_cn.lost, "cn_to_mn": w_mn.lost},
            "phases_ms": phases,
            "walk": move_walk(move, marks, events, reg, w_cn, w_mn)})
    first = next((h for h in handovers if not h.get("previous_fa")), {})
    return {
        "topology": topology,
        "registration_ms": round(registration_ms, 3),
        "registration_phases_ms": first.get("phases_ms", {}),
        "moves": out_moves,
        # whole-run loss, counted while both probe ends were running
        "probe": {"rate_pps": PROBE_RATE,
                  "mn_to_cn": dict(zip(("sent", "lost"),
                                       steady_loss(cn_probe, mn_probe))),
                  "cn_to_mn": dict(zip(("sent", "lost"),
                                       steady_loss(mn_probe, cn_probe))),
                  "latency_p50_ms": {"mn_to_cn": to_cn.latency_p50_ms,
                                     "cn_to_mn": to_mn.latency_p50_ms}},
        "bindings": bindings,
        "tunnels": tunnels.get("gateways", {}),
    }


def link_move_spans(moves: list[dict[str, Any]], prefix: str = "move"
                    ) -> dict[str, tuple[int, int]]:
    """Each move's emulated link move on CLOCK_MONOTONIC ns (the probes' ``spans``):
    from its start to ovs-vswitchd having applied it.  ``moves`` in the order of the
    probe's events, which are named ``prefix`` + index."""
    return {f"{prefix}{i}": (int(m["t_move"] * 1e9),
                             int(m["t_move"] * 1e9 + m["link_move_ms"] * 1e6))
            for i, m in enumerate(moves)}


def move_walk(move: dict[str, Any], marks: dict[str, float],
              events: list[dict[str, Any]], registered: dict[str, Any] | None,
              w_cn: Any, w_mn: Any) -> dict[str, Any]:
    """One move down to the first packet through in each direction (issue 14), all on
    CLOCK_MONOTONIC: the emulation's link move (``move_start``, ``link_moved``), the
    controller's marks (its handover record: port-status, RRQ at FA, AAA, HA, flows,
    tunnel, RRP), the MN's events (``events``: its RRQs since the move, the first
    and the one answered, and ``registered``) and, per direction, the last packet
    received before the move's gap and the first one after it (the probes' window:
    ``w_cn`` what the CN received, ``w_mn`` what the MN received).

    Gives ``breakdown``'s ``timeline_ms`` (ms since the move started: the last packets
    before the gap may be negative) and ``segments``, ``rrq_tries`` (more than one:
    the first Registration Request was lost and the MN's retransmission timer, 1 s,
    is in the gap) and per direction ``first_packet_ms`` (since the move started),
    ``tunnel_up_to_first_packet_ms`` (what nobody had broken down: after the FA's
    tunnel is up) and ``protocol_added_ms`` (the gap minus the emulation's link move:
    the issue's figure); the same for the loss: ``lost_in_link_move`` (sent during the
    emulated link move: an uplink frame then has no switch to go to) and
    ``lost_beyond_link_move`` (the rest of the window's loss)."""
    t0 = float(move["t_move"])
    points: dict[str, float | None] = {"move_start": t0,
                                       "link_moved": t0 + move["link_move_ms"] / 1000.0}
    points.update({k: float(v) for k, v in marks.items()})
    until = float(registered["t"]) if registered else float("inf")
    rrqs = [float(e["t"]) for e in events
            if e["event"] == "rrq_sent" and t0 <= float(e["t"]) <= until]
    if len(rrqs) > 1:
        points["mn_first_rrq_sent"] = rrqs[0]
    points["mn_rrq_sent"] = rrqs[-1] if rrqs else None
    points["mn_registered"] = float(registered["t"]) if registered else None
    first: dict[str, float | None] = {}
    for d, w in (("mn_to_cn", w_cn), ("cn_to_mn", w_mn)):
        last_ns = getattr(w, "gap_start_ns", None)
        first_ns = getattr(w, "gap_end_ns", None)
        points[f"last_packet_{d}"] = last_ns / 1e9 if last_ns is not None else None
        points[f"first_packet_{d}"] = first_ns / 1e9 if first_ns is not None else None
        first[d] = points[f"first_packet_{d}"]
    walk = breakdown(points, origin="move_start")

    def ms(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round((b - a) * 1000.0, 3)

    tunnel_up = marks.get("tunnel_up")
    walk["rrq_tries"] = len(rrqs)
    walk["first_packet_ms"] = {d: ms(t0, t) for d, t in first.items()}
    walk["tunnel_up_to_first_packet_ms"] = {d: ms(tunnel_up, t) for d, t in first.items()}
    walk["protocol_added_ms"] = {
        d: round(w.gap_ms - move["link_move_ms"], 3)
        for d, w in (("mn_to_cn", w_cn), ("cn_to_mn", w_mn))}
    in_move = {d: int(getattr(w, "lost_in_span", 0))
               for d, w in (("mn_to_cn", w_cn), ("cn_to_mn", w_mn))}
    walk["lost_in_link_move"] = in_move
    walk["lost_beyond_link_move"] = {
        d: int(w.lost) - in_move[d] for d, w in (("mn_to_cn", w_cn), ("cn_to_mn", w_mn))}
    return walk


def walk_lines(walk: dict[str, Any], indent: str = "    ") -> list[str]:
    """The walk as text: each point, its ms since the move started and since the point
    before it (where the time went)."""
    out = [f"{indent}walk (ms since the move started; +ms since the point before):"]
    prev: float | None = None
    for name, at in walk.get("timeline_ms", {}).items():
        step = f"{'+' + format(at - prev, '.2f'):>8}" if prev is not None else " " * 8
        out.append(f"{indent}  {at:8.2f} {step}  {name}")
        prev = at
    if walk.get("rrq_tries", 1) > 1:
        out.append(f"{indent}the MN sent {walk['rrq_tries']} Registration Requests: the "
                   f"first was lost (its retransmission timer is in the gap)")
    for d, label in (("mn_to_cn", "MN->CN"), ("cn_to_mn", "CN->MN")):
        first = walk.get("first_packet_ms", {}).get(d)
        after = walk.get("tunnel_up_to_first_packet_ms", {}).get(d)
        added = walk.get("protocol_added_ms", {}).get(d)
        out.append(f"{indent}first packet {label}: {_num(first)} ms after the move started, "
                   f"{_num(after)} ms after tunnel_up; gap minus link move {_num(added)} ms")
    for d, label in (("mn_to_cn", "MN->CN"), ("cn_to_mn", "CN->MN")):
        in_move = walk.get("lost_in_link_move", {}).get(d)
        beyond = walk.get("lost_beyond_link_move", {}).get(d)
        if in_move is not None and beyond is not None:
            out.append(f"{indent}lost {label}: {in_move + beyond}, of which {in_move} sent "
                       f"during the emulated link move, {beyond} beyond it")
    return out


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def print_results(res: dict[str, Any]) -> None:
    print()
    if "baseline" in res:
        print(f"{res['mn']}, seamless handover and smooth handoff on:")
    print(f"registration: {res['registration_ms']:.1f} ms (RRQ sent -> RRP at the MN)")
    for name, ms in res.get("registration_phases_ms", {}).items():
        print(f"    {name:28s} {ms:8.2f} ms")
    for m in res["moves"]:
        print(f"move {m['from']} -> {m['to']} ({m['kind']}):")
        print(f"    data-plane gap   MN->CN {m['gap_ms']['mn_to_cn']:8.1f} ms   "
              f"CN->MN {m['gap_ms']['cn_to_mn']:8.1f} ms")
        print(f"    packets lost     MN->CN {m['lost']['mn_to_cn']:8d}      "
              f"CN->MN {m['lost']['cn_to_mn']:8d}")
        for name, ms in m["phases_ms"].items():
            print(f"    {name:28s} {ms:8.2f} ms")
        if m.get("walk"):
            for line in walk_lines(m["walk"]):
                print(line)
    p = res["probe"]
    print(f"probe: {p['rate_pps']} pkt/s each way; lost MN->CN {p['mn_to_cn']['lost']}/"
          f"{p['mn_to_cn']['sent']}, CN->MN {p['cn_to_mn']['lost']}/{p['cn_to_mn']['sent']}")
    if "comparison" in res:
        from mininet_scripts.demo_compare import comparison_lines
        print()
        for line in comparison_lines(res["comparison"], res["mn"], res["baseline"]["mn"]):
            print(line)
