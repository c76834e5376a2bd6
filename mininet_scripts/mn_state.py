"""The Mobile Node's movement detection and registration state machine (pure).

:class:`MobileNodeState` takes ``now`` (monotonic seconds) at every entry point and
returns a list of actions (:class:`SendRrq`, :class:`SendSolicitation`,
:class:`InstallDefaultRoute`, :class:`LogEvent`); no sockets, no clock.  The program
that runs it in a Mininet host (sockets, netlink, keys, command line) is
:mod:`mininet_scripts.mn_client`, whose docstring describes movement detection and the
RRQ's extensions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from controller.proto import mip
from controller.proto import mip_keys
from controller.proto import mip_rrq

VENDOR_ID = mip.MIPVPN_VENDOR_ID  # 32473, RFC 5612 documentation PEN (PROTOCOLS.md §9)
CVSE_PREVIOUS_FA = mip.CVSE_PREVIOUS_FA  # previous FA's care-of address (4 bytes)
CVSE_SERVICE_UPDATE = mip.CVSE_SERVICE_UPDATE  # service update request (claim 24)

SOLICIT_AFTER = 3.0  # s of silence before soliciting
FIRST_RETRANSMIT = 1.0  # s; doubles each retry
MAX_ATTEMPTS = 5
RENEW_FRACTION = 0.8
DENIED_RETRY = 10.0  # s after a denial before trying the same agent again


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class SendRrq:
    payload: bytes
    identification: int
    care_of_address: str


@dataclass(frozen=True)
class SendSolicitation:
    pass


@dataclass(frozen=True)
class InstallDefaultRoute:
    router_address: str
    router_mac: str


@dataclass(frozen=True)
class LogEvent:
    event: str
    fields: dict[str, Any] = field(default_factory=dict)


Action = Union[SendRrq, SendSolicitation, InstallDefaultRoute, LogEvent]


@dataclass(frozen=True)
class MnConfig:
    nai: str
    home_address: str
    home_agent: str
    spi: int
    key: bytes = field(repr=False)
    lifetime: int = 300
    ha_spi: int | None = None          # MN-HA security association (optional)
    ha_key: bytes | None = field(default=None, repr=False)
    simultaneous: bool = False         # S in every RRQ (issue 14: seamless profiles)


@dataclass(frozen=True)
class Agent:
    """A foreign agent as heard in an advertisement."""

    router_address: str
    care_of_address: str
    mac: str
    registration_lifetime: int


@dataclass
class _Pending:
    agent: Agent
    previous_coa: str | None
    identification: int
    attempts: int
    deadline: float
    lifetime: int
    sent: tuple[int, ...] = ()  # every Identification sent for this registration
    service_update: bool = False

    def matches(self, identification: int) -> bool:
        low = identification & 0xFFFFFFFF
        return any((i & 0xFFFFFFFF) == low for i in self.sent)


# --------------------------------------------------------------------------- pure state


class MobileNodeState:
    """Movement detection and registration state machine of the MN (pure).

    ``wall_offset`` = wall-clock minus ``now`` (the runner passes
    ``time.time() - time.monotonic()``); it turns ``now`` into the NTP Identification.
    """

    def __init__(self, config: MnConfig, wall_offset: float = 0.0,
                 rand: Callable[[], int] | None = None) -> None:
        self.config = config
        self.wall_offset = wall_offset
        self._rand = rand or (lambda: random.getrandbits(8))
        self.agent: Agent | None = None  # agent we are registered with
        self.pending: _Pending | None = None
        self.registered_coa: str | None = None  # CoA of the last accepted registration
        self.expires_at: float | None = None
        self.renew_at: float | None = None
        self.retry_at: float | None = None  # after denial / timeout
        self.last_heard: float | None = None
        self.last_solicit: float | None = None
        self.last_advert_agent: Agent | None = None
        self.failed_agent: Agent | None = None
        self.service_update_wanted = False
        self._last_ident = 0
        # MN-FA association (RFC 3957): SPI and key derived from the nonce of the last
        # accepted full registration; signs every RRQ (issue 11: a move is answered by
        # the foreign AAA only when it verifies)
        self.mn_fa_spi: int | None = None
        self.mn_fa_key: bytes | None = None

    # ------------------------------------------------------------------ inputs

    @property
    def registered(self) -> bool:
        return self.agent is not None

    def start(self, now: float) -> list[Action]:
        self.last_solicit = now
        self.last_heard = now
        return [SendSolicitation(), LogEvent("solicit")]

    def on_advertisement(self, now: float, adv: mip.AgentAdvertisement,
                         src_mac: str) -> list[Action]:
        self.last_heard = now
        if not adv.is_foreign_agent or not adv.care_of_addresses:
            return []
        heard = Agent(adv.router_address, adv.care_of_addresses[0], src_mac,
                      adv.registration_lifetime)
        actions: list[Action] = []
        if self.last_advert_agent is None or not self._same_agent(self.last_advert_agent, heard):
            actions.append(LogEvent("advert", {"coa": heard.care_of_address,
                                               "fa": heard.router_address}))
        self.last_advert_agent = heard
        target = self.pending.agent if self.pending else self.agent
        if target is not None and self._same_agent(target, heard):
            return actions  # same link; renewals come from tick()
        if self.failed_agent is not None and self._same_agent(self.failed_agent, heard) \
                and self.retry_at is not None and now < self.retry_at:
            return actions  # this agent just denied / timed out: back off
        return actions + self._begin(now, heard, self._previous_for(heard))

    def request_service_update(self, now: float) -> list[Action]:
        """Claim 24: re-register with the service-update request (at once when
        registered and idle; else with the next registration)."""
        self.service_update_wanted = True
        actions: list[Action] = [LogEvent("service_update_requested")]
        if self.pending is None and self.agent is not None:
            actions += self._begin(now, self.agent, None)
        return actions

    def reply_authentic(self, rrp: mip.RegistrationReply, raw: bytes | None) -> bool:
        """RFC 5944 §3.6.2.1: with an MN-HA key, a reply from the HA's range must carry
        a valid MN-HA authenticator.  FA denials (64-127) are not authenticated."""
        if self.config.ha_key is None or 64 <= rrp.code <= 127:
            return True
        return raw is not None and mip.verify_auth(raw, mip.AuthKind.MN_HA, self.config.ha_key)

    def on_reply(self, now: float, rrp: mip.RegistrationReply,
                 raw: bytes | None = None) -> list[Action]:
        """A Registration Reply; ``raw`` (its bytes) is needed to check MN-HA auth."""
        pending = self.pending
        if pending is None:
            return []
        if not pending.matches(rrp.identification) \
                or rrp.home_address != self.config.home_address:
            return [LogEvent("rrp_ignored", {"code": rrp.code})]
        if not self.reply_authentic(rrp, raw):
            return [LogEvent("rrp_bad_auth", {"code": rrp.code})]
        actions: list[Action] = [LogEvent("rrp", {"code": rrp.code,
                                                  "coa": pending.agent.care_of_address,
                                                  "fa": pending.agent.router_address})]
        self.pending = None
        if rrp.accepted:
            self._take_nonce(rrp)
            if pending.service_update:
                self.service_update_wanted = False
            self.agent = pending.agent
            self.registered_coa = pending.agent.care_of_address
            self.retry_at = None
            self.failed_agent = None
            granted = rrp.lifetime
            self.expires_at = now + granted if granted else None
            self.renew_at = now + RENEW_FRACTION * granted if granted else None
            actions.append(InstallDefaultRoute(pending.agent.router_address, pending.agent.mac))
            actions.append(LogEvent("registered", {"coa": pending.agent.care_of_address,
                                                   "fa": pending.agent.router_address,
                                                   "code": rrp.code, "lifetime": granted}))
            return actions
        actions.append(LogEvent("denied", {"code": rrp.code,
                                           "coa": pending.agent.care_of_address,
                                           "fa": pending.agent.router_address}))
        if rrp.code == mip.CODE_HA_IDENTIFICATION_MISMATCH and pending.attempts < MAX_ATTEMPTS:
            # HA clock in the high 32 bits: adopt it and retry at once (5944 §5.7).
            self.wall_offset = mip.identification_time(rrp.identification & ~0xFFFFFFFF) - now
            actions += self._send(now, pending.agent, pending.previous_coa,
                                  pending.attempts + 1)
            return actions
        # Keep the old binding if there was one; try this agent again later.
        self._pending_target_failed(now, pending)
        return actions

    def _take_nonce(self, rrp: mip.RegistrationReply) -> None:
        """Derive the MN-FA key from the reply's key generation nonce, if it has one (a
        move answered locally has none: the key stays)."""
        try:
            reply = mip_keys.nonce_reply(rrp)
        except mip.MipDecodeError:
            return
        if reply is not None:
            self.mn_fa_spi = reply.spi
            self.mn_fa_key = mip_keys.mn_fa_key(self.config.key, reply.nonce, self.config.nai)

    def tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        p = self.pending
        if p is not None and now >= p.deadline:
            if p.attempts < MAX_ATTEMPTS:
                actions += self._send(now, p.agent, p.previous_coa, p.attempts + 1)
            else:
                actions.append(LogEvent("timeout", {"coa": p.agent.care_of_address,
                                                    "fa": p.agent.router_address}))
                self._pending_target_failed(now, p)
        if self.agent is not None and self.expires_at is not None and now >= self.expires_at:
            actions.append(LogEvent("expired", {"coa": self.agent.care_of_address}))
            self.agent = None
            self.expires_at = self.renew_at = None
            if self.pending is None:
                self.retry_at = now
        if self.pending is None and self.agent is not None and self.renew_at is not None \
                and now >= self.renew_at:
            actions += self._begin(now, self.agent, None)
        if self.pending is None and self.agent is None and self.retry_at is not None \
                and now >= self.retry_at and self.last_advert_agent is not None:
            heard = self.last_advert_agent
            actions += self._begin(now, heard, self._previous_for(heard))
        if (self.last_heard is None or now - self.last_heard >= SOLICIT_AFTER) and \
                (self.last_solicit is None or now - self.last_solicit >= SOLICIT_AFTER):
            self.last_solicit = now
            actions += [SendSolicitation(), LogEvent("solicit")]
        return actions

    def next_deadline(self) -> float | None:
        """Earliest time :meth:`tick` has something to do (for the loop's timeout)."""
        times = [t for t in (
            self.pending.deadline if self.pending else None,
            self.renew_at if self.pending is None and self.agent else None,
            self.expires_at if self.agent else None,
            self.retry_at,
            (max(self.last_heard or 0.0, self.last_solicit or 0.0) + SOLICIT_AFTER),
        ) if t is not None]
        return min(times) if times else None

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _same_agent(a: Agent, b: Agent) -> bool:
        return a.care_of_address == b.care_of_address and a.router_address == b.router_address

    def _previous_for(self, heard: Agent) -> str | None:
        """CoA to announce as "previous FA" when registering via ``heard``."""
        if self.registered_coa is None or self.registered_coa == heard.care_of_address:
            return None
        return self.registered_coa

    def _pending_target_failed(self, now: float, pending: _Pending) -> None:
        self.pending = None
        self.failed_agent = pending.agent
        self.retry_at = now + DENIED_RETRY
        if self.agent is not None and self._same_agent(self.agent, pending.agent):
            self.renew_at = self.retry_at  # renewal refused: keep binding, retry later
        else:
            # We moved away from the registered agent: that binding is of no use here.
            self.agent = None

    def _begin(self, now: float, agent: Agent, previous_coa: str | None) -> list[Action]:
        self.retry_at = None
        self.failed_agent = None
        return self._send(now, agent, previous_coa, 1)

    def _identification(self, now: float) -> int:
        ident = mip.ntp_identification(now + self.wall_offset, self._rand())
        if ident <= self._last_ident:  # strictly increasing (5944 §5.7)
            ident = self._last_ident + 1
        self._last_ident = ident
        return ident

    def build_rrq(self, agent: Agent, identification: int, previous_coa: str | None,
                  lifetime: int, service_update: bool = False) -> bytes:
        """NAI, [previous-FA CVSE], [service-update CVSE], [MN-HA auth], MN-AAA auth,
        [MN-FA auth] (PROTOCOLS.md §2 order; :func:`controller.proto.mip_rrq.build_rrq`)."""
        c = self.config
        return mip_rrq.build_rrq(
            nai=c.nai, home_address=c.home_address, home_agent=c.home_agent,
            care_of_address=agent.care_of_address, identification=identification,
            lifetime=lifetime, mn_aaa_spi=c.spi, mn_aaa_key=c.key,
            previous_coa=previous_coa, service_update=service_update,
            ha_spi=c.ha_spi, ha_key=c.ha_key, fa_spi=self.mn_fa_spi, fa_key=self.mn_fa_key,
            simultaneous=c.simultaneous)

    def _send(self, now: float, agent: Agent, previous_coa: str | None,
              attempt: int) -> list[Action]:
        lifetime = self.config.lifetime
        if agent.registration_lifetime:
            lifetime = min(lifetime, agent.registration_lifetime)
        ident = self._identification(now)
        service_update = self.service_update_wanted
        payload = self.build_rrq(agent, ident, previous_coa, lifetime, service_update)
        sent: tuple[int, ...] = (ident,)
        if attempt > 1 and self.pending is not None and self._same_agent(self.pending.agent, agent):
            sent = self.pending.sent + sent
        self.pending = _Pending(agent, previous_coa, ident, attempt,
                                now + FIRST_RETRANSMIT * (2 ** (attempt - 1)), lifetime, sent,
                                service_update)
        fields: dict[str, Any] = {"coa": agent.care_of_address, "fa": agent.router_address,
                                  "attempt": attempt, "identification": ident}
        if previous_coa:
            fields["previous_coa"] = previous_coa
        if service_update:
            fields["service_update"] = True
        return [SendRrq(payload, ident, agent.care_of_address), LogEvent("rrq_sent", fields)]
