"""Issue 14: for an MN whose profile asks for seamless handover the HA prepares the
HA<->FA tunnels of the FAs it can move to (IKE_SA only, by the runtime, after the
move's own work); a move onto a prepared tunnel keeps it; without the option nothing
changes."""

from __future__ import annotations

from controller.core.actions import PrepareTunnel
from controller.core.neighbours import prepared_psk
from tests.unit.harness import MobileNode, Walk, topology

NAI = "alice@home.example"
HA_FA1, HA_FA2, HA_FA3 = (f"alice_home.example/ha-{fa}" for fa in ("fa1", "fa2", "fa3"))


def _prep(walk: Walk, pos: int) -> list[PrepareTunnel]:
    return [a for _r, a in walk.of_type(PrepareTunnel, pos)]


def test_registration_prepares_the_neighbour_fas_after_the_tunnel_set() -> None:
    walk = Walk(topology(seamless_handover=True))
    mn = MobileNode(walk)
    pos = walk.mark()
    assert mn.register("fa1").accepted
    trace = walk.trace(pos)
    # after the HA's live tunnel, before its answer; the FA's tunnel is not delayed
    assert trace.index(f"ha PrepareTunnel {HA_FA2}") > trace.index(f"ha AddTunnel ha {HA_FA1}")
    preps = _prep(walk, pos)
    assert [p.spec.tunnel_id for p in preps] == [HA_FA2, HA_FA3]   # limit 2, same domain first
    secret = walk.ha.bindings[NAI].secret
    spec = preps[0].spec
    assert spec.psk == prepared_psk(secret, HA_FA2) and spec.initiator == "fa2"
    assert not any(p.remove for p in preps)
    # with their CHILD_SA, promoted at the move (kernel-libipsec: secondary at the HA)
    assert all(p.child for p in preps)
    assert set(walk.ha.prepared[NAI]) == {HA_FA2, HA_FA3}
    # the live path is unchanged: one HA<->FA tunnel, at fa1
    assert sorted(t for t in walk.gateways.ids("ha") if "ha-fa" in t) == [HA_FA1]


def test_move_onto_a_prepared_tunnel_keeps_it_and_prepares_the_old_fa() -> None:
    walk = Walk(topology(seamless_handover=True))
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    walk.now += 2.0
    pos = walk.mark()
    assert mn.register("fa2", "fa1").accepted
    preps = _prep(walk, pos)
    # ha-fa2 is live now: neither dropped nor prepared again; fa1 becomes a neighbour
    assert [(p.spec.tunnel_id, p.remove) for p in preps] == [(HA_FA1, False)]
    assert set(walk.ha.prepared[NAI]) == {HA_FA1, HA_FA3}


def test_without_the_option_nothing_is_prepared() -> None:
    walk = Walk()
    mn = MobileNode(walk)
    pos = walk.mark()
    assert mn.register("fa1").accepted
    walk.now += 2.0
    assert mn.register("fa2", "fa1").accepted
    assert _prep(walk, pos) == [] and walk.ha.prepared == {}


def test_expiry_drops_what_was_prepared() -> None:
    walk = Walk(topology(seamless_handover=True))
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    actions = walk.ha.on_tick(walk.now + 10_000)
    assert {a.spec.tunnel_id for a in actions if isinstance(a, PrepareTunnel) and a.remove} \
        == {HA_FA2, HA_FA3}
    assert walk.ha.prepared == {}


def test_smooth_handoff_retire_does_not_undo_the_old_fas_preparation() -> None:
    """Seamless + smooth handoff: the HA keeps the old FA's live tunnel RETIRE_AFTER
    after the move, and that tunnel's id is the one a move back uses.  The HA asks for
    its preparation at the move (the runtime prepares it once both live ends are gone:
    ``Gateways.prepare_tunnel``, tests/unit/runtime/test_prepared_tunnels.py); the
    retire removes the live end only, the preparation stays wanted (measured before the
    fix: 1 of 20 moves used a prepared IKE_SA)."""
    from controller.core.home_agent import RETIRE_AFTER
    walk = Walk(topology(seamless_handover=True, smooth_handoff=True))
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    walk.now += 2.0
    pos = walk.mark()
    assert mn.register("fa2", "fa1").accepted
    trace = walk.trace(pos)
    assert f"ha RemoveTunnel ha {HA_FA1}" not in trace      # kept (smooth handoff)
    assert trace.count(f"ha PrepareTunnel {HA_FA1}") == 1
    spec = [a.spec for _r, a in walk.of_type(PrepareTunnel, pos)
            if a.spec.tunnel_id == HA_FA1][0]
    assert spec.psk == prepared_psk(walk.ha.bindings[NAI].secret, HA_FA1)
    walk.now += RETIRE_AFTER + 0.1
    pos = walk.mark()
    walk.tick()
    trace = walk.trace(pos)
    assert f"ha RemoveTunnel ha {HA_FA1}" in trace
    assert f"ha Unprepare {HA_FA1}" not in trace and HA_FA1 in walk.ha.prepared[NAI]
    # moving back uses it: the live tunnel is the prepared one's id, nothing dropped
    walk.now += 1.0
    pos = walk.mark()
    assert mn.register("fa1", "fa2").accepted
    assert not [p for p in _prep(walk, pos) if p.remove and p.spec.tunnel_id == HA_FA1]
