"""Home AAA server, AAAH (claims 1-4, 6, 8, 16, 18, 19, 21, 23, 24).

Authenticates the MN (MN-AAA authenticator, RFC 3012, keyed from the VPN database),
extracts the user's VPN profile (destination hosts, gateway type, security service,
QoS), computes the VPN set path (claim 8: from the FA the MN is at, its HA and the
gateways of its destinations), generates per-tunnel security information, caches
the VPN information, sends it to the HA in the HAR and, on the HAA, to the foreign
domain in the AMA (claim 4: distribution inside the authentication answer).

Route optimisation (claim 19): a destination behind a gateway of the dynamic type gets
an FA<->CN-GW tunnel instead of the HA legs; the HAR carries it to the HA, which posts
it to the CN-GW in a Binding Update, signed with the per-(HA, CN-GW) key this server
provisions at start (``binding_keys``).  On a move with smooth handoff (claim 23) the
AMA also carries "the information of the old FA": the old-FA<->new-FA tunnel, keyed
from the old FA's security information (``vpn.handoff_tunnel``).

Key distribution (issue 11, RFC 4004 §9, RFC 3957): each full registration gets a fresh
random session secret and an MN-FA key derived from the MN-AAA key and a fresh nonce.
The HAR gives the HA the secret; the AMA gives the foreign AAA the secret and the MN-FA
key (MIP-FA-to-MN-MSA), the MN the nonce (Mipvpn-MN-to-FA-MSA, which the FA puts into
its Registration Reply) and the FA its FA-HA key (MIP-FA-to-HA-MSA).  The secret and the
MN-FA key go only to a foreign AAA (an AMR it proxied), never to an FA.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from controller.core.actions import Action, AnswerDiameter, Mark, SendDiameter
from controller.core.binding import BINDING_SPI_BASE, BindingKey, new_binding_key
from controller.core.expiry import ExpiryDict
from controller.core.persist import Changes, TrackedDict
from controller.core.records import vpn_info_from_dict, vpn_info_to_dict
from controller.core.role import Role
from controller.core.vpn import (DISTRIBUTION_ON_DEMAND, DISTRIBUTION_REGISTRATION,
                                 GatewayType, QosSpec, SecuritySpec, TunnelEnd, TunnelSpec,
                                 VpnInfo, fa_ha_key, for_home_agent, handoff_tunnel,
                                 kept_if_equal, new_psk, owner_of, restricted_to,
                                 tunnel_name)
from controller.logtext import log_text
from controller.model.dataclass_copy import replace
from controller.proto import diameter as dia
from controller.proto import mip
from controller.proto import mip_keys

LOG = logging.getLogger("mipvpn.aaah")



@dataclass(frozen=True)
class UserRecord:
    nai: str
    home_address: str
    home_agent: str            # HA gateway name
    mn_aaa_spi: int
    mn_aaa_key: bytes = field(repr=False)
    mn_ha_spi: int = 0         # MN-HA security association (0 / b"": none)
    mn_ha_key: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Destination:
    prefix: str
    gateway: str


@dataclass(frozen=True)
class VpnProfile:
    nai: str
    destinations: tuple[Destination, ...]
    security: SecuritySpec
    qos: QosSpec
    smooth_handoff: bool = False                 # claims 22-23
    distribution: str = DISTRIBUTION_REGISTRATION  # or "on_demand" (claims 2, 5)
    seamless_handover: bool = False              # issue 14


@dataclass(frozen=True)
class GatewayInfo:
    name: str
    kind: str                  # home_agent | foreign_agent | cn_gateway
    address: str               # core address
    gateway_type: GatewayType = GatewayType.STATIC
    prefixes: tuple[str, ...] = ()  # networks behind it (home prefixes, corporate prefixes)


@dataclass(frozen=True)
class SessionKeys:
    """What one full registration generates (issue 11); never logged."""

    secret: bytes = field(repr=False)          # -> foreign AAA, HA
    nonce: bytes = field(repr=False)           # -> MN (through the FA)
    mn_fa_key: bytes = field(repr=False)       # -> foreign AAA

    def __init__(self, secret: bytes, nonce: bytes, mn_fa_key: bytes) -> None:
        object.__setattr__(self, "secret", secret)
        object.__setattr__(self, "nonce", nonce)
        object.__setattr__(self, "mn_fa_key", mn_fa_key)


class VpnDatabase(Protocol):
    def user(self, nai: str) -> UserRecord | None: ...
    def profile(self, nai: str) -> VpnProfile | None: ...


class HomeAaa(Role):
    def __init__(self, host: str, realm: str, db: VpnDatabase,
                 gateways: dict[str, GatewayInfo], home_agent_hosts: dict[str, str],
                 psk_factory: Callable[[], bytes] = new_psk,
                 binding_key_factory: Callable[[int], BindingKey] = new_binding_key,
                 ) -> None:
        """``home_agent_hosts``: HA gateway name -> its Diameter identity."""
        self.host = host
        self.realm = realm
        self.db = db
        self.gateways = gateways
        self.home_agent_hosts = home_agent_hosts
        self.psk_factory = psk_factory
        # HA <-> CN-GW binding security associations, one per CN gateway, made once at
        # start (like the stationary tunnels) and handed to the HA and each CN-GW role
        cn_gateways = sorted(n for n, g in gateways.items() if g.kind == "cn_gateway")
        self.binding_keys: dict[str, BindingKey] = {
            name: binding_key_factory(BINDING_SPI_BASE + i)
            for i, name in enumerate(cn_gateways)}
        self.changes = Changes()   # restart persistence: sessions and secrets, per NAI
        self.sessions: dict[str, VpnInfo] = TrackedDict(self.changes)  # VPN cache (claim 16)
        # NAI -> when its cached VPN information lapses: the Authorization-Lifetime
        # (the registration lifetime the HA granted), renewed by each registration
        self.session_expires: ExpiryDict[str, float] = ExpiryDict(float)
        self.pending: dict[str, tuple[dia.AmRequest, VpnInfo, SessionKeys]] = {}
        # NAI -> the session secret of its cached registration (smooth-handoff anchor)
        self.secrets: dict[str, bytes] = TrackedDict(self.changes)
        self._seq = itertools.count(1)
        self.counters = {"accepted": 0, "rejected": 0}

    # ------------------------------------------------------------ static paths

    def static_tunnels(self) -> list[TunnelSpec]:
        """Stationary HA<->CN-GW tunnels (claim 16 step 1), one per static gateway,
        initiated by the CN's gateway towards the home agent."""
        specs = []
        for ha in sorted((g for g in self.gateways.values() if g.kind == "home_agent"),
                         key=lambda g: g.name):
            for gw in sorted((g for g in self.gateways.values() if g.kind == "cn_gateway"),
                             key=lambda g: g.name):
                if gw.gateway_type is not GatewayType.STATIC:
                    continue
                specs.append(TunnelSpec(
                    tunnel_id=tunnel_name("static", ha.name, gw.name),
                    a=TunnelEnd(ha.name, ha.address, ha.prefixes),
                    b=TunnelEnd(gw.name, gw.address, gw.prefixes),
                    psk=self.psk_factory(), initiator=gw.name))
        return specs

    # ------------------------------------------------------------ Diameter

    def on_amr(self, now: float, amr: dia.AmRequest) -> list[Action]:
        user = self.db.user(amr.user_name)
        # the SPI names the MN-AAA association (RFC 3012 §6; MIP-MN-AAA-SPI, RFC 4004)
        if user is None or amr.mn_aaa_spi != user.mn_aaa_spi or not mip.verify_auth(
                amr.reg_request, mip.AuthKind.MN_AAA, user.mn_aaa_key):
            self.counters["rejected"] += 1
            LOG.info("AAAH: authentication of %s rejected (%s)", log_text(amr.user_name),
                     "unknown user" if user is None else "bad MN-AAA authenticator")
            return [AnswerDiameter(self._answer(amr, dia.AUTHENTICATION_REJECTED,
                                                error="authentication rejected"))]
        rrq = mip.decode(amr.reg_request)
        assert isinstance(rrq, mip.RegistrationRequest)
        if rrq.home_address != user.home_address:
            self.counters["rejected"] += 1
            return [AnswerDiameter(self._answer(amr, dia.AUTHENTICATION_REJECTED,
                                                error="home address not assigned to user"))]
        previous_fa = amr.previous_fa or self._foreign_agent_at(amr.previous_fa_address)
        try:
            vpn_info = self.vpn_set_path(user, amr.foreign_agent, rrq.care_of_address,
                                         previous_fa=previous_fa)
        except KeyError as exc:
            return [AnswerDiameter(self._answer(amr, dia.UNABLE_TO_COMPLY,
                                                error=f"no VPN path: {exc}"))]
        handoff = self._handoff(amr.user_name, vpn_info, previous_fa)
        nonce = mip_keys.new_nonce()
        keys = SessionKeys(self.psk_factory(), nonce,
                           mip_keys.mn_fa_key(user.mn_aaa_key, nonce, user.nai))
        ha = self.gateways[user.home_agent]
        har = dia.HaRequest(
            session_id=f"{self.host};{int(now)};{next(self._seq)}",
            origin_host=self.host, origin_realm=self.realm, destination_realm=self.realm,
            destination_host=self.home_agent_hosts[ha.name], user_name=amr.user_name,
            reg_request=amr.reg_request, authorization_lifetime=rrq.lifetime,
            auth_session_state=1, feature_vector=amr.feature_vector,
            home_address=rrq.home_address, home_agent_address=ha.address,
            vpn_info=for_home_agent(vpn_info), ha_to_fa_key=None,
            originating_foreign_aaa=amr.originating_foreign_aaa, session_secret=keys.secret)
        self.pending[har.session_id] = (amr, with_handoff(vpn_info, handoff), keys)
        marks: list[Action] = [Mark(amr.user_name, "aaah_authenticated")]
        if amr.service_update:   # claim 24: the profile was just re-read for this path
            marks.append(Mark(amr.user_name, "service_update"))
        return marks + [SendDiameter(har, to=har.destination_host)]

    def on_diameter_answer(self, now: float, haa: dia.HaAnswer) -> list[Action]:
        entry = self.pending.pop(haa.session_id, None)
        if entry is None:
            return []
        amr, vpn_info, keys = entry
        if haa.result_code != dia.SUCCESS:
            self.counters["rejected"] += 1
            return [AnswerDiameter(self._answer(amr, dia.ERROR_MIP_REPLY_FAILURE,
                                                reg_reply=haa.reg_reply,
                                                error=haa.error_message or "HA refused"))]
        self.secrets[amr.user_name] = keys.secret
        vpn_info = keys_in_use(vpn_info, haa.vpn_info)   # issue 15: a renewal's kept keys
        self.sessions[amr.user_name] = kept_if_equal(with_handoff(vpn_info, None),
                                                     self.sessions.get(amr.user_name))
        self.session_expires[amr.user_name] = now + _granted_lifetime(haa.reg_reply,
                                                                      amr.reg_request)
        self.counters["accepted"] += 1
        return [Mark(amr.user_name, "aaah_answer"), AnswerDiameter(self._with_keys(
            amr, haa.reg_reply, restricted_to(vpn_info, vpn_info.foreign_agent), keys))]

    def _with_keys(self, amr: dia.AmRequest, reg_reply: bytes, vpn_info: VpnInfo,
                   keys: SessionKeys) -> dia.AmAnswer:
        """The AMA with its key distribution (RFC 4004 §9): the FA's FA-HA key and the
        MN's nonce always; the session secret and the MN-FA key only when a foreign AAA
        proxied the AMR (it strips them before answering its FA).  One construction,
        every field by position (issue 15: not a copy through keywords)."""
        proxied = amr.originating_foreign_aaa is not None
        return dia.AmAnswer(
            amr.session_id, dia.SUCCESS, self.host, self.realm, amr.user_name, reg_reply,
            amr.home_address, amr.home_agent_address, vpn_info,
            dia.MsaKey(mip_keys.FA_HA_SPI, fa_ha_key(keys.secret, vpn_info.foreign_agent)),
            dia.MsaKey(mip_keys.MN_FA_SPI, keys.mn_fa_key) if proxied else None,
            dia.MnFaNonce(mip_keys.MN_FA_SPI, keys.nonce),
            keys.secret if proxied else b"")

    def on_diameter_timeout(self, now: float, session_id: str) -> list[Action]:
        entry = self.pending.pop(session_id, None)
        if entry is None:
            return []
        return [AnswerDiameter(self._answer(entry[0], dia.ERROR_HA_NOT_AVAILABLE,
                                            error="home agent did not answer"))]

    def on_tick(self, now: float) -> list[Action]:
        """Drop cached VPN information whose authorization lifetime ran out without a
        renewal (issue 5: nothing stays behind an expired registration)."""
        for nai in self.session_expires.due(now):
            del self.session_expires[nai]
            self.sessions.pop(nai, None)
            self.secrets.pop(nai, None)
        return []

    # ------------------------------------------------------------ VPN set path

    def vpn_set_path(self, user: UserRecord, foreign_agent: str, care_of_address: str,
                     previous_fa: str = "") -> VpnInfo:
        """Claim 8: from the FA (its identity in the AMR), the MN's HA and the
        correspondence table (profile destination -> gateway), the tunnels to set.
        Claim 19: a gateway of the dynamic type gets one FA<->CN-GW tunnel for all its
        destinations (selectors: those prefixes <-> the home address); the FA initiates
        it (it sets its end last), unless the profile distributes on demand (claim 5),
        where the CN-GW sets its end last, on the correspondent's first packet."""
        profile = self.db.profile(user.nai)
        fa = self.gateways[foreign_agent]
        if fa.kind != "foreign_agent" or fa.address != care_of_address:
            raise KeyError(f"foreign agent {foreign_agent} / care-of {care_of_address}")
        ha = self.gateways[user.home_agent]
        destinations = profile.destinations if profile else ()
        security = profile.security if profile else SecuritySpec()
        qos = profile.qos if profile else QosSpec()
        distribution = profile.distribution if profile else DISTRIBUTION_REGISTRATION
        via_ha: list[str] = []
        direct: dict[str, list[str]] = {}   # dynamic CN-GW -> its destination prefixes
        tunnels: list[TunnelSpec] = []
        for dest in destinations:
            gw = self.gateways[dest.gateway]
            if gw.gateway_type is GatewayType.DYNAMIC:
                direct.setdefault(gw.name, []).append(dest.prefix)
                continue
            via_ha.append(dest.prefix)
            for static in self.static_tunnels_of(ha.name, gw.name):
                if static not in tunnels:
                    tunnels.append(static)
        owner = owner_of(user.nai)
        home = (f"{user.home_address}/32",)
        if via_ha:
            tunnels.insert(0, TunnelSpec(
                tunnel_id=tunnel_name(owner, ha.name, fa.name),
                a=TunnelEnd(ha.name, ha.address, tuple(via_ha)),
                b=TunnelEnd(fa.name, fa.address, home),
                psk=self.psk_factory(), security=security, qos=qos, initiator=fa.name))
        for name, prefixes in direct.items():
            gw = self.gateways[name]
            tunnels.append(TunnelSpec(
                tunnel_id=tunnel_name(owner, gw.name, fa.name),
                a=TunnelEnd(gw.name, gw.address, tuple(prefixes)),
                b=TunnelEnd(fa.name, fa.address, home),
                psk=self.psk_factory(), security=security, qos=qos,
                initiator=gw.name if distribution == DISTRIBUTION_ON_DEMAND else fa.name))
        return VpnInfo(nai=user.nai, home_address=user.home_address, home_agent=ha.name,
                       foreign_agent=fa.name, tunnels=tuple(tunnels),
                       previous_foreign_agent=previous_fa,
                       smooth_handoff=bool(profile and profile.smooth_handoff),
                       seamless_handover=bool(profile and profile.seamless_handover),
                       distribution=distribution)

    def _foreign_agent_at(self, address: str) -> str:
        """The FA whose care-of address is ``address`` (a previous FA of another
        domain, which the new FA can only name by address)."""
        for gw in self.gateways.values():
            if address and gw.kind == "foreign_agent" and gw.address == address:
                return gw.name
        return ""

    def _handoff(self, nai: str, info: VpnInfo, previous_fa: str) -> TunnelSpec | None:
        """Claim 23: the old FA <-> new FA tunnel for a smooth handoff, when the profile
        asks for it and this server holds the session the old FA served: its key
        derives from the old FA's FA-HA key of that session (``vpn.fa_ha_key``), which
        the old FA holds whether the foreign AAA moved the MN there locally or not."""
        secret = self.secrets.get(nai)
        if (not info.smooth_handoff or not previous_fa or nai not in self.sessions
                or not secret or previous_fa == info.foreign_agent
                or previous_fa not in self.gateways):
            return None
        old_address = self.gateways[previous_fa].address
        return handoff_tunnel(info, previous_fa, old_address, fa_ha_key(secret, previous_fa))

    def static_tunnels_of(self, ha: str, gateway: str) -> list[TunnelSpec]:
        """The stationary tunnel between ``ha`` and ``gateway`` as VPN information.

        The security information is not repeated here (the gateways already hold it);
        the HA only needs to know the path exists and keeps it (claim 16).
        """
        ha_gw, gw = self.gateways[ha], self.gateways[gateway]
        return [TunnelSpec(tunnel_name("static", ha, gateway),
                           TunnelEnd(ha, ha_gw.address, ha_gw.prefixes),
                           TunnelEnd(gateway, gw.address, gw.prefixes), psk=b"",
                           initiator=gateway)]

    def _answer(self, amr: dia.AmRequest, code: int, reg_reply: bytes = b"",
                vpn_info: VpnInfo | None = None, error: str = "") -> dia.AmAnswer:
        return dia.AmAnswer(session_id=amr.session_id, result_code=code,
                            origin_host=self.host, origin_realm=self.realm,
                            user_name=amr.user_name, reg_reply=reg_reply,
                            home_address=amr.home_address,
                            home_agent_address=amr.home_agent_address,
                            vpn_info=vpn_info, error_message=error)

    # ------------------------------------------------------------ restart (issue 5)

    def export_state(self, nai: str) -> dict[str, object] | None:
        """The cached VPN information of ``nai`` (claim 16) as a JSON-able record."""
        info = self.sessions.get(nai)
        if info is None:
            return None
        secret = self.secrets.get(nai)
        return {"vpn_info": vpn_info_to_dict(info), "expires": self.session_expires.get(nai),
                "secret": secret.hex() if secret else ""}

    def restore_state(self, nai: str, data: dict[str, Any]) -> None:
        self.sessions[nai] = vpn_info_from_dict(data["vpn_info"])
        if data.get("expires") is not None:     # records written before it had none
            self.session_expires[nai] = float(data["expires"])
        if data.get("secret"):
            self.secrets[nai] = bytes.fromhex(data["secret"])

    def forget_state(self, nai: str) -> None:
        self.sessions.pop(nai, None)
        self.secrets.pop(nai, None)
        self.session_expires.pop(nai, None)

    def state_keys(self) -> set[str]:
        return set(self.sessions) | set(self.secrets)


