"""Every benchmark with tiny sizes, so the scripts never rot (figures are not checked).

The Mininet ones (handover, dataplane) are integration tests: root, Open vSwitch,
Mininet, strongSwan; they re-run themselves in a private network namespace."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from bench import BENCHES, run_bench
from bench.common import percentile, summary
from bench.handover import ike_exchanges, move_spec

ROOT = Path(__file__).resolve().parents[3]


def test_percentile_and_summary():
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile(list(range(1, 101)), 99) == 99
    s = summary([1.0, 2.0, 3.0, 4.0])
    assert s["n"] == 4 and s["max"] == 4.0 and s["mean"] == 2.5


def test_scale_tiny(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "scale.json"

    class Args:
        name = "scale"
        args = ["--sizes", "10,30", "--moves", "6", "--json", str(out)]
    assert run_bench(Args()) == 0
    res = json.loads(out.read_text())
    assert [r["bindings"] for r in res["sizes"]] == [10, 30]
    assert all(r["handover_ms"]["n"] == 6 for r in res["sizes"])
    assert res["memory"][0]["bytes_per_binding"] > 0
    assert out.with_suffix(".png").exists()


def test_registration_tiny(tmp_path, monkeypatch):
    """Server process, load generator, references, profile: all of it, briefly.  Enough
    users that the warm-up outlasts the FA's 3 s hold per user (else the open loop finds
    every user busy)."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / "reg.json"
    from bench import registration
    assert registration.main(["--users", "2000", "--loads", "10", "--windows", "1,2",
                              "--duration", "0.5", "--json", str(out), "--no-plot"]) == 0
    res = json.loads(out.read_text())
    assert res["saturation_rate"] > 0
    assert res["open_loop"][0]["completed"] > 0
    assert res["open_loop"][0]["codes"] == {"0": res["open_loop"][0]["completed"]}
    assert res["ref_diameter_node"]["window_1"]["rate"] > 0
    assert res["ref_python_diameter"]["window_1"]["rate"] > 0
    assert res["profile"]["by_tottime"]
    cost = res["cpu_by_component"]["components"]     # issue 15: CPU per component
    assert "Diameter codec" in cost and all(c["us_per_reg"] is not None for c in cost.values())


def test_registration_split_tiny(tmp_path, monkeypatch):
    """``--split``: home and visited roles in two server processes, Diameter between."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / "reg.json"
    from bench import registration
    assert registration.main(["--split", "--users", "2000", "--loads", "10", "--windows",
                              "2", "--duration", "0.5", "--json", str(out), "--no-plot",
                              "--no-reference", "--no-profile"]) == 0
    res = json.loads(out.read_text())
    assert res["split"] and res["saturation_rate"] > 0
    per = res["server_counters"]["per_process"]
    assert len(per) == 2 and per[0]["bindings"] > 0 and per[1]["bindings"] == 0
    assert all(k.startswith(("fa:", "aaaf:")) for k in per[1]["roles"])
    assert res["open_loop"][0]["codes"] == {"0": res["open_loop"][0]["completed"]}


def test_ike_log_parser(tmp_path):
    log = tmp_path / "charon.log"
    log.write_text("""\
