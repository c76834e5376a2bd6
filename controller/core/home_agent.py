"""Home agent (HA): binding cache, its ends of the VPN path (claims 6, 7, 16-18).

Two ways a registration reaches the HA:
- through AAA: the home AAA's HAR carries the Registration Request and the VPN
  information (claim 16, claim 18); the HA caches both, sets the HA<->FA tunnel
  (keeping HA<->CN-GW), answers with the HAA carrying its Registration Reply;
- from an FA directly over UDP 434 (claim 17, intra-domain move answered locally
  by the AAAF): the HA rewrites its cached VPN information to the new FA, deletes
  the tunnel to the old FA, sets the tunnel to the new one and replies.

Pure state machine; ``now`` is wall-clock seconds (identification timestamps are
NTP-format wall clock, RFC 5944 §5.7).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from controller.core.actions import (Action, AddTunnel, AnswerDiameter, Mark, RemoveTunnel,
                                     ReplyMip)
from controller.core.vpn import VpnInfo, rewrite_foreign_agent
from controller.proto import diameter as dia
from controller.proto import mip

LOG = logging.getLogger("mipvpn.ha")

RESULT_SUCCESS = 2001
RESULT_MIP_REPLY_FAILURE = 4005
REPLAY_WINDOW = 7.0  # seconds, RFC 5944 §5.7 default


@dataclass
class Binding:
    nai: str
    home_address: str
    care_of_address: str
    foreign_agent: str
    vpn_info: VpnInfo
    lifetime: int
    expires: float
    identification: int


class HomeAgent:
    def __init__(self, name: str, address: str, host: str, realm: str,
                 foreign_agents: dict[str, str],
                 mn_ha_key: Callable[[str], tuple[int, bytes] | None] = lambda nai: None,
                 max_lifetime: int = 1800) -> None:
        """``foreign_agents``: care-of address -> FA gateway name (all domains)."""
        self.name = name
        self.address = address
        self.host = host
        self.realm = realm
        self.foreign_agents = foreign_agents
        self.mn_ha_key = mn_ha_key
        self.max_lifetime = max_lifetime
        self.bindings: dict[str, Binding] = {}
        self.counters = {"accepted": 0, "denied": 0, "malformed": 0}

    # ------------------------------------------------------------ via AAA (HAR)

    def on_har(self, now: float, har: dia.HaRequest) -> list[Action]:
        try:
            rrq = mip.decode(har.reg_request)
        except mip.MipDecodeError:
            self.counters["malformed"] += 1
            return [AnswerDiameter(self._haa(har, RESULT_MIP_REPLY_FAILURE,
                                             error="malformed MIP-Reg-Request"))]
        if not isinstance(rrq, mip.RegistrationRequest) or har.vpn_info is None:
            return [AnswerDiameter(self._haa(har, RESULT_MIP_REPLY_FAILURE,
                                             error="no registration or VPN information"))]
        code = self._check(now, har.user_name, har.reg_request, rrq)
        if code is not None:
            rrp = self._reply(rrq, code, now)
            return [AnswerDiameter(self._haa(har, RESULT_MIP_REPLY_FAILURE, reg_reply=rrp))]
        actions = self._bind(now, har.user_name, rrq, har.vpn_info)
        rrp = self._reply(rrq, mip.CODE_ACCEPTED, now)
        return actions + [Mark(har.user_name, "haa_sent"),
                          AnswerDiameter(self._haa(har, RESULT_SUCCESS, reg_reply=rrp,
                                                   vpn_info=har.vpn_info))]

    # ------------------------------------------------------------ relayed by an FA

    def on_registration_request(self, now: float, raw: bytes) -> list[Action]:
        try:
            rrq = mip.decode(raw)
        except mip.MipDecodeError:
            self.counters["malformed"] += 1
            return []
        if not isinstance(rrq, mip.RegistrationRequest) or not rrq.nai:
            self.counters["malformed"] += 1
            return []
        nai = rrq.nai
        binding = self.bindings.get(nai)
        if binding is None:
            # no VPN information cached: the MN must register through AAA
            return [ReplyMip(self._reply(rrq, mip.CODE_HA_ADMIN_PROHIBITED, now))]
        code = self._check(now, nai, raw, rrq)
        if code is not None:
            return [ReplyMip(self._reply(rrq, code, now))]
        if rrq.lifetime == 0:
            return self._unbind(nai) + [ReplyMip(self._reply(rrq, mip.CODE_ACCEPTED, now))]
        new_fa = self.foreign_agents.get(rrq.care_of_address)
        if new_fa is None:
            return [ReplyMip(self._reply(rrq, mip.CODE_HA_ADMIN_PROHIBITED, now))]
        vpn_info = rewrite_foreign_agent(binding.vpn_info, new_fa, rrq.care_of_address)
        actions = self._bind(now, nai, rrq, vpn_info)
        return actions + [Mark(nai, "ha_rrp_sent"),
                          ReplyMip(self._reply(rrq, mip.CODE_ACCEPTED, now))]

    # ------------------------------------------------------------ lifetime

    def on_tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for nai, binding in list(self.bindings.items()):
            if binding.expires <= now:
                LOG.info("HA %s: binding of %s expired", self.name, nai)
                actions += self._unbind(nai)
        return actions

    # ------------------------------------------------------------ helpers

    def _check(self, now: float, nai: str, raw: bytes, rrq: mip.RegistrationRequest,
               ) -> int | None:
        """None if acceptable, else the RFC 5944 denial code."""
        if rrq.home_agent != self.address:
            return mip.CODE_HA_UNKNOWN_HA_ADDRESS
        key = self.mn_ha_key(nai)
        if key is not None:
            if not mip.verify_auth(raw, mip.AuthKind.MN_HA, key[1]):
                self.counters["denied"] += 1
                return mip.CODE_HA_MN_FAILED_AUTH
        stamp = mip.identification_time(rrq.identification)
        previous = self.bindings.get(nai)
        if abs(stamp - now) > REPLAY_WINDOW or (
                previous is not None and rrq.identification <= previous.identification):
            self.counters["denied"] += 1
            return mip.CODE_HA_IDENTIFICATION_MISMATCH
        return None

    def _bind(self, now: float, nai: str, rrq: mip.RegistrationRequest,
              vpn_info: VpnInfo) -> list[Action]:
        old = self.bindings.get(nai)
        lifetime = min(rrq.lifetime, self.max_lifetime)
        new_tunnels = [t for t in vpn_info.tunnels_of(self.name) if t.psk]
        new_ids = {t.tunnel_id for t in new_tunnels}
        actions: list[Action] = []
        if old is not None:
            # delete the VPN path to the old FA first (claim 17)
            actions += [RemoveTunnel(self.name, t.tunnel_id)
                        for t in old.vpn_info.tunnels_of(self.name)
                        if t.psk and t.tunnel_id not in new_ids]
        old_specs = {t.tunnel_id: t for t in old.vpn_info.tunnels} if old else {}
        for spec in new_tunnels:
            if old_specs.get(spec.tunnel_id) != spec:
                actions.append(AddTunnel(self.name, spec.side_for(self.name)))
        self.bindings[nai] = Binding(nai, rrq.home_address, rrq.care_of_address,
                                     vpn_info.foreign_agent, vpn_info, lifetime,
                                     now + lifetime, rrq.identification)
        self.counters["accepted"] += 1
        return [Mark(nai, "ha_bind", {"fa": vpn_info.foreign_agent})] + actions + [
            Mark(nai, "ha_tunnel_set")]

    def _unbind(self, nai: str) -> list[Action]:
        binding = self.bindings.pop(nai, None)
        if binding is None:
            return []
        return [RemoveTunnel(self.name, t.tunnel_id)
                for t in binding.vpn_info.tunnels_of(self.name) if t.psk]

    def _reply(self, rrq: mip.RegistrationRequest, code: int, now: float) -> bytes:
        ident = rrq.identification
        if code == mip.CODE_HA_IDENTIFICATION_MISMATCH:
            # high 32 bits: the HA's clock, so the MN can resynchronise (§5.7)
            ident = (mip.ntp_identification(now) & ~0xFFFFFFFF) | (ident & 0xFFFFFFFF)
        lifetime = min(rrq.lifetime, self.max_lifetime) if code in (0, 1) else 0
        rrp = mip.RegistrationReply(code=code, lifetime=lifetime,
                                    home_address=rrq.home_address, home_agent=self.address,
                                    identification=ident)
        raw = mip.encode(rrp)
        key = self.mn_ha_key(rrq.nai or "")
        if key is not None:
            raw = mip.append_auth(raw, mip.AuthKind.MN_HA, key[0], key[1])
        return raw

    def _haa(self, har: dia.HaRequest, code: int, reg_reply: bytes = b"",
             vpn_info: VpnInfo | None = None, error: str = "") -> dia.HaAnswer:
        return dia.HaAnswer(session_id=har.session_id, result_code=code,
                            origin_host=self.host, origin_realm=self.realm,
                            user_name=har.user_name, reg_reply=reg_reply,
                            home_address=har.home_address,
                            home_agent_address=self.address, vpn_info=vpn_info,
                            error_message=error)

