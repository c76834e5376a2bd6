"""The runtime's side of holding a departed MN's downlink (smooth handoff, claims
22-23): the bounded per-MN buffer fed by packet-ins, its flush into the old FA once the
forwarding tunnel is up, and the drops (overflow, age, no tunnel), counted and exported.
No root: a fake datapath records the packet-outs, a fake gateway reports tunnel state."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.runtime import settings as runtime_mod
from controller.adapters.gateway import GatewayDriverBase
from controller.config import load_topology
from controller.core import flows
from controller.core.actions import DeliverHeld, HoldTraffic, ReleaseHold
from controller.runtime import Runtime
from tests.unit.harness import DEFAULT_TOPOLOGY

MN = "02:00:00:00:01:00"
OTHER = "02:00:00:00:02:00"
NAI = "alice@home.example"


class FakeGateway(GatewayDriverBase):
    def __init__(self) -> None:
        self.up = True
        self.asked: list[str] = []

    def tunnel(self, tunnel_id: str) -> Any:
        self.asked.append(tunnel_id)
        return SimpleNamespace(established=self.up)


def frame(dst: str, seq: int, src: str = "02:00:00:00:00:11") -> bytes:
    mac = bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", ""))
    return mac + b"\x08\x00" + b"E" + bytes(19) + seq.to_bytes(4, "big")


@pytest.fixture
def rt(tmp_path: Any) -> Any:
    sent: list[tuple[int, tuple[flows.Mod, ...]]] = []
    gws: dict[str, FakeGateway] = {}
    r = Runtime(load_topology(DEFAULT_TOPOLOGY), tmp_path, ":memory:", rest=None,
                gateway_factory=lambda name: gws.setdefault(name, FakeGateway()),
                advertise=False, persist=False,
                flow_sink=lambda dpid, mods: sent.append((dpid, mods)))
    fa = r.fa("fa1")
    msgs: list[Any] = []
    dp = SimpleNamespace(ofproto_parser=parser, ofproto=ofp, id=fa.conf.access_dpid,
                         send_msg=msgs.append)
    r.datapaths[dp.id] = dp
    r.test = SimpleNamespace(sent=sent, msgs=msgs, gws=gws, fa=fa, dpid=dp.id)
    yield r
    for ex in [*r._gw_exec.values(), r._watch_exec]:
        ex.shutdown(wait=False)
    r.loop.close()


def run(r: Any, actions: list[Any]) -> None:
    r.loop.run_until_complete(r.execute("fa:fa1", actions))


def settle(r: Any) -> None:
    """Let what os-ken's thread handed over and the spawned tasks run."""
    async def idle() -> None:
        for _ in range(200):
            if not r._tasks:
                break
            await asyncio.sleep(0.01)
    r.loop.run_until_complete(idle())


def punt(r: Any, data: bytes, in_port: int | None = None) -> None:
    fa = r.test.fa
    r.packet_in(r.test.dpid, fa.conf.fa_port if in_port is None else in_port, data)


def release(r: Any, forward: bool = True, tunnel: str = "alice_home.example/fa1-fa2"
            ) -> ReleaseHold:
    return ReleaseHold("fa1", r.test.dpid, MN, forward, tunnel, flows.release_hold(MN))


def test_held_frames_go_to_the_fa_once_the_tunnel_is_up(rt: Any) -> None:
    fa = rt.test.fa
    run(rt, [HoldTraffic("fa1", rt.test.dpid, MN, NAI)])
    for seq in range(50):
        punt(rt, frame(MN, seq))
    punt(rt, frame(OTHER, 99))           # not held: not an MN of a hold
    settle(rt)
    assert rt.counters["held_frames"] == 50 and rt.test.msgs == []
    rt.test.gws["fa1"].up = False
    run(rt, [release(rt)])
    rt.loop.run_until_complete(asyncio.sleep(0.05))
    assert rt.test.msgs == []            # waits for the forwarding tunnel's CHILD_SA
    for seq in range(50, 60):            # still held meanwhile
        punt(rt, frame(MN, seq))
    rt.test.gws["fa1"].up = True
    settle(rt)
    assert rt.test.gws["fa1"].asked[-1] == "alice_home.example/fa1-fa2"
    outs = rt.test.msgs
    assert len(outs) == 60 and rt.counters["held_forwarded"] == 60
    inside = bytes.fromhex(fa.conf.inside_mac.replace(":", ""))
    for seq, msg in enumerate(outs):
        assert msg.actions[0].port == fa.conf.fa_port and msg.buffer_id == ofp.OFP_NO_BUFFER
        # to the FA's inside MAC, from the MN's, the IP packet untouched, in order
        assert msg.data[:6] == inside and msg.data[6:12] == bytes.fromhex(MN.replace(":", ""))
        assert msg.data[12:] == frame(MN, seq)[12:]
    assert rt.test.sent == [(rt.test.dpid, flows.release_hold(MN))]   # punt removed after
    assert rt.holds == {}
    punt(rt, frame(MN, 100))             # punted after the release: ignored
    settle(rt)
    assert len(rt.test.msgs) == 60 and rt.counters["held_frames"] == 60
    text = rt.metrics.exposition(rt).decode()
    assert 'mipvpn_held_downlink_frames_total{outcome="forwarded"} 60.0' in text


