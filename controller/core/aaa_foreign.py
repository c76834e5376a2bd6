"""External (local) AAA server, AAAF (claims 10-12, 16-18, 20, 22, 24).

Proxies a foreign agent's AMR to the home realm and caches the VPN information the
home AAA returns in the AMA; the AMA's VPN information is this server's instruction to
its FA to build the safe path to the correspondent's gateway (claims 10-12: for a
dynamic CN-GW that is the FA<->CN-GW tunnel).  When the MN moves between two FAs of
this domain (the AMR names a previous FA that this AAAF served), it rewrites the cached
VPN information to the new FA and answers locally, without a trip to the home AAA
(claims 17, 20), adding the old-FA<->new-FA tunnel when the profile asks for smooth
handoff (claim 22).

A local answer is given only after this server authenticated the MN itself (issue 11):
the RRQ must carry an MN-FA authentication extension that verifies with the MN-FA key
the home AAA gave it for the session (RFC 4004 MIP-FA-to-MN-MSA; the MN derives the
same key from the nonce of its last full registration, RFC 3957), with an
Identification newer than the last one accepted for the session (replay), and a
care-of address that is the new FA's; and it must carry an MN-HA authentication
extension, which the HA checks in turn (a user without an MN-HA association registers
through the home AAA only).  Anything else — no key, no or a wrong
authenticator, a replay, a deregistration, a service-update request (claim 24) — goes
home as a full registration, which is always safe.  Each outcome is counted.

A local move gives every re-pointed tunnel a fresh key derived from the session secret
the home AAA gave this server and the HA (``vpn.tunnel_psk``), the new FA its own FA-HA
key (``vpn.fa_ha_key``, MIP-FA-to-HA-MSA) and, with smooth handoff, the forwarding
tunnel keyed from the old FA's FA-HA key.  The secret and the MN-FA key stay here: the
answers to the FAs never carry them.

Until the MN confirms a locally answered move, the AAAF keeps the information it had
before it (``CachedSession.previous``): the MN names as previous FA only the FA of its
last *accepted* registration, so its next RRQ tells which of the two was right.  A
move the HA denied therefore leaves the AAAF where the HA is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from controller.core.aaa_home import with_handoff
from controller.core.actions import Action, AnswerDiameter, Mark, SendDiameter
from controller.core.expiry import ExpiryDict
from controller.core.persist import Changes, TrackedExpiryDict
from controller.core.records import vpn_info_from_dict, vpn_info_to_dict
from controller.core.role import Role
from controller.core.vpn import (VpnInfo, fa_ha_key, handoff_tunnel, kept_if_equal,
                                 restricted_to, rewrite_foreign_agent, tunnel_psk)
from controller.logtext import log_text
from controller.model.dataclass_copy import replace
from controller.proto import diameter as dia
from controller.proto import mip
from controller.proto import mip_keys

LOG = logging.getLogger("mipvpn.aaaf")



@dataclass
class CachedSession:
    vpn_info: VpnInfo          # info as the home AAA gave it (FA's view), or as last moved
    home_realm: str
    expires: float
    previous: VpnInfo | None = None   # before an unconfirmed local move
    # issue 11, from the home AAA's AMA: the session secret, the MN-FA association, and
    # the newest Identification this server accepted for the session (replay)
    secret: bytes = field(default=b"", repr=False)
    mn_fa_spi: int = 0
    mn_fa_key: bytes = field(default=b"", repr=False)
    identification: int = 0

    def __init__(self, vpn_info: VpnInfo, home_realm: str, expires: float,
                 previous: VpnInfo | None = None, secret: bytes = b"", mn_fa_spi: int = 0,
                 mn_fa_key: bytes = b"", identification: int = 0) -> None:
        self.vpn_info = vpn_info
        self.home_realm = home_realm
        self.expires = expires
        self.previous = previous
        self.secret = secret
        self.mn_fa_spi = mn_fa_spi
        self.mn_fa_key = mn_fa_key
        self.identification = identification


class ForeignAaa(Role):
    def __init__(self, host: str, realm: str, foreign_agents: dict[str, str],
                 home_realms: set[str], session_lifetime: float = 3600.0) -> None:
        """``foreign_agents``: FA name -> care-of address of the FAs in this domain;
        ``home_realms``: realms this AAAF has a route to."""
        self.host = host
        self.realm = realm
        self.foreign_agents = foreign_agents
        self.home_realms = home_realms
        self.session_lifetime = session_lifetime
        self.changes = Changes()   # restart persistence: the cached sessions, per NAI
        self.sessions: ExpiryDict[str, CachedSession] = TrackedExpiryDict(self.changes)
        self.pending: dict[str, dia.AmRequest] = {}
        self.counters = {"proxied": 0, "local": 0, "rejected": 0}
        # why a move this server could not answer locally went home (issue 11)
        self.home_because = {"no_key": 0, "no_mn_fa_auth": 0, "bad_mn_fa_auth": 0,
                             "replay": 0, "care_of_address": 0, "no_mn_ha_auth": 0}

    def on_amr(self, now: float, amr: dia.AmRequest) -> list[Action]:
        if amr.foreign_agent not in self.foreign_agents:
            self.counters["rejected"] += 1
            return [AnswerDiameter(self._error(amr, dia.UNABLE_TO_DELIVER,
                                               "unknown foreign agent"))]
        cached = self.sessions.get(amr.user_name)
        base = self._local_base(now, amr, cached)
        if base is not None and cached is not None:
            return self._local_move(now, amr, cached, base)
        if amr.destination_realm not in self.home_realms:
            self.counters["rejected"] += 1
            return [AnswerDiameter(self._error(amr, dia.REALM_NOT_SERVED,
                                               f"realm {amr.destination_realm} not served"))]
        self.pending[amr.session_id] = amr
        self.counters["proxied"] += 1
        # a proxy of the FA's request: Route-Record names the peer it came from (RFC
        # 6733 §6.1.9); a relay on the way appends ours
        forwarded = replace(amr, originating_foreign_aaa=(self.realm, self.host),
                            route_record=(*amr.route_record, amr.origin_host))
        return [Mark(amr.user_name, "aaaf_proxy"),
                SendDiameter(forwarded, to=amr.destination_realm)]

    def on_diameter_answer(self, now: float, ama: dia.AmAnswer) -> list[Action]:
        amr = self.pending.pop(ama.session_id, None)
        if amr is None:
            return []
        if ama.result_code == dia.SUCCESS and ama.vpn_info is not None:
            key = ama.fa_mn_key
            held = self.sessions.get(amr.user_name)
            self.sessions[amr.user_name] = CachedSession(
                kept_if_equal(with_handoff(ama.vpn_info, None),
                              held.vpn_info if held is not None else None),
                amr.destination_realm,
                now + self._lifetime(ama.reg_reply or amr.reg_request),
                secret=ama.session_secret, mn_fa_spi=key.spi if key else 0,
                mn_fa_key=key.session_key if key else b"",
                identification=_identification(amr.reg_request))
        # the secret and the MN-FA key stay here: never to an FA
        return [AnswerDiameter(replace(ama, session_secret=b"", fa_mn_key=None))]

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
        return [AnswerDiameter(self._error(amr, dia.UNABLE_TO_DELIVER,
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
        if not isinstance(rrq, mip.RegistrationRequest) or rrq.lifetime == 0:
            return None
        reason = self._unauthenticated(amr, rrq, cached)
        if reason:
            self.home_because[reason] += 1
            LOG.info("AAAF %s: move of %s not answered locally (%s)", self.host,
                     log_text(amr.user_name), reason)
            return None   # the home AAA checks the MN-AAA authenticator
        if cached.vpn_info.foreign_agent == amr.previous_fa:
            return cached.vpn_info        # the last move (if any) is confirmed
        if cached.previous is not None and cached.previous.foreign_agent == amr.previous_fa:
            return cached.previous        # the last local move did not succeed
        return None

    def _unauthenticated(self, amr: dia.AmRequest, rrq: mip.RegistrationRequest,
                         cached: CachedSession) -> str:
        """Why this server cannot answer the move itself ("" when it can): the MN must
        prove the session's MN-FA key over this very RRQ, newer than the last one."""
        if not cached.mn_fa_key or not cached.secret:
            return "no_key"
        if rrq.find(mip.MnFaAuth) is None:
            return "no_mn_fa_auth"
        if not mip_keys.verify_mn_fa(amr.reg_request, cached.mn_fa_spi, cached.mn_fa_key):
            return "bad_mn_fa_auth"
        if rrq.identification <= cached.identification:
            return "replay"
        if rrq.care_of_address != self.foreign_agents.get(amr.foreign_agent):
            return "care_of_address"
        if rrq.find(mip.MnHaAuth) is None:
            return "no_mn_ha_auth"    # the HA could not check it: a user without MN-HA
        return ""

    def _local_move(self, now: float, amr: dia.AmRequest, cached: CachedSession,
                    base: VpnInfo) -> list[Action]:
        """Claims 17, 20: rewrite the cached FA information (the HA<->FA and the
        FA<->CN-GW tunnels alike) to the new FA, each re-pointed tunnel with a fresh key,
        and answer; claim 22: with smooth handoff, add the old-FA<->new-FA tunnel keyed
        from the old FA's FA-HA key."""
        rrq = mip.decode(amr.reg_request)
        assert isinstance(rrq, mip.RegistrationRequest)
        secret, ident = cached.secret, rrq.identification
        new_info = rewrite_foreign_agent(base, amr.foreign_agent, rrq.care_of_address,
                                         rekey=lambda tid: tunnel_psk(secret, tid, ident))
        self.sessions[amr.user_name] = replace(cached, vpn_info=new_info, previous=base,
                                               expires=now + self._lifetime(
                                                   amr.reg_request),
                                               identification=ident)
        answer_info = restricted_to(new_info, amr.foreign_agent)
        if base.smooth_handoff and base.foreign_agent != amr.foreign_agent:
            answer_info = replace(answer_info, handoff=handoff_tunnel(
                new_info, base.foreign_agent, self.foreign_agents[base.foreign_agent],
                fa_ha_key(secret, base.foreign_agent)))
        self.counters["local"] += 1
        LOG.info("AAAF %s: intra-domain move of %s %s -> %s answered locally", self.host,
                 log_text(amr.user_name), log_text(amr.previous_fa),
                 log_text(amr.foreign_agent))
        ama = dia.AmAnswer(session_id=amr.session_id, result_code=dia.SUCCESS,
                           origin_host=self.host, origin_realm=self.realm,
                           user_name=amr.user_name, home_address=amr.home_address,
                           home_agent_address=amr.home_agent_address,
                           vpn_info=answer_info,
                           fa_ha_key=dia.MsaKey(mip_keys.FA_HA_SPI,
                                                fa_ha_key(secret, amr.foreign_agent)))
        return [Mark(amr.user_name, "aaaf_local"), AnswerDiameter(ama)]

    def _error(self, amr: dia.AmRequest, code: int, message: str) -> dia.AmAnswer:
        return dia.AmAnswer(session_id=amr.session_id, result_code=code,
                            origin_host=self.host, origin_realm=self.realm,
                            user_name=amr.user_name, error_message=message)

    # ------------------------------------------------------------ restart (issue 5)

    def export_state(self, nai: str) -> dict[str, object] | None:
        """The cached session of ``nai`` as a JSON-able record (None: none cached)."""
        s = self.sessions.get(nai)
        if s is None:
            return None
        return {"vpn_info": vpn_info_to_dict(s.vpn_info), "home_realm": s.home_realm,
                "expires": s.expires,
                "previous": vpn_info_to_dict(s.previous) if s.previous else None,
                "secret": s.secret.hex(), "mn_fa_spi": s.mn_fa_spi,
                "mn_fa_key": s.mn_fa_key.hex(), "identification": s.identification}

    def restore_state(self, nai: str, data: dict[str, Any]) -> None:
        d = data
        self.sessions[nai] = CachedSession(
            vpn_info_from_dict(d["vpn_info"]), d["home_realm"], float(d["expires"]),
            vpn_info_from_dict(d["previous"]) if d.get("previous") else None,
            secret=bytes.fromhex(d.get("secret", "")), mn_fa_spi=int(d.get("mn_fa_spi", 0)),
            mn_fa_key=bytes.fromhex(d.get("mn_fa_key", "")),
            identification=int(d.get("identification", 0)))

    def state_keys(self) -> set[str]:
        return set(self.sessions)


def _identification(raw: bytes) -> int:
    """The Identification of an encoded Registration Request (0 if it is none)."""
    try:
        msg = mip.decode(raw)
    except mip.MipDecodeError:
        return 0
    return msg.identification if isinstance(msg, mip.RegistrationRequest) else 0