09:49:06.202 01[CFG] vici initiate CHILD_SA 'u/ha-fa2'
09:49:06.204 14[IKE] <u/ha-fa2|1> initiating IKE_SA u/ha-fa2[1] to 10.0.0.1
09:49:06.204 14[NET] <u/ha-fa2|1> sending packet: from 10.0.0.12[500] to 10.0.0.1[500] (272 bytes)
09:49:06.216 15[ENC] <u/ha-fa2|1> parsed IKE_SA_INIT response 0 [ SA KE No ]
09:49:06.217 15[ENC] <u/ha-fa2|1> generating IKE_AUTH request 1 [ IDi AUTH SA TSi TSr ]
09:49:06.221 14[ENC] <u/ha-fa2|1> parsed IKE_AUTH response 1 [ IDr AUTH SA TSi TSr ]
09:49:06.222 14[IKE] <u/ha-fa2|1> CHILD_SA u/ha-fa2{1} established with SPIs 1_i 2_o
""")
    (rec,) = ike_exchanges(log)
    assert rec == {"tunnel_id": "u/ha-fa2", "vici_to_init_sent_ms": 2.0,
                   "ike_sa_init_rtt_ms": 12.0, "ike_auth_rtt_ms": 4.0,
                   "vici_to_child_up_ms": 20.0}


def test_handover_spec_overrides_ike():
    spec = move_spec(3, 0.5, "aes128-sha256-x25519", "topology/default.yaml")
    moves = [s["to"] for s in spec["timeline"] if "move" in s]
    assert moves == ["acc2", "acc1", "acc2"]
    profiles = spec["overrides"]["vpn_profiles"]
    assert all(p["security"]["ike"] == "aes128-sha256-x25519" for p in profiles.values())


def test_handover_kinds_set_the_movers_profile_only():
    """--kind presets: route-optimised / smooth-handoff change alice's (mn1's) profile
    only, probe the right correspondent and move to a free port."""
    from bench.handover import KINDS
    for name, kind in KINDS.items():
        spec = move_spec(2, 0.5, None, kind["topology"], kind["between"],
                         **{k: kind[k] for k in ("cn", "port", "profile")})
        assert spec["probes"][0]["cn"] == kind["cn"], name
        assert {s["port"] for s in spec["timeline"] if "move" in s} == {kind["port"]}
        over = spec.get("overrides", {}).get("vpn_profiles", {})
        for nai, prof in over.items():
            changed = {k for k, v in kind["profile"].items() if prof.get(k) == v}
            assert changed == (set(kind["profile"]) if nai == "alice@home.example"
                               else set()), (name, nai)


def test_handover_summary_gives_the_median_walk():
    """Issue 14: the summary's median walk down to the first packet each way, and per
    direction first packet / since tunnel up / gap minus the link move."""
    from bench.handover import summarise_walks

    def walk(k):
        return {"timeline_ms": {"move_start": 0.0, "link_up": 12.0 + k, "tunnel_up": 30.0 + k,
                                "first_packet_cn_to_mn": 40.0 + k},
                "first_packet_ms": {"mn_to_cn": 38.0 + k, "cn_to_mn": 40.0 + k},
                "tunnel_up_to_first_packet_ms": {"mn_to_cn": 8.0, "cn_to_mn": 10.0},
                "protocol_added_ms": {"mn_to_cn": 20.0 + k, "cn_to_mn": None},
                "rrq_tries": 1 + (k == 2)}
    s = summarise_walks([{"walk": walk(k)} for k in range(3)] + [{"registered": True}])
    assert list(s["walk_median_ms"].items()) == [
        ("move_start", 0.0), ("link_up", 13.0), ("tunnel_up", 31.0),
        ("first_packet_cn_to_mn", 41.0)]
    assert s["first_packet_ms_cn_to_mn"]["median"] == 41.0
    assert s["tunnel_up_to_first_packet_ms_mn_to_cn"]["median"] == 8.0
    assert s["protocol_added_ms_mn_to_cn"]["max"] == 22.0
    assert s["protocol_added_ms_cn_to_mn"]["n"] == 0
    assert s["moves_rrq_retransmitted"] == 1


def test_every_benchmark_has_a_main():
    import importlib
    for name in BENCHES:
        assert callable(importlib.import_module(f"bench.{name}").main)


def _mininet_ready() -> bool:
    return os.geteuid() == 0 and all(
        shutil.which(t) for t in ("ovs-vsctl", "mnexec", "iperf3", "unshare")) and Path(
        "/usr/lib/ipsec/charon").exists()


@pytest.mark.integration
@pytest.mark.skipif(not _mininet_ready(), reason="needs root, OVS, Mininet, charon, iperf3")
def test_handover_tiny(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "handover.json"
    from bench import handover
    assert handover.main(["--moves", "2", "--settle", "0.8", "--json", str(out),
                          "--no-plot"]) == 0
    res = json.loads(out.read_text())
    run = res["runs"][0]
    assert run["summary"]["registered"] == 2
    assert run["moves"][0]["gap_ms"]["mn_to_cn"] > 0


@pytest.mark.integration
@pytest.mark.skipif(not _mininet_ready(), reason="needs root, OVS, Mininet, charon, iperf3")
def test_dataplane_tiny(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "dataplane.json"
    from bench import dataplane
    assert dataplane.main(["--seconds", "1", "--repeat", "1", "--moves", "2", "--json",
                           str(out), "--no-plot"]) == 0
    res = json.loads(out.read_text())
    assert res["openflow"]["moves"] == 2
    assert any(v["mbit_s"]["median"] for v in res["throughput"].values())
    # the route-optimised case: mn2's one tunnel runs FA1 <-> CN-GW2, the HA holds none,
    # and it is measured next to its bare fa1 <-> cngw2 baseline
    assert res["ro_tunnels"] == {"fa1": ["bob_home.example/cngw2-fa1"], "ha": [],
                                 "cngw2": ["bob_home.example/cngw2-fa1"]}
    thr = res["throughput"]
    assert thr[dataplane.STEERED_RO]["mbit_s"]["median"]
    assert thr[dataplane.BARE_FA1_CNGW2]["mbit_s"]["median"]
    assert res["ratio_ro_to_bare_fa1_cngw2"] > 0
    assert res["ratio_steered_to_bare_fa1_ha"] > 0


def test_leak_tiny(tmp_path, monkeypatch):
    """Register/expire cycles through the runtime: back at the baseline every cycle."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / "leak.json"

    class Args:
        name = "leak"
        args = ["--cycles", "4", "--warmup", "2", "--mns", "3", "--sample", "2",
                "--json", str(out), "--no-plot"]
    assert run_bench(Args()) == 0
    res = json.loads(out.read_text())
    assert res["registrations"] == 18 and res["codes"] == {"0": 18}
    assert res["cycles_not_at_baseline"] == 0
    reg, base = res["registered_state"], res["baseline"]
    assert reg["ha.bindings"] == 3 and base["ha.bindings"] == 0
    assert reg["aaah.sessions"] == 3 and res["final_state"]["aaah.sessions"] == 0
    assert res["final_state"]["tunnels.ha"] == base["tunnels.ha"]