def test_bounds_overflow_and_age(rt: Any, monkeypatch: Any) -> None:
    run(rt, [HoldTraffic("fa1", rt.test.dpid, MN, NAI)])
    buf = rt.holds[(rt.test.dpid, MN)]
    old = time.monotonic() - runtime_mod.HOLD_MAX_AGE - 0.5
    for seq in range(10):                # too old by the time they could go on
        rt._held_frame(rt.test.dpid, frame(MN, seq), old)
    for seq in range(10, runtime_mod.HOLD_MAX_FRAMES + 25):
        rt._held_frame(rt.test.dpid, frame(MN, seq), time.monotonic())
    assert len(buf.frames) == runtime_mod.HOLD_MAX_FRAMES
    assert rt.counters["held_dropped_overflow"] == 25    # the oldest made room
    run(rt, [release(rt)])
    settle(rt)
    assert rt.counters["held_forwarded"] == runtime_mod.HOLD_MAX_FRAMES
    assert rt.counters["held_dropped_expired"] == 0      # the old ones went first
    # age: frames held longer than HOLD_MAX_AGE are dropped, not forwarded
    run(rt, [HoldTraffic("fa1", rt.test.dpid, MN, NAI)])
    rt._held_frame(rt.test.dpid, frame(MN, 1), old)
    rt._held_frame(rt.test.dpid, frame(MN, 2), time.monotonic())
    run(rt, [release(rt)])
    settle(rt)
    assert rt.counters["held_dropped_expired"] == 1
    assert rt.counters["held_forwarded"] == runtime_mod.HOLD_MAX_FRAMES + 1