def with_handoff(info: VpnInfo, handoff: TunnelSpec | None) -> VpnInfo:
    """``replace(info, handoff=handoff)``, or ``info`` itself when that is its handoff
    tunnel already (frozen: nothing to copy; issue 15, most registrations have none)."""
    same = info.handoff is handoff or info.handoff == handoff
    return info if same else replace(info, handoff=handoff)


def keys_in_use(info: VpnInfo, bound: VpnInfo | None) -> VpnInfo:
    """``info`` with the key of each HA tunnel the HA kept as it stood (a renewal that
    changed nothing, issue 15: ``ha_tunnels.plan``), from ``bound``, the VPN information
    of the HA's answer: only for a tunnel the HA is an end of, equal but for the key."""
    if bound is None:
        return info
    theirs = {t.tunnel_id: t for t in bound.tunnels if t.psk}
    tunnels = list(info.tunnels)
    changed = False
    for i, t in enumerate(tunnels):
        kept = theirs.get(t.tunnel_id)
        if (kept is not None and kept.psk != t.psk and info.home_agent in t.ends()
                and replace(kept, psk=t.psk) == t):
            tunnels[i] = kept
            changed = True
    return replace(info, tunnels=tuple(tunnels)) if changed else info


def _granted_lifetime(reg_reply: bytes, reg_request: bytes) -> float:
    """Seconds the registration was granted (the HA's Registration Reply), else asked
    for (the Request); 0 when neither decodes."""
    for raw in (reg_reply, reg_request):
        try:
            msg = mip.decode(raw) if raw else None
        except mip.MipDecodeError:
            continue
        lifetime = getattr(msg, "lifetime", None)
        if isinstance(lifetime, int):
            return float(lifetime)
    return 0.0
