"""README's Numbers table is what ``python -m bench.report`` makes of bench/results
(issue 13), and every result file says what code, machine and load it was measured at."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from bench import common, report

RESULTS = report.RESULTS


def test_readme_numbers_table_is_the_generated_one() -> None:
    block = report.readme_block(report.README.read_text())
    assert block is not None, "README.md has no bench.report block"
    assert block == report.generate(), (
        "README's Numbers table differs from the committed results: "
        "run `python -m bench.report --write` (after re-running the benchmark)")


def test_every_tabled_result_names_code_machine_and_load() -> None:
    files = list(report.result_files())
    assert {f.stem.split("-")[0] for f in files} >= {"registration", "scale", "handover",
                                                     "dataplane", "overload", "leak"}
    for path in files:
        m = json.loads(path.read_text()).get("machine") or {}
        for key in ("code", "cpu", "cores", "loadavg", "time"):
            assert m.get(key) not in (None, "", []), f"{path.name}: machine.{key} missing"


def test_a_changed_result_changes_the_table(tmp_path: Path) -> None:
    """The README test can fail: a figure that moves in the JSON moves in the table."""
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results, ignore=shutil.ignore_patterns("*.png"))
    before = report.generate(results)
    data = json.loads((results / "overload.json").read_text())
    data["consistency"].update(consistent=False, bindings=1665, visitors=1617,
                               problem_count=49)
    (results / "overload.json").write_text(json.dumps(data))
    after = report.generate(results)
    assert after != before
    row = next(line for line in after.splitlines() if line.startswith("| 10×"))
    assert "1,665 HA bindings, 1,617 FA visitors, 49 problems" in row
    assert "**not met**" in row


def test_write_replaces_only_the_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n\n{report.BEGIN}\n| old |\n{report.END}\n\nafter\n")
    assert report.write(readme) is True
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert report.readme_block(text) == report.generate()
    assert report.write(readme) is False


def test_save_results_records_code_machine_load_and_command(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.setattr(sys, "argv", ["bench/overload.py", "--duration", "5"])
    out = tmp_path / "x.json"
    common.save_results("overload", str(out), {"benchmark": "overload", "n": 1}, None)
    res = json.loads(out.read_text())
    assert res["n"] == 1
    assert res["command"] == "python -m bench.overload --duration 5"
    for key in ("code", "cpu", "cores", "loadavg", "time"):
        assert key in res["machine"]
    assert len(res["load_after"]) == 3
    # what a benchmark measured before its run is kept, missing keys added
    m = {"loadavg": [9.0, 9.0, 9.0], "cores": 2}
    kept = common.provenance("scale", {"machine": m})
    assert kept["machine"]["loadavg"] == [9.0, 9.0, 9.0] and "code" in kept["machine"]


def test_command_line_of_mipvpn_bench(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/usr/bin/mipvpn", "bench", "scale", "--moves", "10"])
    assert common.command_line("scale") == "python -m bench.scale --moves 10"


def test_readme_reliability_figures_are_the_generated_ones() -> None:
    """README's measured Reliability rows (fuzz rates, cost of persisting) come from
    bench/results/{fuzz_codecs,persistence}.json, with code, machine and load."""
    text = report.README.read_text()
    block = report.readme_block(text, report.RELIABILITY_BEGIN, report.RELIABILITY_END)
    assert block is not None, "README.md has no bench.report (reliability) block"
    assert block == report.generate_reliability(), (
        "README's Reliability figures differ from the committed results: "
        "run `python -m bench.report --write`")
    for name in report.RELIABILITY_FILES:
        assert f"`{name}.json`; code `" in block, f"{name}.json not tabled"
    assert report.differing() == []


def test_a_fuzz_failure_shows_in_the_reliability_table(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    for name in report.RELIABILITY_FILES:
        shutil.copy(RESULTS / f"{name}.json", results)
    before = report.generate_reliability(results)
    data = json.loads((results / "fuzz_codecs.json").read_text())
    data["reports"][0]["unexpected"] = {"IndexError: planted": 3}
    (results / "fuzz_codecs.json").write_text(json.dumps(data))
    after = report.generate_reliability(results)
    assert after != before
    row = next(line for line in after.splitlines() if "Mobile IPv4" in line)
    assert "**3 unexpected exceptions**" in row and "**not met**" in row
    readme = tmp_path / "README.md"
    readme.write_text(f"{report.BEGIN}\n{report.END}\n\n{report.RELIABILITY_BEGIN}\n| old |\n"
                      f"{report.RELIABILITY_END}\n")
    assert report.write(readme, results) is True
    assert report.differing(readme, results) == []
    assert "**3 unexpected exceptions**" in readme.read_text()


def test_handover_walk_row_and_its_verdict() -> None:
    """Issue 14: a run with walks gets the 'down to the first packet' row; its verdict
    is the issue's protocol-added bound (median <= 5 ms and p95 <= 10 ms each way)."""
    def s(median: float, p95: float) -> dict[str, float]:
        return {"median": median, "p95": p95, "max": p95}
    summary = {"moves": 2, "walk_median_ms": {"move_start": 0.0},
               "moves_rrq_retransmitted": 1,
               **{f"{k}_{d}": s(4.0, 9.0) for k in ("first_packet_ms",
                                                   "tunnel_up_to_first_packet_ms",
                                                   "protocol_added_ms")
                  for d in ("mn_to_cn", "cn_to_mn")}}
    rows = report.handover_rows({"runs": [{"summary": summary, "kind": "intra"}]})
    what, figure, target = rows[-1]
    assert what.startswith("… down to the first packet")
    assert "moves whose first RRQ was lost: 1" in figure and "**not met**" not in target
    summary["protocol_added_ms_cn_to_mn"] = s(4.0, 11.0)
    assert "**not met**" in report.handover_rows(
        {"runs": [{"summary": summary, "kind": "intra"}]})[-1][2]
    del summary["walk_median_ms"]
    assert not any(r[0].startswith("… down to") for r in report.handover_rows(
        {"runs": [{"summary": summary, "kind": "intra"}]}))


