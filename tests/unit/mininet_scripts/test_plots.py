"""mininet_scripts/plots.py on synthetic probe data: a 1,000 pkt/s stream each way with
a gap after the move; the PNGs are written, and the gap the plot shades is the one
``probe.analyse`` measures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mininet_scripts import plots
from mininet_scripts.probe import analyse

S = 10**12          # some CLOCK_MONOTONIC ns
T_MOVE = S + 2_500_000_000


def probe(gap_from_ms: float, gap_to_ms: float, latency_ns: int) -> dict[str, Any]:
    """What one end received: 5 s at 1,000 pkt/s, nothing in [move+from, move+to)."""
    rows = []
    for seq in range(5000):
        t = S + seq * 1_000_000
        if T_MOVE + gap_from_ms * 1e6 <= t < T_MOVE + gap_to_ms * 1e6:
            continue
        rows.append([seq, t, t + latency_ns])
    return {"start_ns": S, "end_ns": S + 5 * 10**9, "sent": 5000, "received": rows}


MN = probe(20, 95, 400_000)   # CN -> MN
CN = probe(15, 80, 300_000)   # MN -> CN
RESULTS = {
    "topology": "default", "registration_ms": 25.3,
    "registration_phases_ms": {"aaa_round_trip": 9.1, "fa_tunnel_up": 6.9,
                               "controller_total": 21.5},
    "moves": [{"from": "fa1", "to": "fa2", "kind": "intra-domain", "t_move_ns": T_MOVE,
               "gap_ms": {"mn_to_cn": 65.0, "cn_to_mn": 75.0},
               "lost": {"mn_to_cn": 64, "cn_to_mn": 74},
               "phases_ms": {"link_move (emulation)": 21.0, "aaa_round_trip": 4.0,
                             "controller_total": 19.0, "signalling_total": 21.4}}],
    "probe": {"rate_pps": 1000}}


def _png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, path


def test_demo_plots_from_files(tmp_path: Path) -> None:
    (tmp_path / "probe-mn.json").write_text(json.dumps(MN))
    (tmp_path / "probe-cn.json").write_text(json.dumps(CN))
    written = plots.demo_plots(RESULTS, tmp_path / "probe-mn.json", tmp_path / "probe-cn.json",
                               tmp_path / "out")
    assert [p.name for p in written] == ["probe-timeline.png", "handover-phases.png"]
    for p in written:
        _png(p)


def test_shaded_gap_is_the_measured_gap() -> None:
    import numpy as np
    recv = np.asarray([r[2] for r in CN["received"]], dtype=np.int64)
    g = plots._gap_around(recv, T_MOVE)
    assert g is not None
    measured = analyse(CN["received"], 5000, [("move0", T_MOVE)]).windows[0]
    assert (g[0], g[1]) == (measured.gap_start_ns, measured.gap_end_ns)
    assert (g[1] - g[0]) / 1e6 == measured.gap_ms == 66.0  # 65 missing + one interval


def test_without_move_time_marks_the_largest_gap(tmp_path: Path) -> None:
    moves = [{k: v for k, v in RESULTS["moves"][0].items() if k != "t_move_ns"}]
    _png(plots.probe_timeline(MN, CN, moves, tmp_path / "t.png"))
    _png(plots.probe_timeline(MN, CN, [], tmp_path / "no-moves.png"))
    empty = plots.probe_timeline({"received": []}, {"received": []}, [], tmp_path / "e.png")
    assert empty.read_bytes()[:4] == b"\x89PNG"


def test_phase_breakdown_labels() -> None:
    handovers = plots.results_handovers(RESULTS)
    assert [label for label, _ in handovers] == [
        "registration", "move 1: fa1 → fa2 (intra-domain)"]
    assert handovers[0][1]["signalling_total"] == 25.3


def test_plots_command(tmp_path: Path) -> None:
    (tmp_path / "res.json").write_text(json.dumps(RESULTS))
    (tmp_path / "mn.json").write_text(json.dumps(MN))
    (tmp_path / "cn.json").write_text(json.dumps(CN))
    assert plots.main(["--results", str(tmp_path / "res.json"), "--mn-probe",
                       str(tmp_path / "mn.json"), "--cn-probe", str(tmp_path / "cn.json"),
                       "--out", str(tmp_path / "png")]) == 0
    _png(tmp_path / "png" / "probe-timeline.png")
    assert plots.main(["--results", str(tmp_path / "res.json"), "--out",
                       str(tmp_path / "only")]) == 0  # no probe files: phases only
    assert [p.name for p in (tmp_path / "only").iterdir()] == ["handover-phases.png"]


def test_paired_moves_writes_a_png_for_a_paired_result(tmp_path: Path) -> None:
    moves = [{"mn": mn, "gap_ms": {"mn_to_cn": 40.0 + k, "cn_to_mn": 50.0 + k},
              "lost": {"mn_to_cn": 40 + k, "cn_to_mn": 0 if mn == "mn1" else 45}}
             for k in range(4) for mn in ("mn1", "mn2")]
    side = {f"{m}_{d}": {"median": 45.0} for m in ("gap_ms", "lost")
            for d in ("mn_to_cn", "cn_to_mn")}
    res = {"kind": "smooth-handoff", "moves": moves, "mechanism": side, "baseline": side,
           "ratio": {"lost_cn_to_mn": 0.0}, "profile_on": {"smooth_handoff": True},
           "valid": False}
    out = plots.paired_moves(res, tmp_path / "p.png")
    assert out.exists() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
