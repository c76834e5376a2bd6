"""Foreign agent (FA): relays a mobile node's registration into AAA, caches the VPN
information it gets back, sets its end of the VPN path and steers the MN (claims 13-17).

Pure state machine.  Events: a Registration Request punted from the FA's access switch,
the Diameter AMA, the HA's Registration Reply (intra-domain move), "visitor left" and
lifetime ticks.  Every method returns the actions to perform, in order.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

from controller.core import flows
from controller.core.actions import (Action, AddTunnel, Mark, NotifyVisitorLeft,
                                     RelayToHomeAgent, RemoveTunnel, SendDiameter, SendFlows,
                                     SendToMobileNode)
from controller.core.vpn import VpnInfo
from controller.proto import diameter as dia
from controller.proto import mip

LOG = logging.getLogger("mipvpn.fa")

VENDOR_ID = 32473
CVSE_PREVIOUS_FA = 1  # CVSE vendor type: previous FA care-of address (4 bytes)

FEATURE_HA_REQUESTED = 4  # RFC 4004 MIP-Feature-Vector: Home-Agent-Requested
RESULT_SUCCESS = 2001
RESULT_AUTH_REJECTED = 4001


@dataclass(frozen=True)
class ForeignAgentConf:
    name: str
    host: str             # Diameter identity, e.g. fa1.a.example
    realm: str            # own (foreign) realm
    core_address: str     # care-of address
    inside_address: str
    inside_mac: str
    access_dpid: int
    fa_port: int          # the FA's port on its access switch
    peers: dict[str, str] = field(default_factory=dict)  # CoA -> FA name, same domain
    max_lifetime: int = 1800


@dataclass
class Visitor:
    nai: str
    home_address: str
    home_agent: str
    mn_mac: str
    port: int
    vpn_info: VpnInfo
    lifetime: int
    expires: float


@dataclass
class Pending:
    nai: str
    raw: bytes
    rrq: mip.RegistrationRequest
    mn_mac: str
    port: int
    started: float
    previous_fa: str = ""
    vpn_info: VpnInfo | None = None


class ForeignAgent:
    def __init__(self, conf: ForeignAgentConf) -> None:
        self.conf = conf
        self.visitors: dict[str, Visitor] = {}
        self.pending: dict[str, Pending] = {}
        self.counters: dict[str, int] = {"malformed": 0, "denied": 0, "accepted": 0}
        self._seq = itertools.count(1)

    # ------------------------------------------------------------------ events

    def on_registration_request(self, now: float, raw: bytes, mn_mac: str,
                                port: int) -> list[Action]:
        """A Registration Request punted from the access switch (claim 16 step 2)."""
        try:
            rrq = mip.decode(raw)
        except mip.MipDecodeError as exc:
            self.counters["malformed"] += 1
            LOG.debug("%s: malformed MIPv4 from %s: %s", self.conf.name, mn_mac, exc)
            return []
        if not isinstance(rrq, mip.RegistrationRequest):
            self.counters["malformed"] += 1
            return []
        nai = rrq.nai
        if not nai:
            return self._deny(rrq, mn_mac, port, mip.CODE_FA_MISSING_NAI)
        if rrq.mn_aaa_auth is None:
            return self._deny(rrq, mn_mac, port, mip.CODE_FA_MN_FAILED_AUTH)
        if rrq.care_of_address != self.conf.core_address:
            return self._deny(rrq, mn_mac, port, 77)  # invalid care-of address
        if rrq.lifetime > self.conf.max_lifetime:
            return self._deny(rrq, mn_mac, port, mip.CODE_FA_LIFETIME_TOO_LONG,
                              lifetime=self.conf.max_lifetime)
        previous_address = ""
        ext = rrq.vendor_extension(VENDOR_ID, CVSE_PREVIOUS_FA)
        if ext is not None and len(ext.data) == 4:
            previous_address = ".".join(str(b) for b in ext.data)
        previous_fa = self.conf.peers.get(previous_address, "")
        if previous_address == self.conf.core_address:
            previous_address, previous_fa = "", ""
        try:
            input_len, auth_len, auth_off = mip.mn_aaa_auth_offsets(raw)
        except mip.MipDecodeError:
            return self._deny(rrq, mn_mac, port, mip.CODE_FA_MN_FAILED_AUTH)
        realm = nai.split("@", 1)[1] if "@" in nai else ""
        session_id = f"{self.conf.host};{int(now)};{next(self._seq)}"
        amr = dia.AmRequest(
            session_id=session_id, origin_host=self.conf.host, origin_realm=self.conf.realm,
            destination_realm=realm, user_name=nai, reg_request=bytes(raw),
            mn_aaa_spi=rrq.mn_aaa_auth.spi, auth_input_length=input_len,
            authenticator_length=auth_len, authenticator_offset=auth_off,
            home_address=rrq.home_address, home_agent_address=rrq.home_agent,
            feature_vector=FEATURE_HA_REQUESTED, previous_fa_address=previous_address,
            previous_fa=previous_fa, foreign_agent=self.conf.name)
        self.pending[session_id] = Pending(nai, bytes(raw), rrq, mn_mac, port, now,
                                           previous_fa=previous_fa)
        return [Mark(nai, "rrq_at_fa", {"fa": self.conf.name,
                                        "previous_fa": previous_fa or previous_address}),
                SendDiameter(amr, to=self.conf.realm)]

    def on_diameter_answer(self, now: float, answer: dia.AmAnswer) -> list[Action]:
        """The AMA from the local AAA server (claim 16 last step / claim 17)."""
        p = self.pending.pop(answer.session_id, None)
        if p is None:
            return []
        marks: list[Action] = [Mark(p.nai, "ama_at_fa")]
        if answer.result_code != RESULT_SUCCESS or answer.vpn_info is None:
            code = (mip.CODE_FA_MN_FAILED_AUTH if answer.result_code == RESULT_AUTH_REJECTED
                    else mip.CODE_FA_HA_UNREACHABLE if answer.result_code == 4006
                    else mip.CODE_FA_UNSPECIFIED)
            if answer.reg_reply:  # the HA's own denial, relayed: give it to the MN as is
                return marks + self._to_mn(p, answer.reg_reply, accepted=False)
            return marks + self._deny(p.rrq, p.mn_mac, p.port, code)
        if answer.reg_reply:
            # full path: the HA already bound the MN and answered through AAA (claim 16)
            return marks + self._complete(now, p, answer.vpn_info, answer.reg_reply)
        # intra-domain move answered by the local AAA (claim 17): the FA now relays the
        # Registration Request to the HA itself and completes on the HA's reply.
        p.vpn_info = answer.vpn_info
        self.pending[f"ha:{p.nai}"] = p
        return marks + [RelayToHomeAgent(p.raw, p.rrq.home_agent, p.nai)]

    def on_home_agent_reply(self, now: float, nai: str, raw: bytes) -> list[Action]:
        """The HA's Registration Reply to a relayed request (claim 17)."""
        p = self.pending.pop(f"ha:{nai}", None)
        if p is None or p.vpn_info is None:
            return []
        try:
            rrp = mip.decode(raw)
        except mip.MipDecodeError:
            self.counters["malformed"] += 1
            return self._deny(p.rrq, p.mn_mac, p.port, mip.CODE_FA_POORLY_FORMED_REPLY)
        if not isinstance(rrp, mip.RegistrationReply) or not rrp.accepted:
            return self._to_mn(p, raw, accepted=False)
        return [Mark(nai, "rrp_from_ha")] + self._complete(now, p, p.vpn_info, raw)

    def on_home_agent_timeout(self, now: float, nai: str) -> list[Action]:
        p = self.pending.pop(f"ha:{nai}", None)
        if p is None:
            return []
        return self._deny(p.rrq, p.mn_mac, p.port, mip.CODE_FA_REG_TIMEOUT)

    def on_diameter_timeout(self, now: float, session_id: str) -> list[Action]:
        p = self.pending.pop(session_id, None)
        if p is None:
            return []
        return self._deny(p.rrq, p.mn_mac, p.port, mip.CODE_FA_HA_UNREACHABLE)

    def on_visitor_left(self, now: float, nai: str) -> list[Action]:
        """The MN registered through another FA: drop its tunnel and steering here."""
        visitor = self.visitors.pop(nai, None)
        if visitor is None:
            return []
        return self._teardown(visitor)

    def on_tick(self, now: float) -> list[Action]:
        """Expire visitors whose registration lifetime ran out without renewal."""
        actions: list[Action] = []
        for nai, visitor in list(self.visitors.items()):
            if visitor.expires <= now:
                del self.visitors[nai]
                LOG.info("%s: registration of %s expired", self.conf.name, nai)
                actions += self._teardown(visitor)
        return actions

    # ------------------------------------------------------------------ helpers

    def _complete(self, now: float, p: Pending, vpn_info: VpnInfo,
                  rrp_raw: bytes) -> list[Action]:
        """Cache the VPN info, set the FA's end of the VPN path, steer, reply (claim 16)."""
        rrp = mip.decode(rrp_raw)
        lifetime = rrp.lifetime if isinstance(rrp, mip.RegistrationReply) else p.rrq.lifetime
        old = self.visitors.get(p.nai)
        actions: list[Action] = []
        new_ids = {t.tunnel_id for t in vpn_info.tunnels_of(self.conf.name)}
        if old is not None:
            actions += [RemoveTunnel(self.conf.name, t.tunnel_id)
                        for t in old.vpn_info.tunnels_of(self.conf.name)
                        if t.tunnel_id not in new_ids]
            if old.mn_mac != p.mn_mac or old.port != p.port:
                actions.append(SendFlows(self.conf.access_dpid, flows.remove_mn(old.mn_mac)))
        self.visitors[p.nai] = Visitor(p.nai, p.rrq.home_address, p.rrq.home_agent, p.mn_mac,
                                       p.port, vpn_info, lifetime, now + lifetime)
        # Steering first: the FA's first packet towards the MN (its ARP request) comes
        # as soon as the tunnel is up, and the MN's answer must already pass the switch.
        actions.append(Mark(p.nai, "fa_setup"))
        actions.append(SendFlows(self.conf.access_dpid,
                                 flows.install_mn(p.mn_mac, p.port, self.conf.fa_port)))
        actions.append(Mark(p.nai, "flows_installed"))
        for spec in vpn_info.tunnels_of(self.conf.name):
            actions.append(AddTunnel(self.conf.name, spec.side_for(self.conf.name)))
        actions.append(Mark(p.nai, "tunnel_up"))
        actions += self._to_mn(p, rrp_raw, accepted=True)
        if p.previous_fa and p.previous_fa != self.conf.name:
            actions.append(NotifyVisitorLeft(p.previous_fa, p.nai))
        self.counters["accepted"] += 1
        return actions

    def _teardown(self, visitor: Visitor) -> list[Action]:
        actions: list[Action] = [RemoveTunnel(self.conf.name, t.tunnel_id)
                                 for t in visitor.vpn_info.tunnels_of(self.conf.name)]
        actions.append(SendFlows(self.conf.access_dpid, flows.remove_mn(visitor.mn_mac)))
        return actions

    def _to_mn(self, p: Pending, raw: bytes, accepted: bool) -> list[Action]:
        if not accepted:
            self.counters["denied"] += 1
        return [SendToMobileNode(self.conf.name, raw, p.mn_mac, p.rrq.home_address, p.port),
                Mark(p.nai, "rrp_sent", {"accepted": accepted})]

    def _deny(self, rrq: mip.RegistrationRequest, mn_mac: str, port: int, code: int,
              lifetime: int = 0) -> list[Action]:
        self.counters["denied"] += 1
        rrp = mip.RegistrationReply(code=code, lifetime=lifetime,
                                    home_address=rrq.home_address,
                                    home_agent=rrq.home_agent,
                                    identification=rrq.identification)
        LOG.info("%s: registration of %s denied, code %d", self.conf.name,
                 rrq.nai or rrq.home_address, code)
        return [SendToMobileNode(self.conf.name, mip.encode(rrp), mn_mac, rrq.home_address,
                                 port),
                Mark(rrq.nai or rrq.home_address, "rrp_sent", {"accepted": False,
                                                               "code": code})]

