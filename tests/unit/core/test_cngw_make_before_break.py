"""Issue 14, make before break at a dynamic CN-GW (route optimisation, claims 20-21):
for an MN whose profile has seamless_handover the HA's Binding Update says so (an NVSE,
ignored by a receiver that does not know it), and the CN-GW keeps its tunnel to the old
FA until the new FA's tunnel is up (``on_tunnel_up``) or OVERLAP_MAX has passed; it
survives a restart; without the option the old tunnel goes first, as before."""

from __future__ import annotations

from typing import Any

from controller.core.binding import (NVSE_MAKE_BEFORE_BREAK, build_binding_update,
                                     check_binding_update, new_binding_key)
from controller.core.simultaneous import OVERLAP_MAX
from controller.proto import mip
from tests.unit.harness import MobileNode, Walk, topology

NAI = "alice@home.example"
OWNER = "alice_home.example"
RO1, RO2, RO3 = (f"{OWNER}/cngw2-fa{i}" for i in (1, 2, 3))
DEST = {NAI: [("10.32.0.0/24", "cngw2")]}


def make(seamless: bool = True) -> tuple[Walk, MobileNode]:
    walk = Walk(topology(destinations=DEST, seamless_handover=seamless, dynamic=("cngw2",)))
    mn = MobileNode(walk)
    assert mn.register("fa1", simultaneous=True).accepted
    walk.now += 2.0
    return walk, mn


def up(walk: Walk, tunnel_id: str) -> list[str]:
    pos = walk.mark()
    walk.execute("cngw:cngw2", walk.cngw().on_tunnel_up(walk.now, tunnel_id))
    return walk.trace(pos)


def test_the_bu_says_make_before_break_only_when_asked() -> None:
    key = new_binding_key(0x200)
    for flag in (False, True):
        raw = build_binding_update(key, mip.ntp_identification(1e9), 60, "10.10.0.100",
                                   "10.0.0.12", NAI, (), make_before_break=flag)
        checked = check_binding_update(raw, key, 1e9)
        assert not isinstance(checked, int) and checked.make_before_break is flag
    assert NVSE_MAKE_BEFORE_BREAK == 5   # 4: the MN-FA nonce reply (mip_keys)


def test_cngw_keeps_the_old_fas_tunnel_until_the_new_one_is_up() -> None:
    walk, mn = make()
    pos = walk.mark()
    assert mn.register("fa2", "fa1", simultaneous=True).accepted
    trace = walk.trace(pos)
    assert f"cngw:cngw2 RemoveTunnel cngw2 {RO1}" not in trace
    assert f"cngw:cngw2 AddTunnel cngw2 {RO2}" in trace
    assert {RO1, RO2} <= walk.gateways.ids("cngw2")
    assert RO1 in {t.tunnel_id for t in walk.cngw().tunnels_wanted()}
    assert up(walk, RO3) == []
    assert up(walk, RO2) == [f"cngw:cngw2 RemoveTunnel cngw2 {RO1}"]
    assert walk.log[-2][1].phase == "cngw_earlier_ended" and walk.log[-2][1].nai == NAI
    assert walk.gateways.ids("cngw2") & {RO1, RO2} == {RO2} and not walk.gateways.errors


def test_without_confirmation_it_goes_after_overlap_max() -> None:
    walk, mn = make()
    assert mn.register("fa2", "fa1", simultaneous=True).accepted
    walk.now += OVERLAP_MAX - 0.1
    walk.tick()
    assert RO1 in walk.gateways.ids("cngw2")
    walk.now += 0.2
    walk.tick()
    assert RO1 not in walk.gateways.ids("cngw2") and walk.cngw().earlier == {}


def test_a_further_move_ends_the_earlier_one_at_once() -> None:
    walk, mn = make()
    assert mn.register("fa2", "fa1", simultaneous=True).accepted
    walk.now += 0.3
    walk.fa("fa2").in_progress.clear()
    pos = walk.mark()
    assert mn.register("fa3", "fa2", simultaneous=True).accepted
    assert f"cngw:cngw2 RemoveTunnel cngw2 {RO1}" in walk.trace(pos)
    assert walk.gateways.ids("cngw2") & {RO1, RO2, RO3} == {RO2, RO3}


def test_it_survives_a_restart() -> None:
    walk, mn = make()
    assert mn.register("fa2", "fa1", simultaneous=True).accepted
    cngw = walk.cngw()
    [hoa] = cngw.bindings
    state: Any = cngw.export_state(hoa)
    assert [t["tunnel_id"] for t in state["earlier"]["tunnels"]] == [RO1]
    fresh = Walk(topology(destinations=DEST, seamless_handover=True, dynamic=("cngw2",)))
    fresh.cngw().restore_state(hoa, state)
    assert fresh.cngw().export_state(hoa) == state
    assert RO1 in {t.tunnel_id for t in fresh.cngw().tunnels_wanted()}


def test_without_the_option_the_old_tunnel_goes_first() -> None:
    walk, mn = make(seamless=False)
    pos = walk.mark()
    assert mn.register("fa2", "fa1", simultaneous=True).accepted
    trace = walk.trace(pos)
    assert trace.index(f"cngw:cngw2 RemoveTunnel cngw2 {RO1}") < \
        trace.index(f"cngw:cngw2 AddTunnel cngw2 {RO2}")
    assert walk.cngw().earlier == {}
