"""Issue 5, load: a foreign agent admits a bounded number of registrations in flight;
beyond ``max_pending`` it refuses new ones at once with RFC 5944 code 66 (insufficient
resources), counts them, and serves the admitted ones normally."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from controller.config import ConfigError, parse_topology
from controller.core.actions import SendDiameter, SendToMobileNode
from controller.core.foreign_agent import ForeignAgent
from controller.core.roles import build_roles
from controller.adapters.store import VpnStore
from controller.loadgen import build_rrq
from controller.proto import mip

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_800_000_000.0
KEY = bytes(range(16))


def fa_with_cap(cap: int) -> ForeignAgent:
    data = yaml.safe_load((ROOT / "topology" / "default.yaml").read_text())
    data["gateways"]["fa1"]["max_pending"] = cap
    topo = parse_topology(data, "t.yaml")
    store = VpnStore(":memory:")
    store.seed(topo)
    fa = build_roles(topo, store).roles["fa:fa1"]
    assert fa.conf.max_pending == cap
    return fa  # type: ignore[no-any-return]


def rrq(fa: ForeignAgent, i: int) -> bytes:
    return build_rrq(f"user{i}@home.example", f"10.10.0.{i + 1}", "10.0.0.1",
                     fa.conf.core_address, 300, KEY, mip.ntp_identification(T0) + i)


def code_of(actions: list) -> int | None:
    for a in actions:
        if isinstance(a, SendToMobileNode):
            return mip.decode(a.raw).code  # type: ignore[no-any-return]
    return None


def test_cap_refuses_the_excess_with_66_and_admits_again_when_one_completes() -> None:
    fa = fa_with_cap(3)
    sent = [fa.on_registration_request(T0, rrq(fa, i), f"02:00:00:00:00:{i:02x}", 2)
            for i in range(5)]
    assert [any(isinstance(a, SendDiameter) for a in acts) for acts in sent] == [
        True, True, True, False, False]
    assert [code_of(acts) for acts in sent[3:]] == [mip.CODE_FA_INSUFFICIENT_RESOURCES] * 2
    assert len(fa.pending) == 3
    assert fa.counters["admission_denied"] == 2 and fa.counters["denied"] == 2
    # nothing of the refused ones stays: no hold (their retry is admitted later)
    assert set(fa.in_progress) == {f"user{i}@home.example" for i in range(3)}
    # one in flight ends (the AAA timed out): room for one more
    first = next(iter(fa.pending))
    fa.on_diameter_timeout(T0 + 1, first)
    again = fa.on_registration_request(T0 + 1, rrq(fa, 3), "02:00:00:00:00:03", 2)
    assert any(isinstance(a, SendDiameter) for a in again)
    assert len(fa.pending) == 3


def test_refusal_keeps_the_hold_of_the_same_mn_in_flight() -> None:
    fa = fa_with_cap(1)
    fa.on_registration_request(T0, rrq(fa, 0), "02:00:00:00:00:00", 2)
    held = fa.in_progress["user0@home.example"]
    # the same MN, a different registration (service update / move) while full
    other = build_rrq("user0@home.example", "10.10.0.1", "10.0.0.1", fa.conf.core_address,
                      300, KEY, mip.ntp_identification(T0) + 7, previous_coa="10.0.0.12")
    acts = fa.on_registration_request(T0 + 0.5, other, "02:00:00:00:00:00", 2)
    assert code_of(acts) == mip.CODE_FA_INSUFFICIENT_RESOURCES
    assert fa.in_progress["user0@home.example"] == held


def test_refused_while_the_oldest_in_flight_waited_too_long() -> None:
    fa = fa_with_cap(10)
    assert fa.conf.max_pending_age == 2.0
    fa.on_registration_request(T0, rrq(fa, 0), "02:00:00:00:00:00", 2)
    ok = fa.on_registration_request(T0 + 1.9, rrq(fa, 1), "02:00:00:00:00:01", 2)
    assert any(isinstance(a, SendDiameter) for a in ok)
    late = fa.on_registration_request(T0 + 2.1, rrq(fa, 2), "02:00:00:00:00:02", 2)
    assert code_of(late) == mip.CODE_FA_INSUFFICIENT_RESOURCES
    assert fa.counters["admission_denied"] == 1
    # the oldest completes (here: times out): the next one is admitted again
    fa.on_diameter_timeout(T0 + 2.2, next(iter(fa.pending)))
    again = fa.on_registration_request(T0 + 2.3, rrq(fa, 2), "02:00:00:00:00:02", 2)
    assert any(isinstance(a, SendDiameter) for a in again)


def test_refused_while_recent_aaa_round_trips_were_slow() -> None:
    """A burst admitted at once all looks young; the AAA's recent answer times show
    the queue: refuse while they average over max_pending_age, until it recovers."""
    fa = fa_with_cap(10)
    for i in range(4):
        fa.on_registration_request(T0, rrq(fa, i), f"02:00:00:00:00:{i:02x}", 2)
    for sid in list(fa.pending):
        fa.on_diameter_timeout(T0 + 1.9, sid)     # a queue of ~2 s, four times
    assert 1.0 < fa.aaa_wait < 2.0
    first = fa.on_registration_request(T0 + 2, rrq(fa, 4), "02:00:00:00:00:04", 2)
    assert any(isinstance(a, SendDiameter) for a in first)
    fa.on_diameter_timeout(T0 + 8, next(iter(fa.pending)))     # 6 s
    assert fa.aaa_wait > 2.0
    fa.on_registration_request(T0 + 8, rrq(fa, 5), "02:00:00:00:00:05", 2)  # alone: in
    assert len(fa.pending) == 1
    late = fa.on_registration_request(T0 + 8, rrq(fa, 6), "02:00:00:00:00:06", 2)
    assert code_of(late) == mip.CODE_FA_INSUFFICIENT_RESOURCES
    fa.on_diameter_timeout(T0 + 8.1, next(iter(fa.pending)))   # fast again
    assert fa.aaa_wait < 2.0
    fa.on_registration_request(T0 + 8.2, rrq(fa, 7), "02:00:00:00:00:07", 2)
    ok = fa.on_registration_request(T0 + 8.2, rrq(fa, 8), "02:00:00:00:00:08", 2)
    assert any(isinstance(a, SendDiameter) for a in ok) and len(fa.pending) == 2


def test_default_cap_and_config_validation() -> None:
    data = yaml.safe_load((ROOT / "topology" / "default.yaml").read_text())
    topo = parse_topology(copy.deepcopy(data), "t.yaml")
    assert topo.gateways["fa1"].max_pending == 64
    for bad, why in ((0, "out of range"), ("many", "expected an integer")):
        d = copy.deepcopy(data)
        d["gateways"]["fa1"]["max_pending"] = bad
        with pytest.raises(ConfigError, match=f"t.yaml: gateways.fa1.max_pending: .*{why}"):
            parse_topology(d, "t.yaml")
    d = copy.deepcopy(data)
    d["gateways"]["ha"]["max_pending"] = 10
    with pytest.raises(ConfigError, match="gateways.ha.max_pending: only a foreign_agent"):
        parse_topology(d, "t.yaml")
    d = copy.deepcopy(data)
    d["gateways"]["fa2"]["max_pending_age"] = 0.5
    assert parse_topology(d, "t.yaml").gateways["fa2"].max_pending_age == 0.5
    for bad, why in ((0, "out of range"), ("2s", "expected seconds"), (True, "expected")):
        d = copy.deepcopy(data)
        d["gateways"]["fa1"]["max_pending_age"] = bad
        with pytest.raises(ConfigError, match=f"gateways.fa1.max_pending_age: .*{why}"):
            parse_topology(d, "t.yaml")


def test_refusals_reach_prometheus() -> None:
    from types import SimpleNamespace

    from prometheus_client import CollectorRegistry

    from controller.metrics import Metrics
    fa = fa_with_cap(1)
    for i in range(3):
        fa.on_registration_request(T0, rrq(fa, i), f"02:00:00:00:00:{i:02x}", 2)
    reg = CollectorRegistry()
    m = Metrics(reg, process=False)
    rt = SimpleNamespace(roles={"fa:fa1": fa}, tunnel_log={}, datapaths={}, routes={},
                         nodes={}, counters={},
                         topo=SimpleNamespace(switches={}))
    m.refresh(rt)
    m.refresh(rt)   # a second scrape adds nothing
    assert reg.get_sample_value("mipvpn_registrations_admission_denied_total",
                                {"foreign_agent": "fa1"}) == 2
