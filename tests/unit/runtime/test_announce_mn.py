"""Issue 14: ``AnnounceMobileNode`` is an ARP reply from the MN (its MAC, its home
address) to the FA's inside MAC and address, sent out of the FA's access port: the
FA's kernel takes it as the answer to a resolution it started (or updates a stale
entry), without waiting for its next ARP retransmission.  Checked with scapy's
decoder.  Fake datapath, no root."""

from __future__ import annotations

from typing import Any

from os_ken.ofproto import ofproto_v1_3_parser as parser
from scapy.layers.l2 import ARP, Ether

from controller.core.actions import AnnounceMobileNode
from tests.unit.runtime.test_held_downlink import rt, run, settle  # noqa: F401  (fixture)

MN = "02:00:00:00:01:00"
HOME = "10.10.0.100"


def test_the_fa_gets_an_arp_reply_from_the_mn(rt: Any) -> None:  # noqa: F811
    fa = rt.test.fa
    run(rt, [AnnounceMobileNode("fa1", MN, HOME)])
    settle(rt)
    (msg,) = rt.test.msgs
    assert isinstance(msg, parser.OFPPacketOut)
    assert [a.port for a in msg.actions] == [fa.conf.fa_port]
    frame = Ether(bytes(msg.data))
    assert frame.src == MN and frame.dst == fa.conf.inside_mac and frame.type == 0x0806
    arp = frame[ARP]
    assert (arp.op, arp.hwtype, arp.ptype, arp.hwlen, arp.plen) == (2, 1, 0x0800, 6, 4)
    assert (arp.hwsrc, arp.psrc) == (MN, HOME)
    assert (arp.hwdst, arp.pdst) == (fa.conf.inside_mac, fa.conf.inside_address)


def test_an_fa_whose_switch_is_not_connected_sends_nothing(rt: Any) -> None:  # noqa: F811
    rt.datapaths.clear()
    run(rt, [AnnounceMobileNode("fa1", MN, HOME)])
    settle(rt)
    assert rt.test.msgs == []
