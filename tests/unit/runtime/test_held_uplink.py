"""The runtime's side of the uplink held at a new access switch (issue 14, seamless
handover): punted frames the core recognises are kept per MN (bounded in count, age and
time without a release), go to the new FA in order once its tunnel is up, before the
redirect that replaces the punt, and what was punted meanwhile follows at once.  Fakes:
the roles (what ``fa_prepare.uplink_hold`` reads), a datapath recording packet-outs and
flow-mods in one stream, the tunnel state."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from types import SimpleNamespace
from typing import Any

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.core import flows, neighbours
from controller.core.actions import ReleaseUplink
from controller.core.fa_conf import ForeignAgentConf, NeighbourPort
from controller.core.handover import HandoverLog
from controller.core.visitors import Visitor
from controller.core.vpn import VpnInfo
from controller.runtime import settings
from controller.runtime.held_uplink import HeldUplinks

MN = "02:00:00:00:01:00"
OTHER = "02:00:00:00:01:01"
FA1_MAC, FA2_MAC = "02:00:00:00:21:01", "02:00:00:00:22:01"
ACC2 = 0x2
NAI = "alice@home.example"
TUNNEL = "alice_home.example/ha-fa2"
REDIRECT = (flows.FlowMod("add", flows.redirect_flow(MN, FA1_MAC, FA2_MAC, 1,
                                                     flows.mn_cookie(MN))),)


@pytest.fixture(autouse=True)
def _child_sa_made_at_the_move(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hold is for a neighbour whose CHILD_SA is made at the move: with a standing
    one (the default) the uplink is not held (``test_uplink_standing.py``)."""
    monkeypatch.setattr(neighbours, "STANDING_CHILD_SA", False)


