"""Issue 14: a seamless MN's registration at an FA announces the MN to that FA's IP
stack (an ARP reply on its behalf, ``AnnounceMobileNode``), after the steering and
before the tunnel.  A standing CHILD_SA's preparation can bring a downlink packet to a
neighbour FA while the MN is elsewhere; that FA's ARP resolution for the MN then ran
into the move and ended only at a 1 s retransmission (test_seamless_ha: the first
move's downlink stalled 1,003 ms, 992 lost).  Without the option: no announcement."""

from __future__ import annotations

from controller.core.actions import AnnounceMobileNode
from tests.unit.harness import MobileNode, Walk, topology

MN = "02:00:00:00:01:00"
PORT = 2


def test_a_seamless_move_announces_the_mn_between_steering_and_tunnel() -> None:
    walk = Walk(topology(seamless_handover=True))
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    walk.now += 2.0
    pos = walk.mark()
    assert mn.register("fa2", "fa1", port=PORT).accepted
    home = walk.fa("fa2").visitors["alice@home.example"].home_address
    assert [a for r, a in walk.of_type(AnnounceMobileNode, pos) if r == "fa:fa2"] \
        == [AnnounceMobileNode("fa2", MN, home)]
    trace = walk.trace(pos)
    announce = trace.index("fa:fa2 AnnounceMobileNode")
    assert trace.index("fa:fa2 SendFlows acc2") < announce
    assert announce < trace.index("fa:fa2 AddTunnel fa2 alice_home.example/ha-fa2 initiator")


def test_the_first_registration_announces_too() -> None:
    walk = Walk(topology(seamless_handover=True))
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    assert [(r, a.foreign_agent) for r, a in walk.of_type(AnnounceMobileNode)] \
        == [("fa:fa1", "fa1")]


def test_without_the_option_no_announcement() -> None:
    walk = Walk(topology())
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    walk.now += 2.0
    assert mn.register("fa2", "fa1", port=PORT).accepted
    assert walk.of_type(AnnounceMobileNode) == []
