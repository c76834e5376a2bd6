"""External (local) AAA server, AAAF (claims 10-12, 16-18, 20, 22, 24).

Proxies a foreign agent's AMR to the home realm and caches the VPN information the
home AAA returns in the AMA; the AMA's VPN information is this server's instruction to
its FA to build the safe path to the correspondent's gateway (claims 10-12: for a
dynamic CN-GW that is the FA<->CN-GW tunnel).  When the MN moves between two FAs of
this domain (the AMR names a previous FA that this AAAF served), it rewrites the cached
VPN information to the new FA and answers locally, without a trip to the home AAA
(claims 17, 20), adding the old-FA<->new-FA tunnel when the profile asks for smooth
handoff (claim 22).

A local answer is given only when the home agent will authenticate the move: the RRQ
must carry an MN-HA authentication extension (the AAAF cannot check MN-AAA, it has no
key).  Without one, or with a service-update request (claim 24), the AMR goes home.

Until the MN confirms a locally answered move, the AAAF keeps the information it had
before it (``CachedSession.previous``): the MN names as previous FA only the FA of its
last *accepted* registration, so its next RRQ tells which of the two was right.  A
move the HA denied therefore leaves the AAAF where the HA is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from controller.core.actions import Action, AnswerDiameter, Mark, SendDiameter
from controller.core.expiry import ExpiryDict
from controller.core.vpn import (VpnInfo, anchor_psk, handoff_tunnel, restricted_to,
                                 rewrite_foreign_agent)
from controller.logtext import log_text
from controller.proto import diameter as dia
from controller.proto import mip

LOG = logging.getLogger("mipvpn.aaaf")

RESULT_SUCCESS = 2001
RESULT_UNABLE_TO_DELIVER = 3002
RESULT_REALM_NOT_SERVED = 3003


@dataclass
class CachedSession:
    vpn_info: VpnInfo          # info as the home AAA gave it (FA's view), or as last moved
    home_realm: str
    expires: float
    previous: VpnInfo | None = None   # before an unconfirmed local move


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
        self.sessions: ExpiryDict[str, CachedSession] = ExpiryDict()
        self.pending: dict[str, dia.AmRequest] = {}
        self.counters = {"proxied": 0, "local": 0, "rejected": 0}

    def on_amr(self, now: float, amr: dia.AmRequest) -> list[Action]:
        if amr.foreign_agent not in self.foreign_agents:
            self.counters["rejected"] += 1
            return [AnswerDiameter(self._error(amr, RESULT_UNABLE_TO_DELIVER,
                                               "unknown foreign agent"))]
        cached = self.sessions.get(amr.user_name)
        base = self._local_base(now, amr, cached)
        if base is not None and cached is not None:
            return self._local_move(now, amr, cached, base)
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
                replace(ama.vpn_info, handoff=None), amr.destination_realm,
                now + self._lifetime(ama.reg_reply or amr.reg_request))
        return [AnswerDiameter(ama)]

    def on_tick(self, now: float) -> list[Action]:
        """Forget cached sessions whose registration lifetime ran out (issue 5: the
        cache returns to empty when registrations expire without renewal)."""
        for nai in self.sessions.due(now):
            del self.sessions[nai]
        return []

    def _lifetime(self, raw: bytes) -> float:
        """The cache lifetime of a registration: the lifetime the HA granted (its
        Registration Reply) or asked for (the Request), capped by
        ``session_lifetime``."""
        try:
            msg = mip.decode(raw)
        except mip.MipDecodeError:
            return self.session_lifetime
        lifetime = getattr(msg, "lifetime", None)
        if not isinstance(lifetime, int) or lifetime <= 0:
            return self.session_lifetime
        return min(float(lifetime), self.session_lifetime)

    def on_diameter_timeout(self, now: float, session_id: str) -> list[Action]:
        amr = self.pending.pop(session_id, None)
        if amr is None:
            return []
        return [AnswerDiameter(self._error(amr, RESULT_UNABLE_TO_DELIVER,
                                           "home AAA did not answer"))]

    def _local_base(self, now: float, amr: dia.AmRequest,
                    cached: CachedSession | None) -> VpnInfo | None:
        """The cached information a local answer starts from, or None when the AMR
        must go to the home realm."""
        if (not amr.previous_fa or cached is None or cached.expires <= now
                or amr.previous_fa not in self.foreign_agents or amr.service_update):
            return None
        try:
            rrq = mip.decode(amr.reg_request)
        except mip.MipDecodeError:
            return None
        if not isinstance(rrq, mip.RegistrationRequest) or rrq.find(mip.MnHaAuth) is None:
            return None   # nobody could authenticate the move: the home AAA must
        if cached.vpn_info.foreign_agent == amr.previous_fa:
            return cached.vpn_info        # the last move (if any) is confirmed
        if cached.previous is not None and cached.previous.foreign_agent == amr.previous_fa:
            return cached.previous        # the last local move did not succeed
        return None

    def _local_move(self, now: float, amr: dia.AmRequest, cached: CachedSession,
                    base: VpnInfo) -> list[Action]:
        """Claims 17, 20: rewrite the cached FA information (the HA<->FA and the
        FA<->CN-GW tunnels alike) to the new FA and answer; claim 22: with smooth
        handoff, add the old-FA<->new-FA tunnel keyed from the old FA's information."""
        rrq = mip.decode(amr.reg_request)
        assert isinstance(rrq, mip.RegistrationRequest)
        new_info = rewrite_foreign_agent(base, amr.foreign_agent, rrq.care_of_address)
        self.sessions[amr.user_name] = replace(cached, vpn_info=new_info, previous=base,
                                               expires=now + self._lifetime(
                                                   amr.reg_request))
        answer_info = restricted_to(new_info, amr.foreign_agent)
        old_psk = anchor_psk(base, base.foreign_agent)
        if base.smooth_handoff and old_psk and base.foreign_agent != amr.foreign_agent:
            answer_info = replace(answer_info, handoff=handoff_tunnel(
                new_info, base.foreign_agent, self.foreign_agents[base.foreign_agent],
                old_psk))
        self.counters["local"] += 1
        LOG.info("AAAF %s: intra-domain move of %s %s -> %s answered locally", self.host,
                 log_text(amr.user_name), log_text(amr.previous_fa),
                 log_text(amr.foreign_agent))
        ama = dia.AmAnswer(session_id=amr.session_id, result_code=RESULT_SUCCESS,
                           origin_host=self.host, origin_realm=self.realm,
                           user_name=amr.user_name, home_address=amr.home_address,
                           home_agent_address=amr.home_agent_address,
                           vpn_info=answer_info)
        return [Mark(amr.user_name, "aaaf_local"), AnswerDiameter(ama)]

    def _error(self, amr: dia.AmRequest, code: int, message: str) -> dia.AmAnswer:
        return dia.AmAnswer(session_id=amr.session_id, result_code=code,
                            origin_host=self.host, origin_realm=self.realm,
                            user_name=amr.user_name, error_message=message)

    # ------------------------------------------------------------ restart (issue 5)

    def export_state(self, nai: str) -> dict[str, object] | None:
        """The cached session of ``nai`` as a JSON-able record (None: none cached)."""
        from controller.core.persist import vpn_info_to_dict
        s = self.sessions.get(nai)
        if s is None:
            return None
        return {"vpn_info": vpn_info_to_dict(s.vpn_info), "home_realm": s.home_realm,
                "expires": s.expires,
                "previous": vpn_info_to_dict(s.previous) if s.previous else None}

    def restore_state(self, nai: str, data: dict) -> None:  # type: ignore[type-arg]
        from controller.core.persist import vpn_info_from_dict
        d = data
        self.sessions[nai] = CachedSession(
            vpn_info_from_dict(d["vpn_info"]), d["home_realm"], float(d["expires"]),
            vpn_info_from_dict(d["previous"]) if d.get("previous") else None)
