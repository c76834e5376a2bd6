"""os-ken app: a thin shim from OpenFlow events to the mipvpn runtime.

Only this module imports os-ken's app framework.  Each handler finds what the event is
about and hands it to the runtime, which runs the roles (FAUCET's shape).
"""

from __future__ import annotations

from typing import Any

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                       set_ev_cls)
from os_ken.ofproto import ofproto_v1_3

from controller import runtime


class MipvpnApp(app_manager.OSKenApp):  # type: ignore[misc]
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runtime = runtime.current()

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)  # type: ignore[misc]
    def switch_features(self, ev: Any) -> None:
        self.runtime.switch_connected(ev.msg.datapath)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)  # type: ignore[misc]
    def switch_dead(self, ev: Any) -> None:
        if ev.datapath.id is not None:
            self.runtime.switch_disconnected(ev.datapath.id)

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)  # type: ignore[misc]
    def packet_in(self, ev: Any) -> None:
        msg = ev.msg
        self.runtime.packet_in(msg.datapath.id, msg.match["in_port"], bytes(msg.data))

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)  # type: ignore[misc]
    def port_status(self, ev: Any) -> None:
        msg = ev.msg
        ofp = msg.datapath.ofproto
        link_up = not (msg.desc.state & ofp.OFPPS_LINK_DOWN)
        if msg.reason in (ofp.OFPPR_ADD, ofp.OFPPR_MODIFY) and link_up:
            self.runtime.port_added(msg.datapath.id, msg.desc.port_no)
        elif msg.reason == ofp.OFPPR_DELETE or (msg.reason == ofp.OFPPR_MODIFY
                                                 and not link_up):
            self.runtime.port_removed(msg.datapath.id, msg.desc.port_no)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)  # type: ignore[misc]
    def barrier_reply(self, ev: Any) -> None:
        self.runtime.barrier_reply(ev.msg.datapath.id, ev.msg.xid)

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)  # type: ignore[misc]
    def flow_stats_reply(self, ev: Any) -> None:
        msg = ev.msg
        more = bool(msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE)
        self.runtime.flow_stats_reply(msg.datapath.id, msg.xid, list(msg.body), more)
