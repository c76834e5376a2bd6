"""Foreign agent (FA): relays a mobile node's registration into AAA, caches the VPN
information it gets back, sets its end of the VPN path and steers the MN (claims 13-24).

Pure state machine.  Events: a Registration Request punted from the FA's access switch,
the Diameter AMA, the HA's Registration Reply (intra-domain move), binding messages
from other FAs (smooth handoff), "visitor left" and lifetime ticks.  Every method
returns the actions to perform, in order.

The AMA's VPN information is the local AAA's instruction to build the safe path
(claims 13-15): the FA sets its end of every tunnel in it, HA<->FA or FA<->CN-GW alike.

Smooth handoff (claims 22-23, profile option ``smooth_handoff``): when the AMA carries
the old-FA<->new-FA tunnel (the information of the old FA), the new FA, once the MN is
registered, sends that tunnel to the old FA in a Binding Update (``SendMip("fa:<old>")``,
key from ``binding.handoff_key``) instead of the plain "visitor left".  The old FA checks
it with the key it derives from its own copy of the MN's security information, deletes
its tunnels (``RETIRE_AFTER`` later: make before break) and the MN's steering, sets its
end of the forwarding tunnel (the tunnel's remote selector, the MN's home address,
routes what still arrives for the MN into it), has the downlink it held since the MN's
port went away (``on_port_down``) forwarded into it, and acknowledges; the new FA sets its end on the acknowledgement, as initiator.  Both
ends remove the forwarding tunnel after the BU's lifetime (``handoff_lifetime``,
default 10 s).

Service update (claim 24): an RRQ with the CVSE ``mip.CVSE_SERVICE_UPDATE`` makes the
AMR carry Mipvpn-Service-Update, so the home AAA recomputes the path.

Keys (issue 11): the AMA gives this FA its FA-HA key for the session (RFC 4004
MIP-FA-to-HA-MSA); the FA signs the Registration Request it relays to the HA with it
(FA-HA authentication extension, RFC 5944 §3.5.4) and keeps it with the visitor as the
anchor of a smooth-handoff key (``vpn.handoff_psk``).  The MN's MN-FA key generation
nonce (Mipvpn-MN-to-FA-MSA) goes into the Registration Reply to the MN
(``mip_keys.with_nonce_reply``).  The FA never holds the MN-FA key or the session secret.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from controller.core import conformance, fa_prepare, fa_tunnels, flows
from controller.core.actions import (Action, AnnounceMobileNode, Mark,
                                     NotifyVisitorLeft, RelayToHomeAgent, RemoveTunnel,
                                     SendDiameter, SendFlows, SendToMobileNode, VisitorMoved)
from controller.core.binding import IdentificationClock
from controller.core.expiry import ExpiryDict
from controller.core.fa_conf import ForeignAgentConf as ForeignAgentConf  # re-exported
from controller.core.fa_conf import Pending
from controller.core.fa_handoff import RETIRE_AFTER as RETIRE_AFTER  # re-exported
from controller.core.fa_handoff import (DEPARTED_GRACE, HandoffTunnel, Hold, SmoothHandoff,
                                        _HandoffPending, _Retiring)
from controller.core.persist import Changes, TrackedExpiryDict
from controller.core.records import (tunnel_from_dict, tunnel_to_dict, vpn_info_from_dict,
                                     vpn_info_to_dict)
from controller.core.role import Role
from controller.core.visitors import TrackedVisitorTable, Visitor
from controller.core.vpn import TunnelSpec, VpnInfo, kept_if_equal
from controller.logtext import log_text
from controller.model.dataclass_copy import replace
from controller.proto import diameter as dia
from controller.proto import mip
from controller.proto import mip_keys

LOG = logging.getLogger("mipvpn.fa")

VENDOR_ID = mip.MIPVPN_VENDOR_ID
CVSE_PREVIOUS_FA = mip.CVSE_PREVIOUS_FA      # previous FA care-of address (4 bytes)
CVSE_SERVICE_UPDATE = mip.CVSE_SERVICE_UPDATE  # service update request (claim 24)

FEATURE_HA_REQUESTED = 4  # RFC 4004 MIP-Feature-Vector: Home-Agent-Requested
LATE_ANSWER_WAIT = 60.0  # s a refused (timed-out) registration's late AMA is taken
IN_PROGRESS_HOLD = 3.0  # s: retransmissions of a registration in progress are dropped


def _handoff_nai(_tunnel_id: str, handoff: HandoffTunnel) -> str:
    return handoff.nai


def _second(entry: tuple[Any, float]) -> float:
    return entry[1]




class ForeignAgent(SmoothHandoff, Role):
    def __init__(self, conf: ForeignAgentConf) -> None:
        self.conf = conf
        # restart persistence: what it saves, per NAI (visitors, departed, handoffs)
        self.changes = Changes()
        self.visitors = TrackedVisitorTable(self.changes)
        self.pending: dict[str, Pending] = {}
        # session id -> (registration refused on a Diameter timeout, until when its
        # late answer is still taken: on_late_diameter_answer)
        self.timed_out: ExpiryDict[str, tuple[Pending, float]] = ExpiryDict(_second)
        # nai -> (visitor, until)
        self.departed: ExpiryDict[str, tuple[Visitor, float]] = TrackedExpiryDict(
            self.changes, _second)
        self.handoffs: ExpiryDict[str, HandoffTunnel] = TrackedExpiryDict(  # tunnel id -> end
            self.changes, key_of=_handoff_nai)
        self.handoff_pending: dict[str, _HandoffPending] = {}
        self.holds: ExpiryDict[str, Hold] = ExpiryDict()   # nai -> held downlink
        # tunnel id -> a departed smooth-handoff MN's tunnel, removed when it expires
        self.retiring: ExpiryDict[str, _Retiring] = ExpiryDict()
        # tunnel id -> confirmed up since this FA set it (``fa_tunnels``, issue 15)
        self.tunnels_up: dict[str, bool] = {}
        self._handoff_ident: dict[str, int] = {}
        self._clock = IdentificationClock()
        self.counters: dict[str, int] = {"malformed": 0, "denied": 0, "accepted": 0,
                                         "retransmit_suppressed": 0,
                                         "handoff_bu_sent": 0, "handoff_bu_accepted": 0,
                                         "handoff_bu_refused": 0,
                                         "holds": 0, "holds_forwarded": 0,
                                         "holds_expired": 0,
                                         "admission_denied": 0, "late_answer_completed": 0,
                                         "late_answer_dropped": 0}
        # issue 18: replies matching no pending request (dropped), requests with an
        # unknown extension of type 0-127 (silently discarded)
        self.counters.update(reply_unmatched=0, unknown_extension=0)
        # NAI -> (when its registration started, its previous-FA extension data)
        self.in_progress: dict[str, tuple[float, bytes]] = {}
        self.aaa_wait = 0.0   # s, moving average of the AAA round trip (admission)
        self._seq = itertools.count(1)

    # ------------------------------------------------------------------ events

    def on_registration_request(self, now: float, raw: bytes, mn_mac: str,
                                port: int, src_port: int = mip.MIP_PORT,
                                src_ip: str = "") -> list[Action]:
        """A Registration Request punted from the access switch (claim 16 step 2),
        sent from ``src_ip``:``src_port`` (UDP): every answer to it goes there."""
        reply_to = (src_ip, src_port)
        try:
            rrq = mip.decode(raw)
        except mip.MipDecodeError as exc:
            self.counters["malformed"] += 1
            LOG.debug("%s: malformed MIPv4 from %s: %s", self.conf.name, mn_mac, log_text(exc))
            if conformance.unknown_critical_extension(raw):   # silently discarded
                self.counters["unknown_extension"] += 1
                return []
            fixed = conformance.poorly_formed_request(raw)
            if fixed is None:
                return []
            return self._deny(fixed, mn_mac, port, mip.CODE_FA_POORLY_FORMED_REQUEST,
                              reply_to=reply_to)
        if not isinstance(rrq, mip.RegistrationRequest):
            self.counters["malformed"] += 1
            return []
        refused = conformance.fa_refusal(rrq)   # reserved bits, encapsulation, CVSE
        if refused is not None:
            return self._deny(rrq, mn_mac, port, refused, reply_to=reply_to)
        nai = rrq.nai
        if not nai:
            return self._deny(rrq, mn_mac, port, mip.CODE_FA_MISSING_NAI,
                              reply_to=reply_to)
        if rrq.mn_aaa_auth is None:
            return self._deny(rrq, mn_mac, port, mip.CODE_FA_MN_FAILED_AUTH,
                              reply_to=reply_to)
        if rrq.care_of_address != self.conf.core_address:
            return self._deny(rrq, mn_mac, port, 77,  # invalid care-of address
                              reply_to=reply_to)
        if rrq.lifetime > self.conf.max_lifetime:
            return self._deny(rrq, mn_mac, port, mip.CODE_FA_LIFETIME_TOO_LONG,
                              lifetime=self.conf.max_lifetime, reply_to=reply_to)
        ext = rrq.vendor_extension(VENDOR_ID, CVSE_PREVIOUS_FA)
        service_update = rrq.vendor_extension(VENDOR_ID, CVSE_SERVICE_UPDATE) is not None
        # a service-update request is a new registration, not a retransmission
        move_key = (ext.data if ext is not None else b"") + (b"su" if service_update else b"")
        # ... from the same MN: its MAC, access port and UDP source (an RRQ naming the
        # same NAI from elsewhere is not a retransmission: it must not silence the real
        # MN's tries, nor take their reply; a client restarted on another port is new)
        move_key += f"|{mn_mac}|{port}|{reply_to[0]}:{reply_to[1]}".encode()
        held = self.in_progress.get(nai)
        if held is not None and held[1] == move_key and now - held[0] < IN_PROGRESS_HOLD:
            # A retransmission of a registration in progress (or just accepted): a
            # second one would race the first (new keys at the HA while this FA is
            # initiating with the old ones).  The MN accepts the reply to any of its
            # tries, and that reply is coming.  A denial releases the hold at once.
            self.counters["retransmit_suppressed"] += 1
            return []
        if self.pending and (len(self.pending) >= self.conf.max_pending
                             or self.aaa_wait > self.conf.max_pending_age or now - next(
                                 iter(self.pending.values())).started
                             > self.conf.max_pending_age):
            # admission control (issue 5): the excess of an overload is refused at once
            # (RFC 5944 66, insufficient resources) instead of queueing without bound;
            # the MN retries after its back-off
            self.counters["admission_denied"] += 1
            actions = self._deny(rrq, mn_mac, port, mip.CODE_FA_INSUFFICIENT_RESOURCES,
                                 reply_to=reply_to)
            if held is not None:   # another registration of this MN is still in flight
                self.in_progress[nai] = held
            return actions
        self.in_progress[nai] = (now, move_key)
        previous_address = ""
        if ext is not None and len(ext.data) == 4:
            previous_address = ".".join(str(b) for b in ext.data)
        previous_fa = self.conf.peers.get(previous_address, "")
        if previous_address == self.conf.core_address:
            previous_address, previous_fa = "", ""
        try:
            input_len, auth_len, auth_off = mip.mn_aaa_auth_offsets(raw)
        except mip.MipDecodeError:
            return self._deny(rrq, mn_mac, port, mip.CODE_FA_MN_FAILED_AUTH,
                              reply_to=reply_to)
        realm = nai.split("@", 1)[1] if "@" in nai else ""
        session_id = f"{self.conf.host};{int(now)};{next(self._seq)}"
        amr = dia.AmRequest(
            session_id=session_id, origin_host=self.conf.host, origin_realm=self.conf.realm,
            destination_realm=realm, user_name=nai, reg_request=bytes(raw),
            mn_aaa_spi=rrq.mn_aaa_auth.spi, auth_input_length=input_len,
            authenticator_length=auth_len, authenticator_offset=auth_off,
            home_address=rrq.home_address, home_agent_address=rrq.home_agent,
            feature_vector=FEATURE_HA_REQUESTED, previous_fa_address=previous_address,
            previous_fa=previous_fa, foreign_agent=self.conf.name,
            service_update=service_update)
        self.pending[session_id] = Pending(nai, bytes(raw), rrq, mn_mac, port, now,
                                           previous_fa=previous_fa, src_ip=src_ip,
                                           src_port=src_port)
        return [Mark(nai, "rrq_at_fa", {"fa": self.conf.name, "port": port,
                                        "previous_fa": previous_fa or previous_address}),
                SendDiameter(amr, to=self.conf.realm)]

    def on_diameter_answer(self, now: float, answer: dia.AmAnswer) -> list[Action]:
        """The AMA from the local AAA server (claim 16 last step / claim 17)."""
        p = self.pending.pop(answer.session_id, None)
        if p is None:
            return []
        self._note_wait(now, p)
        marks: list[Action] = [Mark(p.nai, "ama_at_fa")]
        unmatched = self._unmatched(p, answer.reg_reply) if answer.reg_reply else None
        if unmatched is not None:
            return marks + unmatched
        if answer.result_code != dia.SUCCESS or answer.vpn_info is None:
            result = answer.result_code
            code = (mip.CODE_FA_MN_FAILED_AUTH if result == dia.AUTHENTICATION_REJECTED
                    else mip.CODE_FA_HA_UNREACHABLE if result == dia.ERROR_HA_NOT_AVAILABLE
                    else mip.CODE_FA_UNSPECIFIED)
            if answer.reg_reply:  # the HA's own denial, relayed: give it to the MN as is
                return marks + self._to_mn(p, answer.reg_reply, accepted=False)
            return marks + self._deny(p.rrq, p.mn_mac, p.port, code, reply_to=p.reply_to)
        fa_ha = answer.fa_ha_key
        p.fa_key = fa_ha.session_key if fa_ha is not None else b""
        if answer.reg_reply:
            # full path: the HA already bound the MN and answered through AAA (claim 16)
            return marks + self._deliver_held(p, answer.vpn_info) + self._complete(
                now, p, answer.vpn_info, _with_nonce(answer.reg_reply, answer))
        # intra-domain move answered by the local AAA (claim 17): the FA now relays the
        # Registration Request to the HA itself, signed with its FA-HA key (RFC 5944
        # §3.5.4: last extension), and completes on the HA's reply.
        p.vpn_info = answer.vpn_info
        self.pending[f"ha:{p.nai}"] = p
        raw = p.raw if fa_ha is None else mip.append_auth(
            p.raw, mip.AuthKind.FA_HA, fa_ha.spi, fa_ha.session_key)
        # back here, accepted by its AAA: stop forwarding it elsewhere now, beside the
        # relay, not in line between the HA's reply and this FA's steering (issue 14)
        stop = self._stop_forwarding(p.nai, off_path=True)
        p.stopped_forwarding = bool(stop)
        return (marks + self._deliver_held(p, answer.vpn_info) + stop
                + [RelayToHomeAgent(raw, p.rrq.home_agent, p.nai)])

    def on_home_agent_reply(self, now: float, nai: str, raw: bytes) -> list[Action]:
        """The HA's Registration Reply to a relayed request (claim 17)."""
        p = self.pending.pop(f"ha:{nai}", None)
        if p is None or p.vpn_info is None:
            return []
        unmatched = self._unmatched(p, raw)
        if unmatched is not None:
            return unmatched
        if not mip.decode(raw).accepted:  # type: ignore[union-attr]
            return self._to_mn(p, raw, accepted=False)
        return [Mark(nai, "rrp_from_ha")] + self._complete(now, p, p.vpn_info, raw)

    def on_home_agent_timeout(self, now: float, nai: str) -> list[Action]:
        p = self.pending.pop(f"ha:{nai}", None)
        if p is None:
            return []
        return self._deny(p.rrq, p.mn_mac, p.port, mip.CODE_FA_REG_TIMEOUT,
                          reply_to=p.reply_to)

    def on_diameter_timeout(self, now: float, session_id: str) -> list[Action]:
        p = self.pending.pop(session_id, None)
        if p is None:
            return []
        self._note_wait(now, p)
        self.timed_out[session_id] = (p, now + LATE_ANSWER_WAIT)
        return self._deny(p.rrq, p.mn_mac, p.port, mip.CODE_FA_HA_UNREACHABLE,
                          reply_to=p.reply_to)

    def on_late_diameter_answer_dropped(self, answer: dia.AmAnswer) -> None:
        """The runtime found the MN registered elsewhere since: forget the refusal."""
        if self.timed_out.pop(answer.session_id, None) is not None:
            self.counters["late_answer_dropped"] += 1

    def on_late_diameter_answer(self, now: float, answer: dia.AmAnswer) -> list[Action]:
        """The AMA of a registration this FA refused on timeout (issue 5, "nothing
        half-installed"): if the home side accepted it — the HA holds a binding through
        this FA and the AAA its VPN information — the FA completes it now (tunnel,
        steering, the HA's reply to the MN), so both ends hold the same registration and
        expire together.  Dropped when the MN has registered again since (here or
        anywhere the FA knows of) or the answer is a refusal: nothing was set up."""
        entry = self.timed_out.pop(answer.session_id, None)
        if entry is None:
            return []
        p, _until = entry
        newer = (p.nai in self.visitors or any(q.nai == p.nai for q in self.pending.values())
                 or p.nai in self.departed)
        if (newer or answer.result_code != dia.SUCCESS or answer.vpn_info is None
                or not answer.reg_reply):
            self.counters["late_answer_dropped"] += 1
            return []
        unmatched = self._unmatched(p, answer.reg_reply)
        if unmatched is not None:
            return unmatched
        self.counters["late_answer_completed"] += 1
        LOG.info("%s: late AMA for %s: completing the registration the home side made",
                 self.conf.name, log_text(p.nai))
        p.fa_key = answer.fa_ha_key.session_key if answer.fa_ha_key is not None else b""
        return [Mark(p.nai, "late_ama_at_fa")] + self._complete(
            now, p, answer.vpn_info, _with_nonce(answer.reg_reply, answer))

    def _unmatched(self, p: Pending, raw: bytes) -> list[Action] | None:
        """None if ``raw`` is the Registration Reply to ``p``'s request; else what the
        FA does instead (RFC 5944 §3.7.3.1): a reply that does not decode is answered
        to the MN with 71; one for another Home Address or Identification (low 32
        bits) is dropped and counted, and the MN's retransmission starts afresh."""
        try:
            rrp = mip.decode(raw)
        except mip.MipDecodeError:
            self.counters["malformed"] += 1
            return self._deny(p.rrq, p.mn_mac, p.port, mip.CODE_FA_POORLY_FORMED_REPLY,
                              reply_to=p.reply_to)
        if isinstance(rrp, mip.RegistrationReply) and conformance.reply_matches(p.rrq, rrp):
            return None
        self.counters["reply_unmatched"] += 1
        self.in_progress.pop(p.nai, None)
        LOG.warning("%s: reply for %s matches no pending request of %s: dropped",
                    self.conf.name, log_text(getattr(rrp, "home_address", "?")),
                    log_text(p.nai))
        return []

    def _note_wait(self, now: float, p: Pending) -> None:
        """Admission control: moving average of how long the AAA round trip took
        (the queue a new registration would join, whatever its length)."""
        self.aaa_wait = 0.8 * self.aaa_wait + 0.2 * (now - p.started)

    def on_visitor_left(self, now: float, nai: str) -> list[Action]:
        """The MN registered through another FA: drop its tunnel and steering here."""
        visitor = self.visitors.pop(nai, None)
        if visitor is None:
            return []
        self.departed[nai] = (visitor, now + DEPARTED_GRACE)
        return self._teardown(visitor, now)

    def on_tick(self, now: float) -> list[Action]:
        """Expire visitors whose registration lifetime ran out without renewal."""
        actions: list[Action] = []
        for nai in self.holds.due(now):    # no Binding Update came: drop what was held
            actions += self._release(nai, forward=False)
        for tunnel_id in self.retiring.due(now):
            self.retiring.pop(tunnel_id)
            actions.append(RemoveTunnel(self.conf.name, tunnel_id))
        for nai in self.visitors.due(now):
            visitor = self.visitors.pop(nai)
            LOG.info("%s: registration of %s expired", self.conf.name, log_text(nai))
            actions += self._teardown(visitor)
        for tunnel_id in self.handoffs.due(now):  # the forwarding tunnel's lifetime is over
            handoff = self.handoffs.pop(tunnel_id)
            actions += [RemoveTunnel(self.conf.name, tunnel_id),
                        Mark(handoff.nai, "handoff_expired", {"fa": self.conf.name})]
        for nai in self.departed.due(now):
            del self.departed[nai]
        for session_id in self.timed_out.due(now):
            del self.timed_out[session_id]
        # retransmission holds outlive nothing: an MN that never comes back must not
        # stay here (issue 5: no leaks over register/expire cycles)
        for nai, (started, _key) in list(self.in_progress.items()):
            if now - started >= IN_PROGRESS_HOLD:
                del self.in_progress[nai]
        return actions

    # ------------------------------------------------------------------ helpers

    def _complete(self, now: float, p: Pending, vpn_info: VpnInfo,
                  rrp_raw: bytes) -> list[Action]:
        """Cache the VPN info, set the FA's end of the VPN path, steer, reply (claim 16)."""
        rrp = mip.decode(rrp_raw)
        lifetime = rrp.lifetime if isinstance(rrp, mip.RegistrationReply) else p.rrq.lifetime
        handoff = vpn_info.handoff if vpn_info.smooth_handoff else None
        vpn_info = replace(vpn_info, handoff=None)
        old = self.visitors.get(p.nai)
        self.departed.pop(p.nai, None)
        actions = self._stop_forwarding(p.nai)
        # a renewal: same MN at the same port, nothing of a move between (fa_tunnels)
        settled = not actions and not p.stopped_forwarding and old is not None \
            and old.mn_mac == p.mn_mac and old.port == p.port and p.nai not in self.holds
        new_ids = {t.tunnel_id for t in vpn_info.tunnels_of(self.conf.name)}
        for tunnel_id in new_ids:          # back before its old tunnels went: set anew
            if self.retiring.pop(tunnel_id, None) is not None:
                settled = False
        ends = fa_tunnels.plan(self.conf.name, vpn_info, old.vpn_info if old else None,
                               settled, self.tunnels_up)
        if old is not None:
            gone = [t.tunnel_id for t in old.vpn_info.tunnels_of(self.conf.name)
                    if t.tunnel_id not in new_ids]
            actions += [RemoveTunnel(self.conf.name, tid) for tid in gone]
            for tid in gone:
                self.tunnels_up.pop(tid, None)
            if old.mn_mac != p.mn_mac or old.port != p.port:
                actions.append(SendFlows(self.conf.access_dpid, flows.remove_mn(old.mn_mac)))
        self.visitors[p.nai] = Visitor(p.nai, p.rrq.home_address, p.rrq.home_agent, p.mn_mac,
                                       p.port, kept_if_equal(vpn_info, old.vpn_info if old
                                                             else None),
                                       lifetime, now + lifetime,
                                       fa_key=p.fa_key)
        # Steering first: the FA's first packet towards the MN (its ARP request) comes
        # as soon as the tunnel is up, and the MN's answer must already pass the switch.
        actions.append(Mark(p.nai, "fa_setup"))
        held = self.holds.get(p.nai)
        unhold = flows.release_hold(held.mn_mac) if held is not None else ()
        old_fa = p.previous_fa or vpn_info.previous_foreign_agent
        uplink = fa_prepare.release_uplink(self.conf, p.nai, p.mn_mac, vpn_info, old_fa)
        # smooth handoff: the downlink falls over to the controller the moment the MN's
        # port goes (a fast-failover group), before this FA even hears of it.  Seamless
        # (issue 14): sent alongside the tunnel, settled before the reply (no downlink
        # reaches this FA before its CHILD_SA but what it held for the MN: then awaited;
        # the uplink has the prepared redirect)
        actions.append(SendFlows(self.conf.access_dpid,
                                 self._steering(self.visitors[p.nai], unhold)
                                 + (() if uplink else fa_prepare.redirect(
                                     self.conf, p.mn_mac, vpn_info, old_fa)),
                                 wait=not vpn_info.seamless_handover or held is not None))
        actions.append(Mark(p.nai, "flows_installed"))
        if vpn_info.seamless_handover:      # issue 14: no ARP wait for its downlink
            actions.append(AnnounceMobileNode(self.conf.name, p.mn_mac, p.rrq.home_address))
        # back here before a BU took what was held for it: the FA delivers it now
        actions += self._release(p.nai, forward=True, unpunted=True)
        actions += ends.adds    # a renewal's standing tunnels: kept (issue 15)
        actions.append(Mark(p.nai, "tunnel_up", {"kept": ends.kept} if ends.kept else {}))
        actions += uplink    # issue 14: the uplink held at this switch, then the redirect
        actions += self._to_mn(p, rrp_raw, accepted=True)
        if handoff is not None and old_fa in handoff.ends() and old_fa != self.conf.name:
            actions += self._handoff_update(now, p, handoff)       # claims 22-23
        elif old_fa and old_fa != self.conf.name:
            actions.append(NotifyVisitorLeft(old_fa, p.nai))
        # after the reply: the MN's next move is prepared at the neighbours (issue 14)
        actions += fa_prepare.prepare_neighbours(self.conf, self.visitors[p.nai], old,
                                                 self.visitors.values())
        # last: any other FA of this process still listing the MN drops it (idempotent)
        actions.append(VisitorMoved(p.nai, self.conf.name))
        self.counters["accepted"] += 1
        return actions

    def on_tunnel_up(self, now: float, tunnel_id: str) -> list[Action]:
        """The runtime saw ``tunnel_id`` established: a renewal may keep it (issue 15)."""
        if tunnel_id in self.tunnels_up:
            self.tunnels_up[tunnel_id] = True
        return []

    def _steering(self, visitor: Visitor, unhold: tuple[flows.Mod, ...] = ()
                  ) -> tuple[flows.Mod, ...]:
        """The visitor's flows on the access switch, with its QoS (claims 8, 9: its
        meters and DSCP, from its VPN information) when it has one."""
        return flows.with_mn_qos(
            unhold + flows.install_mn(visitor.mn_mac, visitor.port, self.conf.fa_port,
                                      visitor.vpn_info.smooth_handoff
                                      or visitor.vpn_info.seamless_handover),
            flows.visitors_qos([visitor], self.conf.name))

    def prepared_flows(self, dpid: int) -> list[flows.Mod]:
        """Every flow this FA wants on switch ``dpid`` for its visitors' next move
        (switch reconcile, issue 14): what it prepared there, if it is a neighbour's."""
        return fa_prepare.prepared_flows(self.conf, list(self.visitors.values()), dpid)

    def intended_flows(self) -> list[flows.Mod]:
        """Every flow this FA wants on its access switch now (switch reconcile): each
        visitor's steering with its QoS, or the punt of a departed MN's held downlink."""
        mods: list[flows.Mod] = []
        for visitor in list(self.visitors.values()):
            if visitor.nai in self.holds:   # departed, downlink held (claims 22-23)
                mods += flows.hold_mn(visitor.mn_mac, self.conf.fa_port)
            else:
                mods += self._steering(visitor)
        return mods

    def _to_mn(self, p: Pending, raw: bytes, accepted: bool) -> list[Action]:
        if not accepted:
            self.in_progress.pop(p.nai, None)
            self.counters["denied"] += 1
        code = raw[1] if len(raw) > 1 else None  # RRP: Type(8) Code(8) ...
        return [SendToMobileNode(self.conf.name, raw, p.mn_mac,
                                 conformance.reply_address(p.rrq.home_address, p.src_ip),
                                 p.port, p.src_port),
                Mark(p.nai, "rrp_sent", {"accepted": accepted, "code": code})]

    def _deny(self, rrq: mip.RegistrationRequest, mn_mac: str, port: int, code: int,
              lifetime: int = 0, *, reply_to: tuple[str, int]) -> list[Action]:
        """Refuse ``rrq`` with ``code``: the reply copies its Home Address, Home Agent
        and Identification (RFC 5944 §3.7.2.3) and goes to ``reply_to`` (the request's
        IP source address and UDP source port)."""
        self.in_progress.pop(rrq.nai or "", None)
        self.counters["denied"] += 1
        rrp = mip.RegistrationReply(code=code, lifetime=lifetime,
                                    home_address=rrq.home_address,
                                    home_agent=rrq.home_agent,
                                    identification=rrq.identification)
        LOG.info("%s: registration of %s denied, code %d", self.conf.name,
                 log_text(rrq.nai or rrq.home_address), code)
        return [SendToMobileNode(self.conf.name, mip.encode(rrp), mn_mac,
                                 conformance.reply_address(rrq.home_address, reply_to[0]),
                                 port, reply_to[1]),
                Mark(rrq.nai or rrq.home_address, "rrp_sent", {"accepted": False,
                                                               "code": code})]


    # ------------------------------------------------------------------ restart (issue 5)

    def export_state(self, nai: str) -> dict[str, object] | None:
        """What this FA holds for ``nai`` as a JSON-able record: the visitor entry, the
        forwarding tunnels it ends for the MN (claims 22-23), a departed entry and the
        last handoff Identification; None when it holds nothing."""
        def visitor(v: Visitor) -> dict[str, object]:
            return {"home_address": v.home_address, "home_agent": v.home_agent,
                    "mn_mac": v.mn_mac, "port": v.port,
                    "vpn_info": vpn_info_to_dict(v.vpn_info), "lifetime": v.lifetime,
                    "expires": v.expires, "fa_key": v.fa_key.hex()}

        v = self.visitors.get(nai)
        handoffs = [{"spec": tunnel_to_dict(h.spec), "expires": h.expires,
                     "old_side": h.old_side} for h in self.handoffs.values() if h.nai == nai]
        departed = self.departed.get(nai)
        if v is None and not handoffs and departed is None:
            return None
        return {"visitor": visitor(v) if v else None, "handoffs": handoffs,
                "departed": ({"visitor": visitor(departed[0]), "until": departed[1]}
                             if departed else None),
                "handoff_ident": self._handoff_ident.get(nai, 0)}

    def restore_state(self, nai: str, data: dict[str, Any]) -> None:
        def visitor(d: dict[str, Any]) -> Visitor:
            return Visitor(nai, d["home_address"], d["home_agent"], d["mn_mac"],
                           int(d["port"]), vpn_info_from_dict(d["vpn_info"]),
                           int(d["lifetime"]), float(d["expires"]),
                           fa_key=bytes.fromhex(d.get("fa_key", "")))

        if data.get("visitor"):
            self.visitors[nai] = visitor(data["visitor"])
        for h in data.get("handoffs", ()):
            spec = tunnel_from_dict(h["spec"])
            self.handoffs[spec.tunnel_id] = HandoffTunnel(nai, spec, float(h["expires"]),
                                                          bool(h["old_side"]))
        if data.get("departed"):
            self.departed[nai] = (visitor(data["departed"]["visitor"]),
                                  float(data["departed"]["until"]))
        if data.get("handoff_ident"):
            self._handoff_ident[nai] = int(data["handoff_ident"])

    def state_keys(self) -> set[str]:
        return (set(self.visitors) | set(self.departed)
                | {h.nai for h in self.handoffs.values()})

    def secondary_tunnels(self) -> set[str]:
        """Tunnel ids this FA ends as a secondary side: the forwarding tunnels of the
        MNs that moved here (smooth handoff, new-FA end)."""
        return {tid for tid, h in self.handoffs.items() if not h.old_side}

    def tunnels_wanted(self) -> list[TunnelSpec]:
        """Every tunnel this FA's gateway should hold: its visitors' and the forwarding
        tunnels it ends."""
        out = [t for v in self.visitors.values() for t in v.vpn_info.tunnels_of(self.conf.name)]
        return (out + [h.spec for h in self.handoffs.values()]
                + [r.spec for r in self.retiring.values()])


def _with_nonce(rrp_raw: bytes, answer: dia.AmAnswer) -> bytes:
    """The HA's Registration Reply with the MN's MN-FA key generation nonce appended
    (RFC 3957 via ``mip_keys``), when the AMA carries one."""
    nonce = answer.mn_fa_nonce
    if nonce is None:
        return rrp_raw
    try:
        rrp = mip.decode(rrp_raw)
    except mip.MipDecodeError:
        return rrp_raw
    lifetime = rrp.lifetime if isinstance(rrp, mip.RegistrationReply) else 0
    return mip_keys.with_nonce_reply(rrp_raw, mip_keys.NonceReply(nonce.spi, lifetime,
                                                                  nonce.nonce))