def raw(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def frame(seq: int, src: str = MN, dst: str = FA1_MAC) -> bytes:
    return raw(dst) + raw(src) + b"\x08\x00" + b"E" + bytes(19) + seq.to_bytes(4, "big")


def _conf(name: str, mac: str, dpid: int,
          neighbours: tuple[NeighbourPort, ...]) -> ForeignAgentConf:
    # the core's own types, not look-alikes: its compiled build checks them (issue 15)
    return ForeignAgentConf(name, f"{name}.a.example", "a.example", "10.0.0.11", "10.1.0.1",
                            mac, dpid, 1, max_pending=8, max_pending_age=5.0,
                            neighbours=neighbours)


def roles(seamless: bool = True) -> dict[str, Any]:
    info = VpnInfo(NAI, "10.10.0.100", "ha", "fa1", (), seamless_handover=seamless)
    visitor = Visitor(NAI, "10.10.0.100", "ha", MN, 1, info, 300, 1e12)
    fa1 = SimpleNamespace(conf=_conf("fa1", FA1_MAC, 0x1,
                                     (NeighbourPort("fa2", ACC2, 1, FA2_MAC),)),
                          visitors={NAI: visitor})
    fa2 = SimpleNamespace(conf=_conf("fa2", FA2_MAC, ACC2, ()), visitors={})
    return {"fa:fa1": fa1, "fa:fa2": fa2}


class Rig:
    def __init__(self, seamless: bool = True) -> None:
        self.loop = asyncio.new_event_loop()
        self.wire: list[Any] = []        # packet-outs and flow-mods, in sending order
        self.up: set[str] = set()        # tunnels the runtime saw established
        self.gateway_up = False          # what the gateway answers when asked
        self.counters: dict[str, int] = {}
        self.handovers = HandoverLog()
        dp = SimpleNamespace(ofproto_parser=parser, ofproto=ofp, id=ACC2,
                             send_msg=self.wire.append)

        async def established(gw: str, tunnel_id: str, timeout: float) -> bool:
            end = time.monotonic() + timeout
            while not self.gateway_up and time.monotonic() < end:
                await asyncio.sleep(0.005)
            return self.gateway_up

        async def send_flows(dpid: int, mods: tuple[flows.Mod, ...]) -> None:
            self.wire.append(("flows", dpid, mods))
            await asyncio.sleep(0.01)    # the barrier's round trip

        self.held = HeldUplinks(roles(seamless), self.counters, {ACC2: dp},
                                lambda gw, tid: tid in self.up, established, send_flows,
                                lambda c: self.loop.create_task(c), self.handovers)

    def punt(self, data: bytes, at: float | None = None) -> bool:
        async def go() -> bool:
            return self.held.frame(ACC2, data, time.monotonic() if at is None else at)
        return self.loop.run_until_complete(go())

    def release(self) -> None:
        async def go() -> None:
            self.held.release(ReleaseUplink("fa2", ACC2, MN, NAI, (TUNNEL,), REDIRECT,
                                            FA1_MAC))
        self.loop.run_until_complete(go())

    def settle(self, s: float = 0.1) -> None:
        self.loop.run_until_complete(asyncio.sleep(s))

    def outs(self) -> list[Any]:
        return [m for m in self.wire if not isinstance(m, tuple)]


@pytest.fixture
def rig(monkeypatch: Any) -> Any:
    monkeypatch.setattr(settings, "HOLD_UPLINK_GRACE", 0.0)
    r = Rig()
    yield r
    r.loop.close()


def test_held_until_the_tunnel_then_in_order_before_the_redirect(rig: Rig) -> None:
    for seq in range(30):
        assert rig.punt(frame(seq))
    # not the MN's uplink: left to the caller (an agent solicitation, say)
    assert not rig.punt(frame(99, src=OTHER))
    assert not rig.punt(frame(98, dst=FA2_MAC))
    assert rig.wire == [] and rig.counters["uplink_held"] == 30
    assert rig.counters["uplink_refused"] == 1    # the core asked once
    rig.up.add(TUNNEL)
    rig.handovers.mark(NAI, "rrq_at_fa", time.monotonic(), {"fa": "fa2"})
    rig.release()
    # in the walk: the held frames are out before release() returns (before the reply)
    assert len(rig.outs()) == 30
    assert rig.punt(frame(30))            # punted before the switch took the redirect
    rig.settle()
    outs = rig.outs()
    assert len(outs) == 31 and rig.counters["uplink_forwarded"] == 31
    for seq, msg in enumerate(outs):
        assert msg.actions[0].port == 1 and msg.buffer_id == ofp.OFP_NO_BUFFER
        # to the new FA's MAC, from the MN's, the IP packet untouched, in order
        assert msg.data == raw(FA2_MAC) + frame(seq)[6:]
    # the redirect after the held frames (a frame it passes comes after them)
    assert rig.wire.index(("flows", ACC2, REDIRECT)) == 30
    assert rig.held.holds == {}
    marks = rig.handovers.open[NAI].marks
    assert marks["uplink_held_first"] <= marks["uplink_released"]


def test_a_tunnel_not_seen_up_is_asked_for_meanwhile_held(rig: Rig) -> None:
    rig.punt(frame(0))
    rig.release()                      # the tunnel's state unknown here: ask
    rig.settle(0.03)
    rig.punt(frame(1))
    assert rig.outs() == [] and rig.counters["uplink_held"] == 2
    rig.gateway_up = True
    rig.settle()
    assert [m.data[-4:] for m in rig.outs()] == [bytes([0, 0, 0, 0]), bytes([0, 0, 0, 1])]
    assert rig.wire[-1] == ("flows", ACC2, REDIRECT)


def test_no_tunnel_drops_and_still_redirects(rig: Rig, monkeypatch: Any) -> None:
    monkeypatch.setattr(settings, "HOLD_TUNNEL_WAIT", 0.05)
    for seq in range(5):
        rig.punt(frame(seq))
    rig.release()
    rig.settle(0.2)
    assert rig.outs() == [] and rig.counters["uplink_dropped_unreleased"] == 5
    assert rig.wire == [("flows", ACC2, REDIRECT)] and rig.held.holds == {}


def test_bounds_frames_age_and_time_without_a_release(rig: Rig, monkeypatch: Any) -> None:
    monkeypatch.setattr(settings, "HOLD_MAX_FRAMES", 10)
    monkeypatch.setattr(settings, "HOLD_TUNNEL_WAIT", 0.05)
    old = time.monotonic() - settings.HOLD_MAX_AGE - 0.5
    rig.punt(frame(0), at=old)
    for seq in range(1, 15):
        rig.punt(frame(seq))
    buf = rig.held.holds[(ACC2, MN)]
    assert len(buf.frames) == 10 and rig.counters["uplink_dropped_overflow"] == 5
    # no release in HOLD_TUNNEL_WAIT (the MN registered elsewhere, or a spoofer): gone
    rig.settle(0.1)
    assert rig.held.holds == {} and rig.counters["uplink_dropped_unreleased"] == 10
    # age: a frame older than HOLD_MAX_AGE is dropped, not forwarded
    rig.punt(frame(20), at=old)
    rig.punt(frame(21))
    rig.up.add(TUNNEL)
    rig.release()
    rig.settle()
    assert rig.counters["uplink_dropped_expired"] == 1
    assert [m.data[-1] for m in rig.outs()] == [21]


def test_a_release_without_frames_only_redirects(rig: Rig) -> None:
    rig.up.add(TUNNEL)
    rig.release()
    rig.settle()
    assert rig.wire == [("flows", ACC2, REDIRECT)] and rig.held.holds == {}


def test_without_the_option_nothing_is_held() -> None:
    r = Rig(seamless=False)
    try:
        assert not r.punt(frame(0))
        assert r.held.holds == {} and r.counters["uplink_held"] == 0
    finally:
        r.loop.close()


def test_the_switches_hand_the_uplink_over_not_to_the_solicitation_path(
        tmp_path: Any) -> None:
    """Through ``Runtime.packet_in``: a recognised frame is held (no advertisement
    sent back), counted in ``mipvpn_held_uplink_frames_total``; another frame still
    gets the answer to a solicitation."""
    from controller.config import load_topology
    from controller.runtime import Runtime
    from tests.unit.harness import DEFAULT_TOPOLOGY
    from tests.unit.runtime.test_held_downlink import FakeGateway

    r = Runtime(load_topology(DEFAULT_TOPOLOGY), tmp_path, ":memory:", rest=None,
                gateway_factory=lambda name: FakeGateway(), advertise=False,
                persist=False, flow_sink=lambda dpid, mods: None)
    try:
        fa1, fa2 = r.fa("fa1"), r.fa("fa2")
        assert any(n.name == "fa2" for n in fa1.conf.neighbours)
        fa1.visitors[NAI] = dataclasses.replace(roles()["fa:fa1"].visitors[NAI],
                                                expires=time.time() + 300)
        msgs: list[Any] = []
        dp = SimpleNamespace(ofproto_parser=parser, ofproto=ofp,
                             id=fa2.conf.access_dpid, send_msg=msgs.append)
        r.datapaths[dp.id] = dp
        r.packet_in(dp.id, 3, frame(0, dst=fa1.conf.inside_mac))
        r.packet_in(dp.id, 3, frame(1, src=OTHER, dst=fa1.conf.inside_mac))

        async def idle() -> None:
            await asyncio.sleep(0.05)
        r.loop.run_until_complete(idle())
        assert r.counters["uplink_held"] == 1 and r.counters["uplink_refused"] == 1
        assert len(msgs) == 1           # the advertisement answering the other frame
        text = r.metrics.exposition(r).decode()
        assert 'mipvpn_held_uplink_frames_total{outcome="held"} 1.0' in text
    finally:
        for ex in [*r._gw_exec.values(), r._watch_exec]:
            ex.shutdown(wait=False)
        r.loop.close()


def test_held_for_the_grace_after_the_tunnel_is_up(rig: Rig, monkeypatch: Any) -> None:
    """The first packets cross a new CHILD_SA some ms after its initiator reports it
    up: the frames stay held for ``HOLD_UPLINK_GRACE``, then go in order."""
    monkeypatch.setattr(settings, "HOLD_UPLINK_GRACE", 0.05)
    rig.punt(frame(0))
    rig.up.add(TUNNEL)
    rig.handovers.mark(NAI, "rrq_at_fa", time.monotonic(), {"fa": "fa2"})
    rig.release()
    rig.handovers.mark(NAI, "rrp_sent", time.monotonic(), {"accepted": True})
    rig.settle(0.02)
    rig.punt(frame(1))
    assert rig.outs() == [] and rig.counters["uplink_held"] == 2
    rig.settle(0.1)
    assert [m.data[-1] for m in rig.outs()] == [0, 1]
    assert rig.wire[-1] == ("flows", ACC2, REDIRECT) and rig.held.holds == {}
    # the move's record (closed by the reply meanwhile) still gets the marks
    marks = rig.handovers.records[-1].marks
    assert marks["rrp_sent"] < marks["uplink_released"]


def test_the_l4_checksum_is_completed() -> None:
    """A frame punted from the MN's own stack carries a partial checksum (offload);
    forwarded, it gets the full one (a correct one stays as it is)."""
    from os_ken.lib.packet import ethernet, icmp, ipv4, packet, udp

    from controller.runtime.held_uplink import l4_checksum_fixed

    def build(l4: object, proto: int) -> bytes:
        pkt = packet.Packet()
        pkt.add_protocol(ethernet.ethernet(dst=FA1_MAC, src=MN, ethertype=0x0800))
        pkt.add_protocol(ipv4.ipv4(src="10.10.0.5", dst="10.30.0.10", proto=proto))
        pkt.add_protocol(l4)
        if proto == 17:
            pkt.add_protocol(b"probe" * 9)
        pkt.serialize()
        return bytes(pkt.data)

    for good, where in ((build(udp.udp(40000, 5001), 17), 14 + 20 + 6),
                        (build(icmp.icmp(data=icmp.echo(1, 2, b"x" * 11)), 1), 14 + 20 + 2)):
        assert l4_checksum_fixed(good) == good
        partial = good[:where] + b"\x12\x34" + good[where + 2:]
        assert l4_checksum_fixed(partial) == good
    assert l4_checksum_fixed(frame(1)[:20]) == frame(1)[:20]
