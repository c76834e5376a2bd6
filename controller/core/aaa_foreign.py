"""External (local) AAA server, AAAF (claims 10-12, 16-18).

Proxies a foreign agent's AMR to the home realm and caches the VPN information the
home AAA returns in the AMA.  When the MN moves between two FAs of this domain
(the AMR names a previous FA that this AAAF served), it rewrites the cached VPN
information to the new FA and answers locally, without a trip to the home AAA
(claim 17).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from controller.core.actions import Action, AnswerDiameter, Mark, SendDiameter
from controller.core.vpn import VpnInfo, restricted_to, rewrite_foreign_agent
from controller.proto import diameter as dia
from controller.proto import mip

LOG = logging.getLogger("mipvpn.aaaf")

RESULT_SUCCESS = 2001
RESULT_UNABLE_TO_DELIVER = 3002
RESULT_REALM_NOT_SERVED = 3003


@dataclass
class CachedSession:
    vpn_info: VpnInfo          # full info as the home AAA gave it (FA's view)
    home_realm: str
    expires: float


class ForeignAaa:
    def __init__(self, host: str, realm: str, foreign_agents: dict[str, str],
                 home_realms: set[str], session_lifetime: float = 3600.0) -> None:
        """``foreign_agents``: FA name -> care-of address of the FAs in this domain;
        ``home_realms``: realms this AAAF has a route to."""
        self.host = host
        self.realm = realm
        self.foreign_agents = foreign_agents
        self.home_realms = home_realms
        self.session_lifetime = session_lifetime
        self.sessions: dict[str, CachedSession] = {}
        self.pending: dict[str, dia.AmRequest] = {}
        self.counters = {"proxied": 0, "local": 0, "rejected": 0}

    def on_amr(self, now: float, amr: dia.AmRequest) -> list[Action]:
        if amr.foreign_agent not in self.foreign_agents:
            self.counters["rejected"] += 1
            return [AnswerDiameter(self._error(amr, RESULT_UNABLE_TO_DELIVER,
                                               "unknown foreign agent"))]
        cached = self.sessions.get(amr.user_name)
        if (amr.previous_fa and cached is not None and cached.expires > now
                and cached.vpn_info.foreign_agent == amr.previous_fa
                and amr.previous_fa in self.foreign_agents):
            return self._local_move(now, amr, cached)
        if amr.destination_realm not in self.home_realms:
            self.counters["rejected"] += 1
            return [AnswerDiameter(self._error(amr, RESULT_REALM_NOT_SERVED,
                                               f"realm {amr.destination_realm} not served"))]
        self.pending[amr.session_id] = amr
        self.counters["proxied"] += 1
        forwarded = replace(amr, originating_foreign_aaa=(self.realm, self.host))
        return [Mark(amr.user_name, "aaaf_proxy"),
                SendDiameter(forwarded, to=amr.destination_realm)]

    def on_diameter_answer(self, now: float, ama: dia.AmAnswer) -> list[Action]:
        amr = self.pending.pop(ama.session_id, None)
        if amr is None:
            return []
        if ama.result_code == RESULT_SUCCESS and ama.vpn_info is not None:
            self.sessions[amr.user_name] = CachedSession(
                ama.vpn_info, amr.destination_realm, now + self.session_lifetime)
        return [AnswerDiameter(ama)]

    def on_diameter_timeout(self, now: float, session_id: str) -> list[Action]:
        amr = self.pending.pop(session_id, None)
        if amr is None:
            return []
        return [AnswerDiameter(self._error(amr, RESULT_UNABLE_TO_DELIVER,
                                           "home AAA did not answer"))]

    def _local_move(self, now: float, amr: dia.AmRequest,
                    cached: CachedSession) -> list[Action]:
        """Claim 17: rewrite the cached FA information to the new FA and answer."""
        try:
            rrq = mip.decode(amr.reg_request)
        except mip.MipDecodeError:
            return [AnswerDiameter(self._error(amr, 5004, "bad MIP-Reg-Request"))]
        assert isinstance(rrq, mip.RegistrationRequest)
        new_info = rewrite_foreign_agent(cached.vpn_info, amr.foreign_agent,
                                         rrq.care_of_address)
        self.sessions[amr.user_name] = replace(cached, vpn_info=new_info,
                                               expires=now + self.session_lifetime)
        self.counters["local"] += 1
        LOG.info("AAAF %s: intra-domain move of %s %s -> %s answered locally", self.host,
                 amr.user_name, amr.previous_fa, amr.foreign_agent)
        ama = dia.AmAnswer(session_id=amr.session_id, result_code=RESULT_SUCCESS,
                           origin_host=self.host, origin_realm=self.realm,
                           user_name=amr.user_name, home_address=amr.home_address,
                           home_agent_address=amr.home_agent_address,
                           vpn_info=restricted_to(new_info, amr.foreign_agent))
        return [Mark(amr.user_name, "aaaf_local"), AnswerDiameter(ama)]

    def _error(self, amr: dia.AmRequest, code: int, message: str) -> dia.AmAnswer:
        return dia.AmAnswer(session_id=amr.session_id, result_code=code,
                            origin_host=self.host, origin_realm=self.realm,
                            user_name=amr.user_name, error_message=message)