def test_registration_cpu_row_and_its_verdict() -> None:
    """Issue 15's figure: the server's CPU per full registration at 8 outstanding (the
    measure a noisy machine does not move as it moves rates), against <= 500 us, with
    the load generator's own and the build that ran."""
    res = {"users": 2000, "server_build": {"mode": "compiled", "modules": 43},
           "saturation": [{"window": 1, "rate": 300.0, "server_cpu_us_per_reg": 1500.0,
                           "loadgen_cpu_us_per_reg": 60.0},
                          {"window": 8, "rate": 620.0, "server_cpu_us_per_reg": 1019.4,
                           "loadgen_cpu_us_per_reg": 42.9}]}
    row = next(r for r in report.registration_rows(res) if r[0].startswith("server CPU"))
    assert "**1,019 µs**" in row[1] and "load generator 42.9 µs" in row[1]
    assert "compiled build (43 modules)" in row[1]
    assert row[2] == "≤ 500 µs: **not met**"
    res["saturation"][1]["server_cpu_us_per_reg"] = 480.0
    assert report.registration_rows(res)[1][2] == "≤ 500 µs: met"
    del res["saturation"][1]           # no window 8: no row
    assert not any(r[0].startswith("server CPU") for r in report.registration_rows(res))


def test_registration_latency_row_counts_accepted_registrations_only() -> None:
    """Admission control answers the excess at once with 66: those answers are not
    registrations.  The row gives the accepted rate and the accepted ones' latency,
    says how many were refused, and a load the benchmark skipped is said so."""
    def lat(p50: float, p99: float) -> dict[str, float]:
        return {"median": p50, "p99": p99}
    res = {"open_loop": [
        {"offered": 100.0, "achieved_rate": 100.0, "accepted_rate": 100.0,
         "codes": {"0": 300}, "latency_ms": lat(6.0, 12.0),
         "latency_accepted_ms": lat(6.0, 12.0)},
        {"offered": 1000.0, "achieved_rate": 1000.0, "accepted_rate": 459.0,
         "codes": {"0": 1378, "66": 1622}, "latency_ms": lat(62.5, 450.0),
         "latency_accepted_ms": lat(300.0, 460.0)},
        {"offered": 2000.0, "skipped": "above saturation"}]}
    row = next(r for r in report.registration_rows(res) if r[0].startswith("registration lat"))
    assert "6 / 12 ms at 100/s offered" in row[1]
    assert "300 / 460 ms at 1,000/s offered (459/s accepted, 1,622 refused: 66)" in row[1]
    assert "2,000/s offered: skipped (above saturation)" in row[1]
    assert "**not met**" in row[2]
    res["open_loop"][1].update(accepted_rate=990.0, codes={"0": 2970},
                               latency_accepted_ms=lat(3.0, 9.0))
    assert report.registration_rows(res)[0][2] == "p99 ≤ 10 ms at 1,000/s: met"
