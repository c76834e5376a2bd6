"""Home agent (HA): binding cache, its ends of the VPN path, binding updates to the
correspondents' gateways (claims 2, 5-7, 16-21, 25).

Two ways a registration reaches the HA:
- through AAA: the home AAA's HAR carries the Registration Request and the VPN
  information (claims 16, 18, 19, 21); the HA caches both, sets the HA<->FA tunnel
  (keeping HA<->CN-GW), answers with the HAA carrying its Registration Reply;
- from an FA directly over UDP 434 (claims 17, 20: intra-domain move answered locally
  by the AAAF): the HA rewrites its cached VPN information to the new FA, deletes the
  tunnel to the old FA, sets the tunnel to the new one and replies (for a profile with
  ``seamless_handover``: sets the new one, replies, then removes the old one:
  ``controller.core.ha_tunnels``, issue 14).

Every Registration Request is authenticated with the MN-HA security association when
the user has one (RFC 5944 §3.5.2): without it, or with a wrong authenticator, the
reply is 131 and nothing is set up.  The user database decides (``mn_ha_key``); a user
without an MN-HA key can only register through AAA (MN-AAA checked by the home AAA):
a relayed RRQ for such a user is refused with 131 too.

The HA validates what it is told (issue 11; docs/security.md "Trust boundaries: home
agent"): an NAI the VPN database does not hold is refused (131), so is a user of another
HA (129) and an RRQ whose home address is not the user's (129), for a HAR and a relayed
RRQ alike; a HAR whose User-Name is not the RRQ's NAI (134) or whose VPN information is
not what the home AAA computes for that user, FA and profile (129,
``vpn_policy.check_vpn_info``).  Refused requests are counted (``refused``,
``refused_<reason>``) and set nothing up: no tunnel, no binding, no Binding Update.

A relayed RRQ must also carry the relaying FA's FA-HA authentication extension (RFC
5944 §3.5.4), keyed by that FA's key for the session (``vpn.fa_ha_key`` of the session
secret the home AAA sent in the HAR): without it, or with a wrong one, the reply is 132
and nothing changes.  The re-pointed tunnels get fresh keys derived from the same secret
and the RRQ's Identification (``vpn.tunnel_psk``), as the foreign AAA derives them.

Route optimisation (claims 19-21): the VPN information may hold FA<->CN-GW tunnels of
dynamic gateways.  After binding, the HA posts each one to its CN-GW in a Binding
Update (``SendMip("cngw:<name>")``) and answers the registration (HAA or Registration
Reply) only when the Binding Acknowledges are in (``on_mip_reply``).  A refused or
lost BU does not fail the registration (the MN keeps its HA-anchored destinations);
the next registration, or the correspondent's next packet, posts it again.  With the
profile option ``distribution: on_demand`` (claims 2, 5) nothing is posted at
registration: ``on_correspondent_packet`` posts it when the CN's first packet towards
the MN shows up; a later registration withdraws it (delete BU) until the next packet.
A CN-GW's Binding Request (claim 25) is answered with a BU while the binding exists.

Simultaneous bindings (S bit, issue 14): ``controller.core.simultaneous``.  Pure state
machine; ``now`` is wall-clock seconds (NTP-format identifications, RFC 5944 §5.7).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from controller.core import conformance, ha_tunnels
from controller.core.actions import (Action, AnswerDiameter, Mark, PrepareTunnel,
                                     RemoveTunnel, ReplyMip, SendMip)
from controller.core.binding import (Binding, BindingKey, IdentificationClock,
                                     PendingUpdates, ack_status, build_binding_update)
from controller.core.expiry import ExpiryDict
from controller.core.neighbours import (STANDING_CHILD_SA, NeighbourMap, Preparation,
                                        prepare, preparation_changes)
from controller.core.persist import Changes, TrackedExpiryDict
from controller.core.records import vpn_info_from_dict, vpn_info_to_dict
from controller.core.role import CNGW, Role, RoleKey, kind_of, name_of
from controller.core.ha_tunnels import RETIRE_AFTER
from controller.core.simultaneous import (EarlierBinding, Retiring, SimultaneousBindings,
                                          honoured)
from controller.core.vpn import (TunnelSpec, VpnInfo, fa_ha_key, kept_if_equal,
                                 rewrite_foreign_agent, tunnel_psk)
from controller.core.vpn_policy import check_vpn_info
from controller.logtext import log_text
from controller.model.dataclass_copy import replace
from controller.proto import diameter as dia
from controller.proto import mip

if TYPE_CHECKING:
    from controller.core.aaa_home import GatewayInfo, UserRecord, VpnDatabase

LOG = logging.getLogger("mipvpn.ha")

REPLAY_WINDOW = 7.0  # seconds, RFC 5944 §5.7 default
#: why a request was refused (counted as ``refused`` and ``refused_<reason>``, issue 11)
REFUSALS = ("unknown_nai", "home_agent", "home_address", "nai_mismatch", "vpn_info")


class HomeAgent(Role):
    def __init__(self, name: str, address: str, host: str, realm: str,
                 foreign_agents: dict[str, str],
                 mn_ha_key: Callable[[str], tuple[int, bytes] | None] = lambda nai: None,
                 max_lifetime: int = 1800,
                 binding_keys: dict[str, BindingKey] | None = None,
                 db: VpnDatabase | None = None,
                 gateways: dict[str, GatewayInfo] | None = None,
                 neighbours: NeighbourMap | None = None) -> None:
        """``foreign_agents``: care-of address -> FA gateway name (all domains);
        ``mn_ha_key``: NAI -> (SPI, key) of the user's MN-HA association, or None;
        ``binding_keys``: CN-GW name -> the HA<->CN-GW binding association;
        ``db``: the VPN database (users and profiles; without it every NAI is unknown);
        ``gateways``: the topology's gateways (VPN information is checked against them
        and the user's profile, ``vpn_policy.check_vpn_info``); ``neighbours``: the FAs
        an MN can move to (issue 14: prepared for a profile with ``seamless_handover``;
        None: nothing is prepared)."""
        self.name = name
        self.address = address
        self.host = host
        self.realm = realm
        self.foreign_agents = foreign_agents
        self.mn_ha_key = mn_ha_key
        self.max_lifetime = max_lifetime
        self.binding_keys = binding_keys or {}
        self.db = db
        self.gateways = gateways or {}
        self.changes = Changes()   # restart persistence: the bindings, per NAI
        self.bindings: ExpiryDict[str, Binding] = TrackedExpiryDict(self.changes)
        self.pending: dict[str, PendingUpdates] = {}
        # tunnel id -> the old FA's tunnel kept after a smooth-handoff move
        self.retiring: ExpiryDict[str, Retiring] = ExpiryDict()
        # NAI -> the binding before its last move, kept beside it (S bit, issue 14)
        self.simultaneous = SimultaneousBindings()
        self.neighbours = neighbours
        # NAI -> the HA<->FA tunnels prepared for its next move (tunnel id -> spec)
        self.prepared: dict[str, dict[str, TunnelSpec]] = {}
        # tunnel id -> confirmed up (on_tunnel_up) since this HA last added it: a
        # renewal keeps such a tunnel (issue 15, ``ha_tunnels.plan``); not persisted
        self.tunnels_up: dict[str, bool] = {}
        self._clock = IdentificationClock()
        self.counters = {"accepted": 0, "denied": 0, "malformed": 0, "fa_auth_failed": 0,
                         "bu_sent": 0, "bu_acked": 0, "bu_failed": 0, "breq": 0,
                         "refused": 0, **{f"refused_{r}": 0 for r in REFUSALS}}

    # ------------------------------------------------------------ via AAA (HAR)

    def on_har(self, now: float, har: dia.HaRequest) -> list[Action]:
        """Claims 16, 18, 19, 21: bind, set the HA's tunnels, post the FA<->CN-GW
        information to dynamic CN-GWs, then answer with the HAA."""
        try:
            rrq = mip.decode(har.reg_request)
        except mip.MipDecodeError:
            self.counters["malformed"] += 1
            return [AnswerDiameter(self._haa(har, dia.ERROR_MIP_REPLY_FAILURE,
                                             error="malformed MIP-Reg-Request"))]
        if not isinstance(rrq, mip.RegistrationRequest) or har.vpn_info is None:
            return [AnswerDiameter(self._haa(har, dia.ERROR_MIP_REPLY_FAILURE,
                                             error="no registration or VPN information"))]
        code = self._check_har(har, rrq)
        if code is None:
            code = self._check(now, har.user_name, har.reg_request, rrq, relayed=False)
        error = ""
        if code is None:
            # issue 11: the VPN information is used only if it is what the home AAA
            # computes for this user (no tunnel, binding or Binding Update otherwise)
            reason = self._vpn_info_refusal(har.user_name, har.vpn_info, rrq)
            if reason is not None:
                code = self._refuse(har.user_name, "vpn_info", mip.CODE_HA_ADMIN_PROHIBITED,
                                    reason)
                error = "VPN information refused"
        if code is not None:
            rrp = self._reply(rrq, code, now)
            return [AnswerDiameter(self._haa(har, dia.ERROR_MIP_REPLY_FAILURE, reg_reply=rrp,
                                             error=error))]
        old = self.bindings.get(har.user_name)
        actions, after = self._bind(now, har.user_name, rrq, har.vpn_info,
                                    har.session_secret)
        rrp = self._reply(rrq, mip.CODE_ACCEPTED, now)
        # the VPN information bound: a kept tunnel's key is the one in use (issue 15)
        final: list[Action] = [Mark(har.user_name, "haa_sent"), AnswerDiameter(self._haa(
            har, dia.SUCCESS, reg_reply=rrp, vpn_info=self.bindings[har.user_name].vpn_info))]
        final += after
        return actions + self._post(now, har.user_name, self._updates(old, har.user_name),
                                    final)

    # ------------------------------------------------------------ relayed by an FA

    def on_registration_request(self, now: float, raw: bytes) -> list[Action]:
        """Claims 17, 20: a move answered locally by the AAAF, relayed by the new FA."""
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
        if not self._fa_authentic(raw, rrq, binding):
            self.counters["fa_auth_failed"] += 1
            LOG.info("HA %s: FA-HA authentication of a relayed RRQ for %s failed", self.name,
                     log_text(nai))
            return [ReplyMip(self._reply(rrq, mip.CODE_HA_FA_FAILED_AUTH, now))]
        code = self._check(now, nai, raw, rrq, relayed=True)
        if code is not None:
            return [ReplyMip(self._reply(rrq, code, now))]
        if rrq.lifetime == 0:
            deletes = [(gw, True) for gw in sorted(binding.distributed)]
            return self._unbind(nai) + self._post(
                now, nai, deletes, [ReplyMip(self._reply(rrq, mip.CODE_ACCEPTED, now))],
                binding=binding)
        new_fa = self.foreign_agents.get(rrq.care_of_address)
        if new_fa is None:
            return [ReplyMip(self._reply(rrq, mip.CODE_HA_ADMIN_PROHIBITED, now))]
        secret, ident = binding.secret, rrq.identification
        vpn_info = rewrite_foreign_agent(binding.vpn_info, new_fa, rrq.care_of_address,
                                         rekey=lambda tid: tunnel_psk(secret, tid, ident))
        actions, after = self._bind(now, nai, rrq, vpn_info)
        final: list[Action] = [Mark(nai, "ha_rrp_sent"),
                               ReplyMip(self._reply(rrq, mip.CODE_ACCEPTED, now))]
        final += after
        return actions + self._post(now, nai, self._updates(binding, nai), final)

    def _fa_authentic(self, raw: bytes, rrq: mip.RegistrationRequest,
                      binding: Binding) -> bool:
        """The relaying FA (named by the care-of address) signed ``raw`` with its FA-HA
        key for the session: an FA-HA extension, the last one (RFC 5944 §3.6.1.3)."""
        fa = self.foreign_agents.get(rrq.care_of_address)
        if fa is None or not binding.secret or not rrq.extensions \
                or not isinstance(rrq.extensions[-1], mip.FaHaAuth):
            return False
        return mip.verify_auth(raw, mip.AuthKind.FA_HA, fa_ha_key(binding.secret, fa))

    # ------------------------------------------------------------ binding messages

    def on_mip(self, now: float, raw: bytes, sender: str) -> list[Action]:
        """A Binding Request from a CN-GW (claim 25): retrieve the binding by the home
        address; if it still holds VPN information for that CN-GW, send a Binding
        Update refreshing it (lifetime = what is left of the binding); else nothing."""
        try:
            msg = mip.decode(raw)
        except mip.MipDecodeError:
            self.counters["malformed"] += 1
            return []
        if not isinstance(msg, mip.BindingRequest):
            self.counters["malformed"] += 1
            return []
        self.counters["breq"] += 1
        cn_gateway = name_of(sender) if kind_of(sender) == CNGW else ""
        binding = self._by_home_address(msg.home_address)
        if (binding is None or cn_gateway not in binding.route_optimised
                or self._in_flight(binding.nai, cn_gateway)
                or (binding.vpn_info.on_demand and cn_gateway not in binding.distributed)):
            LOG.info("HA %s: Binding Request from %s for %s: nothing to refresh", self.name,
                     log_text(sender), msg.home_address)
            return []
        return [Mark(binding.nai, "breq_at_ha", {"cngw": cn_gateway})] + self._post(
            now, binding.nai, [(cn_gateway, False)], [])

    def on_mip_reply(self, now: float, to: str, raw: bytes | None,
                     context: object) -> list[Action]:
        """The Binding Acknowledge (or None: timeout) to a BU this HA sent; continues
        the registration that was waiting for it (claims 19-21)."""
        p = self.pending.pop(str(context), None)
        if p is None:
            return []
        status = ack_status(raw, p.identification)
        binding = self.bindings.get(p.nai)
        if status == mip.BACK_OK:
            self.counters["bu_acked"] += 1
            if binding is not None:
                if p.delete:
                    binding.distributed.discard(p.cn_gateway)
                else:
                    binding.distributed.add(p.cn_gateway)
            self.changes.note(p.nai)    # binding.distributed changed in place
            mark = Mark(p.nai, "back_at_ha", {"cngw": p.cn_gateway})
        else:
            self.counters["bu_failed"] += 1
            LOG.warning("HA %s: Binding Update for %s to %s %s", self.name, log_text(p.nai),
                        p.cn_gateway, "timed out" if status is None else f"refused ({status})")
            if binding is not None and not p.delete:
                binding.distributed.discard(p.cn_gateway)
            self.changes.note(p.nai)    # binding.distributed changed in place
            mark = Mark(p.nai, "bu_failed", {"cngw": p.cn_gateway, "status": status})
        return [mark] + self._post(now, p.nai, p.queue, p.final, binding or p.binding)

    def on_correspondent_packet(self, now: float, home_address: str,
                                cn_gateway: str) -> list[Action]:
        """Claim 5: a correspondent's packet towards ``home_address`` reached dynamic
        gateway ``cn_gateway`` outside any tunnel: post the VPN information to it (the
        first time with ``distribution: on_demand``; again if an earlier BU failed)."""
        binding = self._by_home_address(home_address)
        if (binding is None or cn_gateway not in binding.route_optimised
                or cn_gateway in binding.distributed
                or self._in_flight(binding.nai, cn_gateway)):
            return []
        return [Mark(binding.nai, "correspondent_packet", {"cngw": cn_gateway})] + \
            self._post(now, binding.nai, [(cn_gateway, False)], [])

    # ------------------------------------------------------------ lifetime

    def on_tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for tunnel_id in self.retiring.due(now):
            actions += self._retire(self.retiring.pop(tunnel_id).nai, [tunnel_id])
        for earlier in self.simultaneous.due(now):
            actions += self._end_earlier(earlier, "overlap_ended")
        for nai in self.bindings.due(now):
            LOG.info("HA %s: binding of %s expired", self.name, log_text(nai))
            actions += self._unbind(nai)
        return actions

    def on_tunnel_up(self, now: float, tunnel_id: str) -> list[Action]:
        """Issue 14: the runtime saw ``tunnel_id`` established; an earlier binding ends.
        Issue 15: a renewal may keep it now."""
        if tunnel_id in self.tunnels_up:
            self.tunnels_up[tunnel_id] = True
        return [a for e in self.simultaneous.confirmed(tunnel_id)
                for a in self._end_earlier(e, "new_tunnel_up")]

    def _end_earlier(self, earlier: EarlierBinding, why: str,
                     keep: set[str] | None = None) -> list[Action]:
        """End an earlier (simultaneous) binding: its tunnels not in ``keep`` go; with
        smooth handoff they retire as without S (the old FA's uplink path)."""
        self.changes.note(earlier.nai)
        gone = [t.tunnel_id for t in earlier.tunnels if t.tunnel_id not in (keep or ())]
        mark: list[Action] = [Mark(earlier.nai, "ha_earlier_binding_ended", {"why": why})]
        current = self.bindings.get(earlier.nai)
        if keep is None and current is not None and current.vpn_info.smooth_handoff:
            for tid in gone:
                self.retiring[tid] = Retiring(earlier.nai, earlier.since + RETIRE_AFTER)
            return mark
        return mark + self._retire(earlier.nai, gone)

    def _retire(self, nai: str, tunnel_ids: list[str]) -> list[Action]:
        """Remove kept tunnels (``nai``'s)."""
        for tid in tunnel_ids:
            self.tunnels_up.pop(tid, None)
        return [RemoveTunnel(self.name, tid) for tid in tunnel_ids]

    # ------------------------------------------------------------ helpers

    def _check(self, now: float, nai: str, raw: bytes, rrq: mip.RegistrationRequest,
               relayed: bool) -> int | None:
        """None if acceptable, else the RFC 5944 denial code (issue 11: an NAI the VPN
        database does not hold, 131; a user of another HA or an RRQ for a home address
        that is not the user's, 129; docs/decisions.md)."""
        if rrq.home_agent != self.address:
            return mip.CODE_HA_UNKNOWN_HA_ADDRESS
        user = self._user(nai)
        if user is None:
            return self._refuse(nai, "unknown_nai", mip.CODE_HA_MN_FAILED_AUTH)
        if user.home_agent != self.name:
            return self._refuse(nai, "home_agent", mip.CODE_HA_ADMIN_PROHIBITED)
        # the user's MN-HA association, from the record just read (not a second read)
        key = (user.mn_ha_spi, user.mn_ha_key) if user.mn_ha_key else None
        mn_ha = rrq.find(mip.MnHaAuth)
        if (key is None and relayed) or (key is not None and (
                mn_ha is None or mn_ha.spi != key[0]   # the SPI names the association
                or not mip.verify_auth(raw, mip.AuthKind.MN_HA, key[1]))):
            self.counters["denied"] += 1
            LOG.info("HA %s: MN-HA authentication of %s failed", self.name, log_text(nai))
            return mip.CODE_HA_MN_FAILED_AUTH
        if rrq.home_address != user.home_address:
            return self._refuse(nai, "home_address", mip.CODE_HA_ADMIN_PROHIBITED)
        refused = conformance.ha_refusal(rrq)   # reserved bits, encapsulation, CVSE
        if refused is not None:
            self.counters["denied"] += 1
            return refused
        stamp = mip.identification_time(rrq.identification)
        previous = self.bindings.get(nai)
        if abs(stamp - now) > REPLAY_WINDOW or (
                previous is not None and rrq.identification <= previous.identification):
            self.counters["denied"] += 1
            return mip.CODE_HA_IDENTIFICATION_MISMATCH
        return None

    def _check_har(self, har: dia.HaRequest, rrq: mip.RegistrationRequest) -> int | None:
        """The HAR's own fields agree with the Registration Request it carries."""
        if rrq.nai is not None and rrq.nai != har.user_name:
            return self._refuse(har.user_name, "nai_mismatch",
                                mip.CODE_HA_POORLY_FORMED_REQUEST)
        if har.home_agent_address and har.home_agent_address != self.address:
            return mip.CODE_HA_UNKNOWN_HA_ADDRESS
        if har.home_address and har.home_address != rrq.home_address:
            return self._refuse(har.user_name, "home_address", mip.CODE_HA_ADMIN_PROHIBITED)
        return None

    def _vpn_info_refusal(self, nai: str, info: VpnInfo | None,
                          rrq: mip.RegistrationRequest) -> str | None:
        """Why ``info`` is not the VPN information the home AAA computes for ``nai`` at
        the FA of the care-of address (None: it is)."""
        user = self._user(nai)
        if user is None or info is None:
            return "no user or no VPN information"
        assert self.db is not None
        return check_vpn_info(info, user, self.db.profile(nai), self.gateways,
                              care_of_address=rrq.care_of_address)

    def _user(self, nai: str) -> UserRecord | None:
        return self.db.user(nai) if self.db is not None else None

    def _refuse(self, nai: str, reason: str, code: int, detail: str = "") -> int:
        """Count a refusal (``refused``, ``refused_<reason>``) and return ``code``."""
        self.counters["refused"] += 1
        self.counters[f"refused_{reason}"] += 1
        LOG.info("HA %s: registration of %r refused (%s%s): code %d", self.name, nai,
                 reason, f": {detail}" if detail else "", code)
        return code

    def _bind(self, now: float, nai: str, rrq: mip.RegistrationRequest,
              vpn_info: VpnInfo, secret: bytes | None = None) -> tuple[list[Action],
                                                                       list[Action]]:
        """``secret``: the session secret of a registration through AAA (None: a move
        relayed by an FA keeps the binding's).  Returns the actions before the HA's
        answer and those after it (``ha_tunnels.plan``: make before break)."""
        old = self.bindings.get(nai)
        through_aaa = secret is not None
        if secret is None:
            secret = old.secret if old is not None else b""
        lifetime = min(rrq.lifetime, self.max_lifetime)
        tunnels = ha_tunnels.plan(self.name, nai, now, old, vpn_info, rrq, self.retiring,
                                  self.simultaneous, self._end_earlier, self.tunnels_up,
                                  keeps=through_aaa)
        vpn_info = kept_if_equal(ha_tunnels.with_kept(vpn_info, tunnels.kept),
                                 old.vpn_info if old is not None else None)
        self.bindings[nai] = Binding(nai, rrq.home_address, rrq.care_of_address,
                                     vpn_info.foreign_agent, vpn_info, lifetime,
                                     now + lifetime, rrq.identification,
                                     set(old.distributed) if old else set(), secret)
        self.counters["accepted"] += 1
        return [Mark(nai, "ha_bind", {"fa": vpn_info.foreign_agent})] + tunnels.before + [
            Mark(nai, "ha_tunnel_set", {"kept": sorted(tunnels.kept)} if tunnels.kept else {})
        ] + self._prepare(nai, vpn_info, secret,
                                                        tunnels.new_ids), tunnels.after

    def _prepare(self, nai: str, vpn_info: VpnInfo, secret: bytes,
                 live: set[str]) -> list[Action]:
        """Issue 14: the HA<->FA tunnels of the FAs ``nai`` can move to, prepared
        (IKE_SA only; ``neighbours.prepare``), and those no longer wanted taken down.
        A prepared tunnel that just became live is the binding's now, not dropped."""
        standing = {tid: s for tid, s in self.prepared.pop(nai, {}).items()
                    if tid not in live}
        wanted: tuple[Preparation, ...] = ()
        if self.neighbours is not None and secret and vpn_info.seamless_handover:
            fas = {n: g.address for n, g in self.gateways.items() if g.kind == "foreign_agent"}
            wanted = prepare(vpn_info, self.neighbours, fas, secret)
        mine = [replace(p, tunnels=tuple(t for t in p.tunnels if self.name in t.ends()))
                for p in wanted]
        up, drop = preparation_changes(mine, standing)
        keep = {t.tunnel_id: t for p in mine for t in p.tunnels}
        if keep:
            self.prepared[nai] = keep
        # (a tunnel still set for the old FA, kept by smooth handoff or the S bit, is
        # prepared by the runtime once both its live ends are gone: Gateways.prepare_tunnel)
        actions: list[Action] = [PrepareTunnel(standing[tid], remove=True) for tid in drop]
        actions += [PrepareTunnel(spec, child=STANDING_CHILD_SA) for spec in up]
        if actions:
            actions.append(Mark(nai, "ha_prepared", {"tunnels": sorted(keep),
                                                     "dropped": list(drop)}))
        return actions

    def _updates(self, old: Binding | None, nai: str) -> list[tuple[str, bool]]:
        """Which CN-GWs get a BU after (re)binding ``nai``, and whether it deletes.
        Registration-time distribution: every dynamic CN-GW of the new information
        (claims 19-21).  On demand: none, but a CN-GW that held the previous
        information gets a delete (its tunnel pointed at the old FA / old keys)."""
        new = self.bindings[nai]
        had = set(old.distributed) if old else set()
        updates: list[tuple[str, bool]] = []
        for gw in sorted(new.route_optimised):
            if not new.vpn_info.on_demand:
                updates.append((gw, False))
            elif gw in had:
                updates.append((gw, True))
        updates += [(gw, True) for gw in sorted(had - set(new.route_optimised))]
        return updates

    def _post(self, now: float, nai: str, queue: list[tuple[str, bool]],
              final: list[Action], binding: Binding | None = None) -> list[Action]:
        """Send the first BU of ``queue`` (the rest follow its BAck), or ``final``."""
        binding = binding or self.bindings.get(nai)
        while queue:
            cn_gateway, delete = queue[0]
            queue = queue[1:]
            key = self.binding_keys.get(cn_gateway)
            spec = binding.route_optimised.get(cn_gateway) if binding else None
            if key is None or binding is None or (spec is None and not delete):
                LOG.warning("HA %s: no binding key / information for CN-GW %s", self.name,
                            cn_gateway)
                continue
            ident = self._clock.next(now)
            lifetime = 0 if delete else max(1, int(binding.expires - now))
            raw = build_binding_update(key, ident, lifetime, binding.home_address,
                                       binding.care_of_address, nai,
                                       () if delete or spec is None else (spec,),
                                       binding.vpn_info.seamless_handover)
            context = f"bu:{ident}"
            self.pending[context] = PendingUpdates(nai, cn_gateway, ident, delete, queue,
                                                   final, binding)
            self.counters["bu_sent"] += 1
            return [Mark(nai, "bu_sent", {"cngw": cn_gateway, "delete": delete}),
                    SendMip(RoleKey(CNGW, cn_gateway), raw, expect_reply=True, context=context)]
        return final

    def _in_flight(self, nai: str, cn_gateway: str) -> bool:
        return any(p.nai == nai and p.cn_gateway == cn_gateway
                   for p in self.pending.values())

    def _by_home_address(self, home_address: str) -> Binding | None:
        for binding in self.bindings.values():
            if binding.home_address == home_address:
                return binding
        return None

    def _unbind(self, nai: str) -> list[Action]:
        binding = self.bindings.pop(nai, None)
        prepared: list[Action] = [PrepareTunnel(s, remove=True)
                                  for s in self.prepared.pop(nai, {}).values()]
        earlier = self.simultaneous.pop(nai)
        if earlier is not None:
            prepared = self._retire(nai, [t.tunnel_id for t in earlier.tunnels]) + prepared
        if binding is None:
            return prepared
        return self._retire(nai, [t.tunnel_id for t in binding.vpn_info.tunnels_of(self.name)
                                  if t.psk]) + prepared

    def _reply(self, rrq: mip.RegistrationRequest, code: int, now: float) -> bytes:
        ident = rrq.identification
        if code == mip.CODE_HA_IDENTIFICATION_MISMATCH:
            # high 32 bits: the HA's clock, so the MN can resynchronise (§5.7)
            ident = (mip.ntp_identification(now) & ~0xFFFFFFFF) | (ident & 0xFFFFFFFF)
        binding = self.bindings.get(rrq.nai or "")
        if code == mip.CODE_ACCEPTED and rrq.has_flag(mip.FLAG_S) and not (
                binding is not None and honoured(rrq, binding.vpn_info)):
            code = mip.CODE_ACCEPTED_NO_SIMULTANEOUS   # not for this profile (§3.8.3.1)
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

    # ------------------------------------------------------------ restart (issue 5)

    def export_state(self, nai: str) -> dict[str, object] | None:
        """The binding of ``nai`` as a JSON-able record (None: no binding)."""
        b = self.bindings.get(nai)
        if b is None:
            return None
        return {"home_address": b.home_address, "care_of_address": b.care_of_address,
                "foreign_agent": b.foreign_agent, "vpn_info": vpn_info_to_dict(b.vpn_info),
                "lifetime": b.lifetime, "expires": b.expires,
                "identification": b.identification, "distributed": sorted(b.distributed),
                "secret": b.secret.hex(), **self.simultaneous.state(nai)}

    def restore_state(self, nai: str, data: dict[str, Any]) -> None:
        self.bindings[nai] = Binding(nai, data["home_address"], data["care_of_address"],
                                     data["foreign_agent"],
                                     vpn_info_from_dict(data["vpn_info"]),
                                     int(data["lifetime"]), float(data["expires"]),
                                     int(data["identification"]),
                                     set(data.get("distributed", ())),
                                     bytes.fromhex(data.get("secret", "")))
        if data.get("earlier"):   # the binding kept beside it (S bit, issue 14)
            self.simultaneous.earlier[nai] = EarlierBinding.from_dict(nai, data["earlier"])

    def forget_state(self, nai: str) -> None:
        binding = self.bindings.pop(nai, None)
        for t in binding.vpn_info.tunnels if binding is not None else ():
            self.tunnels_up.pop(t.tunnel_id, None)
        self.simultaneous.pop(nai)

    def state_keys(self) -> set[str]:
        return set(self.bindings)

    def tunnels_wanted(self) -> list[TunnelSpec]:
        """Every tunnel this HA's gateway should hold for its bindings (the stationary
        ones are the home AAA's: ``HomeAaa.static_tunnels``)."""
        return [t for b in self.bindings.values() for t in b.vpn_info.tunnels_of(self.name)
                if t.psk] + [t for e in self.simultaneous.earlier.values() for t in e.tunnels]