def test_no_tunnel_or_no_bu_drops(rt: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(runtime_mod, "HOLD_TUNNEL_WAIT", 0.05)
    run(rt, [HoldTraffic("fa1", rt.test.dpid, MN, NAI)])
    for seq in range(5):
        punt(rt, frame(MN, seq))
    rt.test.gws["fa1"].up = False
    run(rt, [release(rt)])
    settle(rt)
    assert rt.test.msgs == [] and rt.counters["held_dropped_released"] == 5
    assert rt.test.sent == [(rt.test.dpid, flows.release_hold(MN))] and rt.holds == {}
    # the hold expired at the FA (no BU): dropped at once, the punt removed
    run(rt, [HoldTraffic("fa1", rt.test.dpid, MN, NAI)])
    for seq in range(3):
        punt(rt, frame(MN, seq))
    settle(rt)
    run(rt, [release(rt, forward=False, tunnel="")])
    settle(rt)
    assert rt.test.msgs == [] and rt.counters["held_dropped_released"] == 8
    assert len(rt.test.sent) == 2 and rt.holds == {}


def test_port_removed_reaches_the_fa(rt: Any) -> None:
    """os-ken's port-status delete -> ``Runtime.port_removed`` -> the FA's
    ``on_port_down``: a smooth-handoff visitor on that port gets a hold and its punt."""
    from controller.core.visitors import Visitor
    from controller.core.vpn import VpnInfo

    fa = rt.test.fa
    fa.visitors[NAI] = Visitor(NAI, "10.10.0.100", "10.0.0.1", MN, 2,
                               VpnInfo(NAI, "10.10.0.100", "ha", "fa1", (), smooth_handoff=True), 1800, 1e12)
    rt.port_removed(rt.test.dpid, 2)
    settle(rt)
    assert (rt.test.dpid, MN) in rt.holds and NAI in fa.holds
    assert rt.test.sent == [(rt.test.dpid, flows.hold_mn(MN, fa.conf.fa_port))]


def test_waits_for_the_peers_inbound_sa(rt: Any) -> None:
    """The old FA is the forwarding tunnel's responder: its CHILD_SA is up before the
    new FA (initiator) has installed its inbound SA; the flush waits for both."""
    run(rt, [HoldTraffic("fa1", rt.test.dpid, MN, NAI)])
    for seq in range(5):
        punt(rt, frame(MN, seq))
    rt.test.gws["fa2"] = rt.gateways["fa2"]
    rt.gateways["fa2"].up = False
    action = ReleaseHold("fa1", rt.test.dpid, MN, True, "alice_home.example/fa1-fa2",
                         flows.release_hold(MN), peer="fa2")
    run(rt, [action])
    rt.loop.run_until_complete(asyncio.sleep(0.05))
    assert rt.test.msgs == [] and rt.gateways["fa2"].asked
    rt.gateways["fa2"].up = True
    settle(rt)
    assert len(rt.test.msgs) == 5 and rt.holds == {}


def test_port_events_go_into_the_next_handover_record(rt: Any) -> None:
    """Issue 14: the old port's port-status delete (for the visitor the FA had there),
    the new port's add and the advertisement sent out of it are the first marks of the
    record the MN's registration on that port opens."""
    from controller.core.visitors import Visitor
    from controller.core.vpn import VpnInfo

    fa = rt.test.fa
    fa.visitors[NAI] = Visitor(NAI, "10.10.0.100", "10.0.0.1", MN, 2,
                               VpnInfo(NAI, "10.10.0.100", "ha", "fa1", ()), 1800, 1e12)
    rt.port_removed(rt.test.dpid, 2)
    rt.port_added(rt.test.dpid, 3)
    settle(rt)
    assert len(rt.test.msgs) == 1        # the advertisement out of port 3
    rt.handovers.mark(NAI, "rrq_at_fa", time.monotonic(),
                      {"fa": "fa1", "port": 3, "previous_fa": "fa2"})
    marks = rt.handovers.records[-1].marks
    assert marks["link_down"] <= marks["link_up"] <= marks["advertisement_sent"] \
        <= marks["rrq_at_fa"]


def new_fa(rt: Any) -> tuple[Any, list[Any]]:
    """fa2 with a fake access switch of its own: (its role, its packet-outs)."""
    fa2 = rt.fa("fa2")
    msgs2: list[Any] = []
    rt.datapaths[fa2.conf.access_dpid] = SimpleNamespace(
        ofproto_parser=parser, ofproto=ofp, id=fa2.conf.access_dpid, send_msg=msgs2.append)
    return fa2, msgs2


def test_delivered_early_the_held_frames_go_to_the_mn_at_the_new_fa(rt: Any) -> None:
    """Issue 14: ``DeliverHeld`` (the new FA's AAA accepted the seamless MN there): what
    the old FA's switch held for it goes out at the new FA's switch, on the MN's port,
    to its MAC, from the new FA's inside MAC, at once; frames punted later follow at
    once.  The hold's own end is unchanged: once the forwarding tunnel is up the punt
    goes and the hold with it (nothing left to hand to the old FA)."""
    fa2, msgs2 = new_fa(rt)
    port = 7
    run(rt, [HoldTraffic("fa1", rt.test.dpid, MN, NAI)])
    for seq in range(5):
        punt(rt, frame(MN, seq))
    punt(rt, frame(OTHER, 99))
    settle(rt)
    assert msgs2 == []
    run(rt, [DeliverHeld("fa2", fa2.conf.access_dpid, port, MN.upper(), NAI)])
    punt(rt, frame(MN, 5))
    settle(rt)
    assert len(msgs2) == 6 and rt.test.msgs == []
    inside = bytes.fromhex(fa2.conf.inside_mac.replace(":", ""))
    mn = bytes.fromhex(MN.replace(":", ""))
    for seq, msg in enumerate(msgs2):
        assert msg.actions[0].port == port and msg.buffer_id == ofp.OFP_NO_BUFFER
        assert msg.data[:6] == mn and msg.data[6:12] == inside
        assert msg.data[12:] == frame(MN, seq)[12:]
    assert rt.counters["held_delivered"] == 6
    rt.test.gws["fa1"].up = False
    run(rt, [release(rt)])
    rt.loop.run_until_complete(asyncio.sleep(0.05))
    punt(rt, frame(MN, 6))                  # the tunnel not up yet: still to the MN
    rt.loop.run_until_complete(asyncio.sleep(0.05))
    assert len(msgs2) == 7 and rt.test.sent == []
    rt.test.gws["fa1"].up = True
    settle(rt)
    assert rt.test.msgs == [] and rt.holds == {}
    assert rt.test.sent == [(rt.test.dpid, flows.release_hold(MN))]


def test_delivered_early_only_for_that_mn_and_not_at_its_own_switch(rt: Any) -> None:
    """Another NAI, another MAC, or the holding switch itself: nothing is sent."""
    fa2, msgs2 = new_fa(rt)
    run(rt, [HoldTraffic("fa1", rt.test.dpid, MN, NAI)])
    punt(rt, frame(MN, 0))
    settle(rt)
    for action in (DeliverHeld("fa2", fa2.conf.access_dpid, 7, MN, "bob@home.example"),
                   DeliverHeld("fa2", fa2.conf.access_dpid, 7, OTHER, NAI),
                   DeliverHeld("fa1", rt.test.dpid, 7, MN, NAI)):
        run(rt, [action])
    settle(rt)
    assert msgs2 == [] and rt.test.msgs == [] and rt.counters["held_delivered"] == 0
    assert len(rt.holds[(rt.test.dpid, MN)].frames) == 1
