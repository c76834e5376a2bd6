"""Issue 14 residual, on a real OVS userspace switch: the punt of a held MN's uplink
(``flows.prepare_mn`` with ``hold_uplink``) goes through its pkt/s meter, so a host
that floods frames with the MN's MAC to its previous FA's MAC reaches the controller
at most at the meter's rate (plus its burst).  The same flood through the punt without
the meter (the flow before this change) reaches it several times more often: the
bound is the meter's.

The flows and the meter are the controller's own messages (``openflow.flow_mod_msgs``)
sent by a minimal OpenFlow 1.3 endpoint in this test, which counts the packet-ins.
Root, own network namespace and private OVS; numbers are printed (``pytest -s``) and
recorded in docs/security.md."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.integration.netns import can_unshare, in_netns

pytestmark = pytest.mark.integration

needs_ovs = pytest.mark.skipif(
    os.geteuid() != 0 or not can_unshare() or shutil.which("ovs-vsctl") is None,
    reason="needs root, network namespaces and Open vSwitch")

MN = "02:00:00:00:01:00"
FA1_MAC, FA2_MAC = "02:00:00:00:21:01", "02:00:00:00:22:01"
FA_PORT, IN_PORT = 1, 2
FLOOD_PPS, FLOOD_S = 20_000, 2.0
OFPT_HELLO, OFPT_ERROR, OFPT_ECHO_REQUEST, OFPT_ECHO_REPLY = 0, 1, 2, 3
OFPT_PACKET_IN, OFPT_BARRIER_REPLY = 10, 21


class Endpoint:
    """The controller's side of one OpenFlow 1.3 connection: hello, echo, counts the
    packet-ins (of the flood's source MAC), keeps errors and barrier replies."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None
        self.packet_ins = 0
        self.errors: list[bytes] = []
        self.barriers: set[int] = set()
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn, _ = self.server.accept()
        self.conn = conn
        conn.sendall(struct.pack("!BBHI", 4, OFPT_HELLO, 8, 1))
        buf = b""
        mn = bytes.fromhex(MN.replace(":", ""))
        while True:
            try:
                data = conn.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            buf += data
            while len(buf) >= 8:
                _v, kind, length, xid = struct.unpack("!BBHI", buf[:8])
                if len(buf) < length:
                    break
                msg, buf = buf[:length], buf[length:]
                if kind == OFPT_HELLO:
                    self.connected.set()
                elif kind == OFPT_ECHO_REQUEST:
                    conn.sendall(struct.pack("!BBHI", 4, OFPT_ECHO_REPLY, length, xid)
                                 + msg[8:])
                elif kind == OFPT_PACKET_IN and mn in msg:
                    self.packet_ins += 1
                elif kind == OFPT_ERROR:
                    self.errors.append(msg)
                elif kind == OFPT_BARRIER_REPLY:
                    self.barriers.add(xid)

    def send(self, msgs: list[Any]) -> None:
        """os-ken messages, then a barrier, awaited."""
        from os_ken.ofproto import ofproto_v1_3_parser as parser
        assert self.conn is not None
        xid = 100 + len(self.barriers)
        for i, msg in enumerate(msgs + [parser.OFPBarrierRequest(msgs[0].datapath)]):
            msg.set_xid(xid + i)
            msg.serialize()
            self.conn.sendall(bytes(msg.buf))
        last = xid + len(msgs)
        deadline = time.monotonic() + 5
        while last not in self.barriers and time.monotonic() < deadline:
            time.sleep(0.01)
        assert last in self.barriers, "no barrier reply"
        assert not self.errors, [e.hex() for e in self.errors]

    def close(self) -> None:
        for s in (self.conn, self.server):
            if s is not None:
                s.close()


def flood(ifname: str, pps: int, seconds: float) -> int:
    """Frames from the MN's MAC to its previous FA's, ``pps`` a second, paced per ms."""
    frame = (bytes.fromhex(FA1_MAC.replace(":", "")) + bytes.fromhex(MN.replace(":", ""))
             + b"\x08\x00" + bytes(46))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((ifname, 0))
    sent = 0
    t0 = time.monotonic()
    try:
        while (now := time.monotonic() - t0) < seconds:
            due = int(now * pps) + 1
            while sent < due:
                try:
                    sock.send(frame)
                except BlockingIOError:
                    break
                sent += 1
            time.sleep(0.0005)
    finally:
        sock.close()
    return sent


def count_punted(ep: Endpoint) -> tuple[int, int]:
    before = ep.packet_ins
    sent = flood("pmh", FLOOD_PPS, FLOOD_S)
    time.sleep(1.0)                   # what is queued drains
    return sent, ep.packet_ins - before


@needs_ovs
@in_netns(timeout=180)
def test_a_flood_on_the_punt_reaches_the_controller_at_the_meter_rate(tmp_path: Path
                                                                      ) -> None:
    from os_ken.ofproto import ofproto_v1_3 as ofp
    from os_ken.ofproto import ofproto_v1_3_parser as parser

    from controller.adapters import openflow
    from controller.core import flows
    from mininet_scripts.ovs import PrivateOvs

    dp = SimpleNamespace(ofproto_parser=parser, ofproto=ofp, id=1)
    meter = flows.punt_meter_id(0, 5)
    prepared = flows.prepare_mn(MN, "fa1", FA1_MAC, FA2_MAC, FA_PORT, True, meter)
    ep = Endpoint()
    with PrivateOvs(tmp_path / "ovs") as ovs:
        try:
            ovs.vsctl("add-br", "pm0", "--", "set", "Bridge", "pm0", "datapath_type=netdev",
                      "protocols=OpenFlow13", "fail_mode=secure")
            subprocess.run("ip link add pmh type veth peer name pms && ip link set pmh up"
                           " && ip link set pms up", shell=True, check=True)
            ovs.vsctl("add-port", "pm0", "pms", "--", "set", "Interface", "pms",
                      f"ofport_request={IN_PORT}")
            ovs.vsctl("set-controller", "pm0", f"tcp:127.0.0.1:{ep.port}")
            assert ep.connected.wait(10), "the switch did not connect"
            ep.send(openflow.flow_mod_msgs(dp, prepared))
            dump = ovs.ofctl("-O", "OpenFlow13", "dump-meters", "pm0")
            assert f"meter={meter} pktps burst stats" in dump, dump
            sent, metered = count_punted(ep)
            # the punt before this change: the same flow without its meter
            (punt,) = [m for m in prepared if isinstance(m, flows.FlowMod)
                       and m.flow.priority == flows.PRIO_REDIRECT]
            ep.send(openflow.flow_mod_msgs(dp, (replace(punt, flow=replace(
                punt.flow, meter=0)),)))
            sent_free, free = count_punted(ep)
        finally:
            ep.close()
            subprocess.run(["ip", "link", "del", "pmh"], capture_output=True, check=False)
            ovs.vsctl("--if-exists", "del-br", "pm0", check=False)
    bound = flows.PUNT_METER_BURST_PKTS + flows.PUNT_METER_PKTPS * FLOOD_S
    load = os.getloadavg()
    print(f"\npunt flood {FLOOD_PPS} pkt/s for {FLOOD_S} s: sent {sent}, packet-ins "
          f"{metered} with the meter (bound {bound:.0f}); without it sent {sent_free}, "
          f"packet-ins {free}; load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    assert sent >= 0.8 * FLOOD_PPS * FLOOD_S and sent_free >= 0.8 * FLOOD_PPS * FLOOD_S
    assert 0.5 * flows.PUNT_METER_PKTPS * FLOOD_S <= metered <= 1.1 * bound
    assert free >= 2 * metered
