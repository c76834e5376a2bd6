"""Mobile Node program run inside a Mininet host namespace.

    python -m mininet_scripts.mn_client --nai alice@home.example \\
        --home-address 10.10.0.100 --home-agent 10.0.0.1 --spi 300 --key-file F \\
        [--ha-spi 400 --ha-key-file F] \\
        --iface mn1-eth0 --lifetime 300 --events /path/events.jsonl

The keys (hex) come from files (``--key-file`` / ``--ha-key-file``: keep them 0600) or
from the environment (``$MIPVPN_MN_AAA_KEY`` / ``$MIPVPN_MN_HA_KEY``), never from the
command line, which every user of the machine can read (``ps``, ``/proc/PID/cmdline``):
``--key`` / ``--ha-key`` are refused.

``SIGUSR1`` asks for a service update (claim 24): the MN re-registers at once with the
service-update CVSE, so the home AAA re-reads its (just customised) VPN profile.

Two layers:

- :class:`MobileNodeState` — pure movement detection / registration logic. Every entry
  point takes ``now`` (monotonic seconds) and returns a list of actions
  (:class:`SendRrq`, :class:`SendSolicitation`, :class:`InstallDefaultRoute`,
  :class:`LogEvent`). No sockets, no clock.
- :class:`MobileNodeRunner` — the socket loop: an AF_PACKET socket on the interface to
  hear ICMP agent advertisements (it needs the source MAC, which an IPPROTO_ICMP raw socket
  does not give), a raw ICMP socket to send solicitations to 224.0.0.11, a UDP socket
  bound to ``home_address:434`` (IP_FREEBIND, SO_BINDTODEVICE, SO_BROADCAST) to send the
  RRQ to 255.255.255.255:434 and receive the Reply, and pyroute2 for the default route /
  neighbour entry. The home address must be assigned to the interface.

Movement detection (RFC 5944 §2.4.2 "lazy" cell switching by advertisement): an
advertisement with the F flag and a CoA or router address different from the agent we
are registered with (or registering with) means a new link. The RRQ carries, in the
order of RFC 5944 §3.6.1.3 / RFC 3012 §3.1: MN-NAI (131); after a move a CVSE (vendor
:data:`VENDOR_ID`, type :data:`CVSE_PREVIOUS_FA`) carrying the previous CoA as 4 bytes;
for a service update (claim 24) a CVSE type :data:`CVSE_SERVICE_UPDATE` with no value;
MN-HA authentication (32, HMAC-MD5) when an MN-HA key is configured; MN-AAA
authentication (36/1, HMAC-MD5) last, covering everything before it.  With an MN-HA key,
replies in the HA's range (codes 0-1, 128-192) must carry a valid MN-HA authenticator
(RFC 5944 §3.6.2.1), else they are ignored; the FA's own denials (64-127) carry none.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import selectors
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO, Union

from controller.proto import mip
from controller.proto import mip_keys
from controller.proto import mip_rrq

log = logging.getLogger("mipvpn.mn_client")

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
            ha_spi=c.ha_spi, ha_key=c.ha_key, fa_spi=self.mn_fa_spi, fa_key=self.mn_fa_key)

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


# --------------------------------------------------------------------------- socket loop

ETH_P_IP = 0x0800
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


def parse_frame(frame: bytes) -> tuple[str, bytes] | None:
    """(source MAC, ICMP bytes) of an Ethernet/IPv4/ICMP frame, else None."""
    if len(frame) < 14 + 20 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_IP:
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[0] >> 4 != 4 or ihl < 20 or ip[9] != socket.IPPROTO_ICMP or len(ip) < ihl:
        return None
    total = struct.unpack_from("!H", ip, 2)[0]
    mac = ":".join(f"{b:02x}" for b in frame[6:12])
    return mac, ip[ihl:total]


class EventLog:
    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream

    def write(self, now: float, event: str, fields: dict[str, Any]) -> None:
        record = {"t": now, "event": event, **fields}
        log.info("%s %s", event, json.dumps(fields, sort_keys=True))
        if self.stream is not None:
            self.stream.write(json.dumps(record) + "\n")
            self.stream.flush()


class MobileNodeRunner:
    def __init__(self, config: MnConfig, iface: str, events: EventLog) -> None:
        self.config = config
        self.iface = iface
        self.events = events
        self.state = MobileNodeState(config, wall_offset=time.time() - time.monotonic())
        self.stopping = False
        self.service_update_requested = False  # set by SIGUSR1
        self.ifindex = socket.if_nametoindex(iface)

        self.pkt_sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
        self.pkt_sock.bind((iface, ETH_P_IP))
        self.pkt_sock.setblocking(False)

        self.icmp_sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.icmp_sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, iface.encode())
        self.icmp_sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        self.icmp_sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                  struct.pack("@4s4si", b"\0" * 4, b"\0" * 4, self.ifindex))

        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self.udp.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, iface.encode())
        self.udp.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        self.udp.bind((config.home_address, mip.MIP_PORT))
        self.udp.setblocking(False)

    def close(self) -> None:
        for s in (self.pkt_sock, self.icmp_sock, self.udp):
            s.close()

    def perform(self, now: float, actions: list[Action]) -> None:
        for action in actions:
            try:
                self._perform_one(now, action)
            except OSError as exc:
                log.warning("action %s failed: %s", type(action).__name__, exc)
                self.events.write(now, "error", {"action": type(action).__name__,
                                                 "error": str(exc)})

    def _perform_one(self, now: float, action: Action) -> None:
        if isinstance(action, LogEvent):
            self.events.write(now, action.event, action.fields)
        elif isinstance(action, SendSolicitation):
            self.icmp_sock.sendto(mip.AgentSolicitation().encode(),
                                  (mip.ALL_MOBILITY_AGENTS_MCAST, 0))
        elif isinstance(action, SendRrq):
            self.udp.sendto(action.payload, ("255.255.255.255", mip.MIP_PORT))
        elif isinstance(action, InstallDefaultRoute):
            install_default_route(self.ifindex, action.router_address, action.router_mac)

    def _read_packets(self, now: float) -> None:
        while True:
            try:
                frame, addr = self.pkt_sock.recvfrom(65535)
            except BlockingIOError:
                return
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            parsed = parse_frame(frame)
            if parsed is None or not parsed[1] or parsed[1][0] != mip.ICMP_ROUTER_ADVERTISEMENT:
                continue
            try:
                msg = mip.decode_icmp(parsed[1])
            except mip.MipDecodeError as exc:
                log.debug("ignoring router advertisement: %s", exc)
                continue
            if isinstance(msg, mip.AgentAdvertisement):
                self.perform(now, self.state.on_advertisement(now, msg, parsed[0]))

    def _read_udp(self, now: float) -> None:
        while True:
            try:
                data, _addr = self.udp.recvfrom(65535)
            except BlockingIOError:
                return
            try:
                msg = mip.decode(data)
            except mip.MipDecodeError as exc:
                log.warning("bad Mobile IP message: %s", exc)
                continue
            if isinstance(msg, mip.RegistrationReply):
                self.perform(now, self.state.on_reply(now, msg, data))

    def run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.pkt_sock, selectors.EVENT_READ, self._read_packets)
        sel.register(self.udp, selectors.EVENT_READ, self._read_udp)
        self.perform(time.monotonic(), self.state.start(time.monotonic()))
        try:
            while not self.stopping:
                now = time.monotonic()
                if self.service_update_requested:
                    self.service_update_requested = False
                    self.perform(now, self.state.request_service_update(now))
                deadline = self.state.next_deadline()
                timeout = 0.2 if deadline is None else min(0.2, max(0.0, deadline - now))
                for key, _ in sel.select(timeout):
                    key.data(time.monotonic())
                self.perform(time.monotonic(), self.state.tick(time.monotonic()))
        finally:
            sel.close()


def install_default_route(ifindex: int, router: str, mac: str) -> None:
    """``ip neigh replace <router> lladdr <mac>`` + ``ip route replace default via <router>
    dev <iface> onlink``, through netlink."""
    from pyroute2 import IPRoute  # imported late: unit tests don't need netlink

    with IPRoute() as ipr:
        ipr.neigh("replace", dst=router, lladdr=mac, ifindex=ifindex, state=0x80)  # PERMANENT
        ipr.route("replace", dst="0.0.0.0/0", gateway=router, oif=ifindex,
                  flags=0x4)  # RTNH_F_ONLINK


AAA_KEY_ENV = "MIPVPN_MN_AAA_KEY"   # MN-AAA key (hex), instead of --key-file
HA_KEY_ENV = "MIPVPN_MN_HA_KEY"     # MN-HA key (hex), instead of --ha-key-file


class KeyFileError(ValueError):
    """A key could not be read; the message names where from, never the key."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="mipvpn Mobile Node (Mobile IPv4, RFC 5944)")
    p.add_argument("--nai", required=True)
    p.add_argument("--home-address", required=True)
    p.add_argument("--home-agent", required=True)
    p.add_argument("--spi", type=int, required=True)
    p.add_argument("--key-file", help=f"file holding the MN-AAA key, hex (or ${AAA_KEY_ENV})")
    p.add_argument("--ha-spi", type=int, help="MN-HA SPI (with an MN-HA key)")
    p.add_argument("--ha-key-file",
                   help=f"file holding the MN-HA key, hex (or ${HA_KEY_ENV}; with --ha-spi)")
    # refused: a key on the command line is readable by every user (ps)
    p.add_argument("--key", help=argparse.SUPPRESS)
    p.add_argument("--ha-key", help=argparse.SUPPRESS)
    p.add_argument("--iface", required=True)
    p.add_argument("--lifetime", type=int, default=300)
    p.add_argument("--events", help="JSON-lines event file")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    for opt, instead in (("key", f"--key-file PATH or ${AAA_KEY_ENV}"),
                         ("ha_key", f"--ha-key-file PATH or ${HA_KEY_ENV}")):
        if getattr(args, opt) is not None:
            p.error(f"--{opt.replace('_', '-')} is refused: a key on the command line is "
                    f"visible to every user (ps); use {instead}")
    return args


