"""Issue 14: when a port comes up at an FA's access switch (OpenFlow port-status), the
FA's Agent Advertisement goes out of that port at once, not at the next periodic one
(the runtime here runs none: ``advertise=False``), so a moved MN sends its
Registration Request within a millisecond of its link.  Fake datapath, no root."""

from __future__ import annotations

from typing import Any

from os_ken.lib.packet import ethernet, ipv4, packet
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.proto import mip
from tests.unit.runtime.test_held_downlink import rt, settle  # noqa: F401  (fixture)


def test_an_access_port_coming_up_gets_the_fas_advertisement(rt: Any) -> None:  # noqa: F811
    fa = rt.test.fa
    rt.port_added(rt.test.dpid, 3)
    settle(rt)
    (msg,) = rt.test.msgs
    assert isinstance(msg, parser.OFPPacketOut)
    assert [a.port for a in msg.actions] == [3]            # out of the port that came up
    pkt = packet.Packet(msg.data)
    assert pkt.get_protocol(ethernet.ethernet).src == fa.conf.inside_mac
    assert pkt.get_protocol(ipv4.ipv4).src == fa.conf.inside_address
    adv = mip.decode_icmp(bytes(msg.data)[14 + 20:])     # after Ethernet and IPv4
    assert isinstance(adv, mip.AgentAdvertisement) and adv.is_foreign_agent
    assert adv.care_of_addresses == [fa.conf.core_address]
    assert rt.counters["adverts"] == 1


def test_the_fas_own_port_and_other_switches_get_none(rt: Any) -> None:  # noqa: F811
    rt.port_added(rt.test.dpid, rt.test.fa.conf.fa_port)   # the FA's link, not an MN's
    rt.port_added(0x101, 3)                                 # a core switch
    settle(rt)
    assert rt.test.msgs == [] and rt.counters["adverts"] == 0
