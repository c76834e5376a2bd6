"""Issue 14: simultaneous bindings at the HA (RFC 5944 §3.3, the RRQ's S flag) for an
MN whose profile asks for seamless handover: a move keeps the old FA's binding and
tunnel until the new FA's tunnel is confirmed up (``on_tunnel_up``) or OVERLAP_MAX has
passed; two bindings at most; the earlier one survives a restart; without the profile
option (or without S) today's behaviour is unchanged."""

from __future__ import annotations

from typing import Any

from controller.core.actions import RemoveTunnel
from controller.core.simultaneous import OVERLAP_MAX
from controller.proto import mip
from tests.unit.harness import MobileNode, Walk, topology

NAI = "alice@home.example"
HA1, HA2, HA3 = (f"alice_home.example/ha-fa{i}" for i in (1, 2, 3))


def make(seamless: bool = True, smooth: bool = False) -> tuple[Walk, MobileNode]:
    walk = Walk(topology(seamless_handover=seamless, smooth_handoff=smooth))
    mn = MobileNode(walk)
    assert mn.register("fa1", simultaneous=True).accepted
    walk.now += 2.0
    return walk, mn


def up(walk: Walk, tunnel_id: str) -> list[str]:
    """The runtime's report that ``tunnel_id`` is established: the trace it causes."""
    pos = walk.mark()
    walk.execute("ha", walk.ha.on_tunnel_up(walk.now, tunnel_id))
    return walk.trace(pos)


def test_s_keeps_the_old_binding_until_the_new_tunnel_is_up() -> None:
    walk, mn = make()
    pos = walk.mark()
    reply = mn.register("fa2", "fa1", simultaneous=True)
    assert reply is not None and reply.code == mip.CODE_ACCEPTED   # S honoured
    trace = walk.trace(pos)
    # asked for at the move; the runtime prepares it once its live ends are gone
    assert f"ha PrepareTunnel {HA1}" in trace
    assert f"ha RemoveTunnel ha {HA1}" not in trace and f"ha AddTunnel ha {HA2}" in trace
    assert {HA1, HA2} <= walk.gateways.ids("ha")
    earlier = walk.ha.simultaneous.earlier[NAI]
    assert earlier.foreign_agent == "fa1" and earlier.care_of_address == \
        walk.topo.gateways["fa1"].core.ip and [t.tunnel_id for t in earlier.tunnels] == [HA1]
    assert walk.ha.bindings[NAI].foreign_agent == "fa2"
    assert HA1 in {t.tunnel_id for t in walk.ha.tunnels_wanted()}   # a reconcile keeps it
    # another tunnel coming up ends nothing; the new FA's does
    assert up(walk, HA3) == []
    assert up(walk, HA2) == [f"ha RemoveTunnel ha {HA1}"]
    assert HA1 not in walk.gateways.ids("ha") and NAI not in walk.ha.simultaneous.earlier
    walk.now += 5
    pos = walk.mark()
    walk.tick()
    assert f"ha RemoveTunnel ha {HA1}" not in walk.trace(pos) and not walk.gateways.errors


def test_without_confirmation_the_old_binding_goes_after_overlap_max() -> None:
    walk, mn = make()
    assert mn.register("fa2", "fa1", simultaneous=True).accepted
    walk.now += OVERLAP_MAX - 0.1
    walk.tick()
    assert HA1 in walk.gateways.ids("ha")
    walk.now += 0.2
    pos = walk.mark()
    walk.tick()
    assert f"ha RemoveTunnel ha {HA1}" in walk.trace(pos)
    assert HA1 not in walk.gateways.ids("ha") and walk.ha.simultaneous.earlier == {}
    assert up(walk, HA2) == []      # a late confirmation finds nothing to end


def test_two_bindings_at_most() -> None:
    walk, mn = make()
    assert mn.register("fa2", "fa1", simultaneous=True).accepted
    walk.now += 0.3
    walk.fa("fa2").in_progress.clear()
    pos = walk.mark()
    assert mn.register("fa3", "fa2", simultaneous=True).accepted
    # fa1's binding goes at this move; fa2's is the earlier one now
    assert f"ha RemoveTunnel ha {HA1}" in walk.trace(pos)
    assert [t.tunnel_id for t in walk.ha.simultaneous.earlier[NAI].tunnels] == [HA2]
    assert walk.gateways.ids("ha") & {HA1, HA2, HA3} == {HA2, HA3}


def test_moving_back_during_the_overlap_keeps_the_tunnel() -> None:
    walk, mn = make()
    assert mn.register("fa2", "fa1", simultaneous=True).accepted
    walk.now += 0.3
    walk.fa("fa1").in_progress.clear()
    pos = walk.mark()
    assert mn.register("fa1", "fa2", simultaneous=True).accepted
    trace = walk.trace(pos)
    assert f"ha RemoveTunnel ha {HA1}" not in trace and f"ha AddTunnel ha {HA1}" in trace
    assert [t.tunnel_id for t in walk.ha.simultaneous.earlier[NAI].tunnels] == [HA2]
    up(walk, HA1)
    assert walk.gateways.ids("ha") & {HA1, HA2} == {HA1} and not walk.gateways.errors


