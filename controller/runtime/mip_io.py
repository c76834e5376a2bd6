"""Mobile IPv4 I/O: one UDP endpoint per agent role on loopback, the FAs' ingress
for virtual MNs (load generator), agent advertisements, Registration Requests punted
from an access switch, and replies to a mobile node (packet-out or plain UDP)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Coroutine, Mapping

from controller.adapters import openflow
from controller.adapters.mip_transport import MipEndpoint
from controller.core import flows
from controller.core.actions import (AnnounceMobileNode, RelayToHomeAgent, SendMip,
                                     SendToMobileNode)
from controller.core.foreign_agent import ForeignAgent
from controller.proto import mip
from controller.runtime import settings
from controller.core.role import CNGW, FA, RoleKey, kind_of
from controller.runtime.lookup import fa_of_dpid, foreign_agents

LOG = logging.getLogger("mipvpn.runtime")


class MipIo:
    """``execute(role key, actions)``: the executor; ``spawn(coro)``: a task on the
    loop; ``now()``: the roles' clock; ``datapaths``: dpid -> connected switch (shared
    with ``Switches``); ``ha_by_address``: HA address -> name."""

    def __init__(self, roles: Mapping[str, Any], counters: dict[str, int],
                 datapaths: Mapping[int, Any], ha_by_address: Mapping[str, str], *,
                 execute: Callable[[str, list[Any]], Awaitable[Any]],
                 spawn: Callable[[Coroutine[Any, Any, Any]], None],
                 now: Callable[[], float], fa_ingress: bool) -> None:
        self.roles = roles
        self.counters = counters
        self.datapaths = datapaths
        self.ha_by_address = ha_by_address
        self.execute = execute
        self.spawn = spawn
        self.now = now
        self.fa_ingress = fa_ingress
        self._advert_seq: dict[str, int] = {}
        self.mip: dict[str, MipEndpoint] = {}
        self.ingress: dict[str, MipEndpoint] = {}
        self.virtual_mn: dict[tuple[str, str], tuple[str, int]] = {}

    async def open(self, home: Any) -> None:
        """One Mobile IPv4 UDP endpoint per local agent role (loopback); with
        ``fa_ingress`` each FA's ingress too."""
        for key in self.roles:
            if key == "ha":
                addr = (home.home_agent.mip_listen_host, home.home_agent.mip_listen_port)
            elif kind_of(key) in (FA, CNGW):
                addr = ("127.0.0.1", 0)
            else:
                continue
            self.mip[key] = await MipEndpoint.open(key, self.mip_handler(key), *addr)
            if self.fa_ingress and kind_of(key) == FA:
                self.ingress[key] = await MipEndpoint.open(
                    f"{key}/ingress", self.ingress_handler(key), "127.0.0.1", 0)

    def close(self) -> None:
        for ep in list(self.mip.values()) + list(self.ingress.values()):
            ep.close()

    def mip_handler(self, key: str) -> Any:
        async def handle(data: bytes, addr: tuple[str, int]) -> bytes | None:
            role = self.roles[key]
            now = self.now()
            if key == "ha" and data[:1] == bytes([mip.REGISTRATION_REQUEST]):
                actions = role.on_registration_request(now, data)
            else:
                actions = role.on_mip(now, data, self._sender_of(addr))
            reply = await self.execute(key, actions)
            return reply if isinstance(reply, bytes) else None
        return handle

    def _sender_of(self, addr: tuple[str, int]) -> str:
        for key, ep in self.mip.items():
            if ep.address == tuple(addr):
                return key
        return f"{addr[0]}:{addr[1]}"

    def ingress_handler(self, key: str) -> Any:
        """Registration Requests from virtual MNs over UDP (load generator)."""
        async def handle(data: bytes, addr: tuple[str, int]) -> bytes | None:
            fa = self.roles[key]
            mac = "02:00:00:00:00:00"
            try:
                home = str(getattr(mip.decode(data), "home_address", ""))
                self.virtual_mn[(fa.conf.name, home)] = addr
                # one MAC per virtual MN (from its home address), as real MNs have
                mac = "02:00:" + ":".join(f"{int(b):02x}" for b in home.split("."))
            except (mip.MipDecodeError, ValueError):
                pass
            actions = fa.on_registration_request(self.now(), data, mac, 0)
            await self.execute(key, actions)
            return None
        return handle

    async def send_mip(self, key: str, action: SendMip) -> bytes | None:
        src = self.mip.get(key)
        dst = self.mip.get(action.to)
        if src is None or dst is None:
            LOG.warning("%s: no Mobile IPv4 endpoint for %s", key, action.to)
            return None
        if not action.expect_reply:
            src.send(action.raw, dst.address)
            return None
        return await src.request(action.raw, dst.address)

    async def relay_to_ha(self, key: str, action: RelayToHomeAgent) -> bytes | None:
        if action.home_agent_address not in self.ha_by_address or "ha" not in self.mip:
            return None
        # the HA may wait for a Binding Acknowledge before it answers (claims 20, 21):
        # no early retransmission, which it would have to refuse as a replay
        src, dst = self.mip.get(key), self.mip["ha"]
        if src is None:
            return None
        return await src.request(action.raw, dst.address, timeout=2.0, tries=1)

    def send_to_mn(self, action: SendToMobileNode) -> None:
        if action.port == 0:  # a virtual MN of the load generator: plain UDP
            ep = self.ingress.get(RoleKey(FA, action.foreign_agent))
            addr = self.virtual_mn.pop((action.foreign_agent, action.mn_ip), None)
            if ep is not None and addr is not None:
                ep.send(action.raw, addr)
            return
        fa = self.roles[RoleKey(FA, action.foreign_agent)]
        dp = self.datapaths.get(fa.conf.access_dpid)
        if dp is None:
            LOG.warning("access switch of %s not connected", fa.conf.name)
            return
        frame = openflow.udp_frame(fa.conf.inside_mac, action.mn_mac, fa.conf.inside_address,
                                   action.mn_ip, mip.MIP_PORT, action.udp_port, action.raw)
        dp.send_msg(openflow.packet_out(dp, frame, action.port))

    def announce_mn(self, action: AnnounceMobileNode) -> None:
        """The MN's ARP reply to its new FA's IP stack, out of the FA's access port."""
        fa = self.roles[RoleKey(FA, action.foreign_agent)]
        dp = self.datapaths.get(fa.conf.access_dpid)
        if dp is None:      # the reply to the MN says so (or a load generator's MN)
            return
        frame = openflow.arp_reply_frame(action.mn_mac, action.home_address,
                                         fa.conf.inside_mac, fa.conf.inside_address)
        dp.send_msg(openflow.packet_out(dp, frame, fa.conf.fa_port))

    def advertisement(self, fa: ForeignAgent) -> bytes:
        seq = self._advert_seq.get(fa.conf.name, -1) + 1
        seq = 256 if seq > 0xFFFF else seq
        self._advert_seq[fa.conf.name] = seq
        adv = mip.AgentAdvertisement(
            router_address=fa.conf.inside_address, preference=0, lifetime=9000,
            sequence=seq, registration_lifetime=fa.conf.max_lifetime,
            flags=mip.ADV_FLAG_R | mip.ADV_FLAG_F | mip.ADV_FLAG_T,
            care_of_addresses=[fa.conf.core_address])
        return openflow.icmp_frame(fa.conf.inside_mac, fa.conf.inside_address, adv.encode())

    def send_advertisement(self, fa: ForeignAgent, port: int | None = None) -> None:
        dp = self.datapaths.get(fa.conf.access_dpid)
        if dp is None:
            return
        frame = self.advertisement(fa)
        if port is None:
            msg = openflow.packet_out(dp, frame, flows.OFPP_FLOOD, in_port=fa.conf.fa_port)
        else:
            msg = openflow.packet_out(dp, frame, port)
        dp.send_msg(msg)
        self.counters["adverts"] += 1

    async def advertiser(self) -> None:
        while True:
            for fa in foreign_agents(self.roles):
                self.send_advertisement(fa)
            await asyncio.sleep(settings.ADVERT_INTERVAL)

    def rrq_in(self, dpid: int, in_port: int, punted: openflow.PuntedMip) -> None:
        fa = fa_of_dpid(self.roles, dpid)
        if fa is None or in_port == fa.conf.fa_port:
            return
        actions = fa.on_registration_request(self.now(), punted.payload, punted.src_mac,
                                             in_port, src_port=punted.src_port,
                                             src_ip=punted.src_ip)
        self.spawn(self.execute(RoleKey(FA, fa.conf.name), actions))

    def icmp_in(self, dpid: int, in_port: int, data: bytes) -> None:
        fa = fa_of_dpid(self.roles, dpid)
        if fa is not None and in_port != fa.conf.fa_port:
            self.send_advertisement(fa, in_port)  # answer an agent solicitation