def read_key(path: str | None, env_name: str, what: str,
             env: dict[str, str] | None = None) -> bytes | None:
    """A key from ``path`` (hex text, surrounding whitespace ignored), else from the
    environment variable ``env_name``; None when neither is given."""
    env = os.environ if env is None else env
    if path is not None:
        try:
            with open(path, encoding="ascii") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyFileError(f"{what}: cannot read {path}: "
                            f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from None
        where = path
    elif env.get(env_name):
        text, where = env[env_name], f"${env_name}"
    else:
        return None
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise KeyFileError(f"{what} in {where} is not hex") from None
    if not key:
        raise KeyFileError(f"{what} in {where} is empty")
    return key


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    try:
        key = read_key(args.key_file, AAA_KEY_ENV, "MN-AAA key")
        ha_key = read_key(args.ha_key_file, HA_KEY_ENV, "MN-HA key")
    except KeyFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    if key is None:
        print(f"no MN-AAA key: pass --key-file PATH or set ${AAA_KEY_ENV}", file=sys.stderr)
        return 2
    if (args.ha_spi is None) != (ha_key is None):
        print(f"--ha-spi and the MN-HA key (--ha-key-file or ${HA_KEY_ENV}) go together",
              file=sys.stderr)
        return 2
    config = MnConfig(args.nai, args.home_address, args.home_agent, args.spi,
                      key, args.lifetime, args.ha_spi, ha_key)
    stream = open(args.events, "a", encoding="utf-8") if args.events else None
    runner = MobileNodeRunner(config, args.iface, EventLog(stream))

    def stop(_signum: int, _frame: Any) -> None:
        runner.stopping = True

    def service_update(_signum: int, _frame: Any) -> None:
        runner.service_update_requested = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, service_update)
    try:
        runner.run()
    finally:
        runner.events.write(time.monotonic(), "stopped", {"pid": os.getpid()})
        runner.close()
        if stream is not None:
            stream.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