def test_without_the_profile_option_s_is_not_honoured() -> None:
    """Switched off per profile: reply code 1 and the old binding is broken first, as
    before issue 14."""
    walk, mn = make(seamless=False)
    pos = walk.mark()
    reply = mn.register("fa2", "fa1", simultaneous=True)
    assert reply is not None and reply.code == mip.CODE_ACCEPTED_NO_SIMULTANEOUS
    trace = walk.trace(pos)
    assert trace.index(f"ha RemoveTunnel ha {HA1}") < trace.index(f"ha AddTunnel ha {HA2}")
    assert walk.ha.simultaneous.earlier == {}


def test_without_s_a_seamless_mn_moves_without_an_earlier_binding() -> None:
    """No earlier binding is kept; the old FA's tunnel goes in the same walk, after the
    new one is set (make before break for a seamless profile: ``ha_tunnels``)."""
    walk, mn = make()
    pos = walk.mark()
    reply = mn.register("fa2", "fa1")
    assert reply is not None and reply.code == mip.CODE_ACCEPTED
    trace = walk.trace(pos)
    assert trace.index(f"ha AddTunnel ha {HA2}") < trace.index(f"ha RemoveTunnel ha {HA1}")
    assert walk.ha.simultaneous.earlier == {}
    assert HA1 not in walk.gateways.ids("ha")


def test_the_earlier_binding_survives_a_restart() -> None:
    walk, mn = make()
    walk.ha.changes.on = True      # as the runtime's persistence turns it on
    assert mn.register("fa2", "fa1", simultaneous=True).accepted
    assert NAI in walk.ha.changes.take()
    state: Any = walk.ha.export_state(NAI)
    assert state["earlier"]["foreign_agent"] == "fa1"
    fresh = Walk(topology(seamless_handover=True))
    fresh.now = walk.now
    fresh.ha.restore_state(NAI, state)
    fresh.ha.changes.on = True
    assert fresh.ha.export_state(NAI) == state
    assert HA1 in {t.tunnel_id for t in fresh.ha.tunnels_wanted()}
    actions = fresh.ha.on_tunnel_up(fresh.now, HA2)
    assert RemoveTunnel("ha", HA1) in actions
    assert NAI in fresh.ha.changes.take()     # the record without it is written


def test_deregistration_removes_the_earlier_binding_too() -> None:
    walk, mn = make()
    assert mn.register("fa2", "fa1", simultaneous=True).accepted
    walk.now += 0.2
    walk.fa("fa2").in_progress.clear()
    pos = walk.mark()
    assert mn.register("fa2", lifetime=0).accepted
    walk.now += 0.1
    walk.tick()
    trace = walk.trace(pos)
    assert f"ha RemoveTunnel ha {HA1}" in trace and f"ha RemoveTunnel ha {HA2}" in trace
    assert walk.ha.simultaneous.earlier == {} and walk.ha.prepared == {}
    assert walk.gateways.ids("ha") & {HA1, HA2, HA3} == set() and not walk.gateways.errors


def test_with_smooth_handoff_the_old_tunnel_still_retires_after_retire_after() -> None:
    """S and smooth handoff: the old FA's uplink (from the new FA's forwarding tunnel)
    still goes through its tunnel to the HA for RETIRE_AFTER, as without S; the
    confirmation ends the earlier binding, its tunnel retires then."""
    from controller.core.home_agent import RETIRE_AFTER
    walk, mn = make(smooth=True)
    t_move = walk.now
    assert mn.register("fa2", "fa1", simultaneous=True).accepted
    assert up(walk, HA2) == []
    assert NAI not in walk.ha.simultaneous.earlier and HA1 in walk.ha.retiring
    walk.now = t_move + RETIRE_AFTER - 0.2
    walk.tick()
    assert HA1 in walk.gateways.ids("ha")
    walk.now = t_move + RETIRE_AFTER + 0.1
    pos = walk.mark()
    walk.tick()
    assert f"ha RemoveTunnel ha {HA1}" in walk.trace(pos)
    assert HA1 not in walk.gateways.ids("ha") and HA1 in walk.ha.prepared[NAI]


def test_with_smooth_handoff_a_move_back_within_the_retire_cancels_it() -> None:
    """Issue 14 (the ABBA walk of bench.handover_paired, 1.5 s apart): back at the old
    FA before its tunnel retired, the HA and that FA set the tunnel again (the runtime
    keeps its IKE_SA) and neither retire timer removes it afterwards."""
    from controller.core.home_agent import RETIRE_AFTER
    walk, mn = make(smooth=True)
    t_move = walk.now
    assert mn.register("fa2", "fa1", simultaneous=True).accepted
    assert up(walk, HA2) == []
    assert HA1 in walk.ha.retiring and HA1 in walk.fa("fa1").retiring
    walk.now = t_move + RETIRE_AFTER - 0.5
    walk.fa("fa1").in_progress.clear()
    pos = walk.mark()
    assert mn.register("fa1", "fa2", simultaneous=True).accepted
    trace = walk.trace(pos)
    assert f"ha AddTunnel ha {HA1}" in trace and f"ha RemoveTunnel ha {HA1}" not in trace
    assert HA1 not in walk.ha.retiring and HA1 not in walk.fa("fa1").retiring
    up(walk, HA1)
    for dt in (0.6, RETIRE_AFTER + 1.0):
        walk.now = t_move + RETIRE_AFTER + dt
        pos = walk.mark()
        walk.tick()
        assert f"RemoveTunnel ha {HA1}" not in walk.trace(pos)
        assert f"RemoveTunnel fa1 {HA1}" not in walk.trace(pos)
    assert HA1 in walk.gateways.ids("ha") and HA1 in walk.gateways.ids("fa1")
    assert not walk.gateways.errors
