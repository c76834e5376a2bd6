"""Issue 14: for a profile with ``seamless_handover`` the HA sets its tunnel to the new
FA, answers, and removes its tunnel to the old FA after the answer (make before
break; ``controller.core.ha_tunnels``); without the option it deletes first (claim 17).
The old tunnel still goes in the same walk; smooth handoff's retire and simultaneous
bindings keep theirs."""

from __future__ import annotations

from typing import Any

from controller.core.actions import AddTunnel, AnswerDiameter, RemoveTunnel, ReplyMip
from controller.core.ha_tunnels import RETIRE_AFTER
from controller.proto import mip
from tests.unit.harness import MobileNode, Walk, topology

NAI = "alice@home.example"
HA1, HA2 = (f"alice_home.example/ha-{fa}" for fa in ("fa1", "fa2"))


def make(**profile: Any) -> tuple[Walk, MobileNode, list[list[Any]]]:
    """A walk whose MN registered at fa1; ``seen``: every action list the HA returns
    to a relayed RRQ or a HAR."""
    walk = Walk(topology(**profile))
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    walk.now += 2.0
    seen: list[list[Any]] = []
    ha = walk.ha
    for name in ("on_registration_request", "on_har"):
        real = getattr(ha, name)

        def spy(*args: Any, real: Any = real) -> list[Any]:
            actions = real(*args)
            seen.append(actions)
            return list(actions)
        setattr(ha, name, spy)
    return walk, mn, seen


def order(actions: list[Any]) -> list[str]:
    out = []
    for a in actions:
        if isinstance(a, AddTunnel):
            out.append(f"add {a.side.tunnel_id}")
        elif isinstance(a, RemoveTunnel):
            out.append(f"remove {a.tunnel_id}")
        elif isinstance(a, (ReplyMip, AnswerDiameter)):
            out.append("answer")
    return out


def test_a_seamless_move_sets_the_new_tunnel_answers_then_removes_the_old() -> None:
    walk, mn, seen = make(seamless_handover=True)
    assert mn.register("fa2", "fa1").accepted
    assert order(seen[-1]) == [f"add {HA2}", "answer", f"remove {HA1}"]
    # not leaked: gone from the HA's gateway in the same walk
    assert HA1 not in walk.gateways.ids("ha") and HA2 in walk.gateways.ids("ha")
    assert walk.gateways.errors == []


def test_the_has_tunnel_set_mark_follows_only_the_new_tunnel() -> None:
    walk, mn, seen = make(seamless_handover=True)
    assert mn.register("fa2", "fa1").accepted
    phases = [getattr(a, "phase", type(a).__name__) for a in seen[-1]]
    assert phases.index("ha_tunnel_set") == phases.index("AddTunnel") + 1
    assert phases.index("ha_tunnel_set") < phases.index("RemoveTunnel")


def test_without_the_option_the_old_tunnel_goes_first() -> None:
    walk, mn, seen = make()
    assert mn.register("fa2", "fa1").accepted
    assert order(seen[-1]) == [f"remove {HA1}", f"add {HA2}", "answer"]


def test_through_aaa_the_old_tunnel_goes_after_the_haa() -> None:
    """A move the AAAF cannot answer (previous FA outside the domain): the HAR's path."""
    walk, mn, seen = make(seamless_handover=True)
    assert mn.register("fa2", None, previous_coa="10.0.0.99").accepted
    assert order(seen[-1]) == [f"add {HA2}", "answer", f"remove {HA1}"]
    assert HA1 not in walk.gateways.ids("ha")


def test_smooth_handoff_still_retires_the_old_tunnel_later() -> None:
    walk, mn, seen = make(seamless_handover=True, smooth_handoff=True)
    assert mn.register("fa2", "fa1").accepted
    assert order(seen[-1]) == [f"add {HA2}", "answer"]
    assert HA1 in walk.gateways.ids("ha")
    walk.now += RETIRE_AFTER + 0.5
    walk.tick()
    assert HA1 not in walk.gateways.ids("ha")


def test_simultaneous_bindings_still_keep_the_earlier_until_the_new_is_up() -> None:
    walk, mn, seen = make(seamless_handover=True)
    reply = mn.register("fa2", "fa1", simultaneous=True)
    assert reply is not None and reply.code == mip.CODE_ACCEPTED
    assert order(seen[-1]) == [f"add {HA2}", "answer"]
    assert HA1 in walk.gateways.ids("ha") and NAI in walk.ha.simultaneous.earlier
    walk.execute("ha", walk.ha.on_tunnel_up(walk.now, HA2))
    assert HA1 not in walk.gateways.ids("ha")


def test_a_second_move_during_the_overlap_ends_the_earlier_after_the_answer() -> None:
    walk, mn, seen = make(seamless_handover=True)
    assert mn.register("fa2", "fa1", simultaneous=True).accepted
    walk.now += 0.2
    walk.fa("fa2").in_progress.clear()
    assert mn.register("fa3", "fa2", simultaneous=True).accepted
    ops = order(seen[-1])
    assert ops[0].startswith("add ") and ops.index("answer") < ops.index(f"remove {HA1}")
    assert HA1 not in walk.gateways.ids("ha")