def test_overload_tiny(tmp_path, monkeypatch):
    """A short overload, then with a slow home AAA at a small cap: the excess is
    refused with 66, the server lives and its state is consistent afterwards."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / "overload.json"
    from bench import overload
    assert overload.main(["--nominal", "50", "--multiple", "4", "--duration", "1",
                          "--nominal-duration", "0.5", "--users", "1500",
                          "--max-pending", "4", "--slow-aaa", "0.5",
                          "--slow-duration", "1", "--json", str(out), "--no-plot"]) == 0
    res = json.loads(out.read_text())
    assert res["server_alive"] and res["consistency"]["consistent"]
    assert [p["phase"] for p in res["phases"]][:2] == ["nominal", "4x"]
    slow = res["phases"][-1]
    assert slow["aaa_delay_s"] == 0.5 and slow["accepted"] > 0
    assert slow["max_in_flight"] <= 2 * 4          # two FAs, capped
    assert slow["fa_admission_denied_total"] >= slow["refused_66"] > 0


def test_handover_spec_sets_the_esp_proposal():
    """--esp: the ESP proposal in every profile (with/without PFS), IKE untouched."""
    spec = move_spec(2, 0.5, None, "topology/two-domains.yaml", esp="aes128gcm16")
    profiles = spec["overrides"]["vpn_profiles"]
    assert len(profiles) >= 3
    assert all(p["security"]["esp"] == "aes128gcm16" for p in profiles.values())
    import yaml
    topo = yaml.safe_load((ROOT / "topology" / "two-domains.yaml").read_text())
    assert {n: p["security"]["ike"] for n, p in profiles.items()} == {
        n: p["security"]["ike"] for n, p in topo["vpn_profiles"].items()}


def test_create_child_exchanges(tmp_path):
    from bench.handover import create_child_exchanges
    log = tmp_path / "charon.log"
    log.write_text(
        "10:00:00.100 03[ENC] <a|3> generating CREATE_CHILD_SA request 2 [ N(REKEY_SA) "
        "SA No KE TSi TSr ]\n"
        "10:00:00.112 05[ENC] <a|3> parsed CREATE_CHILD_SA response 2 [ SA No KE TSi TSr ]\n"
        "10:00:01.000 05[ENC] <b|4> parsed CREATE_CHILD_SA response 1 [ SA No TSi TSr ]\n")
    assert create_child_exchanges(log) == [12.0]
    assert create_child_exchanges(tmp_path / "none.log") == []


def test_persistence_result_names_code_machine_load_and_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bench.persistence's JSON carries what README's Reliability row cites (issue 13)."""
    import sys

    from bench import persistence
    out = tmp_path / "persistence.json"
    monkeypatch.setattr(sys, "argv", ["bench/persistence.py", "--users", "20"])
    assert persistence.main(["--users", "20", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["benchmark"] == "persistence" and res["users"] == 20
    assert res["command"] == "python -m bench.persistence --users 20"
    for key in ("code", "cpu", "cores", "loadavg", "time"):
        assert key in res["machine"]
    assert len(res["load_after"]) == 3
    assert res["normal"]["per_registration_ms"]["n"] == 20


@pytest.mark.skipif(shutil.which("etcd") is None,
                    reason="etcd not installed (Debian package etcd-server)")
def test_replicas_tiny(tmp_path, monkeypatch):
    """bench.replicas, cost part (the failover part is tests/integration/
    test_replicas.py): every layout registers, etcd's CPU is measured."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / "replicas.json"
    from bench import replicas
    assert replicas.main(["--users", "400", "--window", "4", "--duration", "0.5",
                          "--fixed-rate", "20", "--skip-failover", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [r["layout"] for r in res["cost"]] == ["sqlite x1", "etcd x1", "etcd x2"]
    assert all(r["completed"] > 0 and r["codes"] == {"0": r["completed"]}
               for r in res["cost"])
    assert res["cost"][0]["store_cpu_us_per_reg"] is None        # SQLite: no etcd
    assert res["cost"][1]["cpu_us_per_reg"]["etcd"] > 0
    assert res["on_paper"]["n"]["2"]["total_reg_s"] > 0


def test_replicas_on_paper_when_the_idle_correction_eats_the_cost():
    """On a loaded machine the idle burn measured before a run can exceed what the
    run used: the net CPU per registration is clipped to 0.  The model then works
    from the gross figures (and says so) instead of dividing by zero."""
    from bench import replicas
    def row(layout, home_net, home_gross):
        return {"layout": layout, "cpu_us_per_reg": {"home": home_gross, "etcd": 50.0},
                "cpu_us_per_reg_net": {"home": home_net, "etcd": 40.0},
                "fixed_rate": {"cpu_us_per_reg_net": {"home": home_net, "etcd": 40.0}}}
    out = replicas.on_paper([row("etcd x1", 900.0, 1000.0), row("etcd x2", 1100.0, 1200.0)])
    assert out["basis"] == "net of idle" and out["n"]["1"]["per_machine_reg_s"] == 1111
    out = replicas.on_paper([row("etcd x1", 0.0, 1000.0), row("etcd x2", 0.0, 1200.0)])
    assert out["basis"].startswith("gross")
    assert out["serve_us"] == 1000.0 and out["follow_us"] == 200.0
    assert out["n"]["2"]["total_reg_s"] == round(2 * 1e6 / 1200.0)
