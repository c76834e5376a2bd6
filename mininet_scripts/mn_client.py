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

- :class:`~mininet_scripts.mn_state.MobileNodeState` (``mn_state.py``) — pure movement
  detection / registration logic. Every entry point takes ``now`` (monotonic seconds) and returns a list of actions
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
from __future__ import annotations

import argparse
import json
import logging
import os
import selectors
import signal
import socket
import struct
import sys
import time
from typing import Any, TextIO

from controller.proto import mip
from mininet_scripts.mn_state import (Action, InstallDefaultRoute, LogEvent, MnConfig,
                                      MobileNodeState, SendRrq, SendSolicitation)

log = logging.getLogger("mipvpn.mn_client")

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
    p.add_argument("--simultaneous", action="store_true",
                   help="set S (simultaneous bindings, RFC 5944 §3.3) in every RRQ: the HA "
                        "keeps the old binding until the new tunnel is up (profiles with "
                        "seamless_handover)")
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
                      key, args.lifetime, args.ha_spi, ha_key, args.simultaneous)
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
