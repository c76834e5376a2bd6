"""strongSwan adapter: one ``charon`` per gateway host, driven over VICI.

Three pieces:

* ``CharonProcess`` writes a private ``strongswan.conf`` for one gateway and runs charon
  inside that gateway's Mininet host (the host needs ``privateDirs=['/run']``: charon's
  pid file path is compiled in).  Its VICI socket lives on the shared filesystem so the
  controller, in the root namespace, can reach it.
* ``StrongSwanGateway`` is the controller-side driver for one gateway: it turns a
  ``TunnelSide`` into a VICI connection + shared secret, initiates it, tears it down and
  reports SA state as typed ``TunnelState`` values.
* ``prepare_gateway_host`` sets the sysctls a gateway needs to route through libipsec.

Where the kernel has no ESP (these machines) charon uses ``kernel-libipsec``: ESP in
userspace, always UDP-encapsulated (port 4500), cleartext in and out of the TUN device
``ipsec0``; charon routes each remote selector via ``ipsec0`` in table 220 and libipsec
picks the SA by its own policy lookup on (source, destination).  See docs/strongswan.md.

The pre-shared key is never logged and never put in an exception message.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import logging
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

import vici
from vici.exception import CommandException, SessionException

from controller.adapters.gateway import GatewayDriverBase
from controller.adapters.private_files import private_dir, private_file
from controller.core.vpn import TunnelSide
from controller.logtext import log_text

try:  # pyroute2 is only needed for selector anchors (gateways we can reach by netns)
    from pyroute2 import NetNS
except ImportError:  # pragma: no cover
    NetNS = None

log = logging.getLogger("mipvpn.strongswan")

CHARON = "/usr/lib/ipsec/charon"
ROUTING_TABLE = 220

_BASE_PLUGINS = ("random nonce openssl aes sha1 sha2 hmac gcm kdf pem pkcs1 x509 "
                 "pubkey").split()
_TAIL_PLUGINS = ("socket-default", "vici")


class TunnelError(RuntimeError):
    """A tunnel could not be configured or established."""


class CharonError(RuntimeError):
    """charon did not start, or its VICI socket did not answer."""


# --------------------------------------------------------------------------- detection

@functools.lru_cache(maxsize=1)
def detect_kernel_esp() -> bool:
    """True when the kernel can do ESP through XFRM.

    Tries to add an AES-GCM (then AES-CBC/HMAC) ESP state in a throwaway network
    namespace (``unshare -n``), so nothing on the host is touched.  Needs root; any
    failure (no XFRM, no ESP algorithms, no privilege) reads as "no".
    """
    if not Path("/proc/net/xfrm_stat").exists():
        return False
    key20 = "0x" + "01" * 20
    key16 = "0x" + "01" * 16
    key32 = "0x" + "01" * 32
    base = ["unshare", "-n", "ip", "xfrm", "state", "add", "src", "192.0.2.1",
            "dst", "192.0.2.2", "proto", "esp", "spi", "0x100", "mode", "tunnel"]
    attempts = (
        base + ["aead", "rfc4106(gcm(aes))", key20, "128"],
        base + ["enc", "cbc(aes)", key16, "auth", "hmac(sha256)", key32],
    )
    for cmd in attempts:
        try:
            done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  timeout=5, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        if done.returncode == 0:
            return True
    return False


def charon_plugins(kernel_esp: bool) -> str:
    """The explicit plugin list (``load_modular = no``).

    Without kernel ESP, ``kernel-libipsec`` must load *before* ``kernel-netlink`` so it
    takes over the IPsec (SA/policy) interface while kernel-netlink keeps the networking
    (addresses, routes) interface.
    """
    kernel = ["kernel-netlink"] if kernel_esp else ["kernel-libipsec", "kernel-netlink"]
    return " ".join([*_BASE_PLUGINS, *kernel, *_TAIL_PLUGINS])


# --------------------------------------------------------------------------- host setup

class _Host(Protocol):
    """The part of a Mininet host we use."""

    name: str
    pid: int

    def cmd(self, *args: Any, **kwargs: Any) -> str: ...

    def popen(self, *args: Any, **kwargs: Any) -> subprocess.Popen[bytes]: ...


def prepare_gateway_host(host: _Host) -> None:
    """Make a Mininet host a router whose IPsec goes through libipsec's ``ipsec0``.

    * IPv4 forwarding on;
    * reverse-path filtering off (``all`` and ``default``, so it also holds for
      ``ipsec0`` created later, and for every existing interface): decrypted packets come
      out of ``ipsec0`` with sources that may be routed elsewhere;
    * nothing for table 220: charon installs ``from all lookup 220`` (priority 220) and
      one route per remote selector ``via ipsec0`` in it, which wins over ``main``.
    """
    host.cmd("sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 "
             "net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.send_redirects=0 "
             "net.ipv4.conf.default.send_redirects=0; "
             "for f in /proc/sys/net/ipv4/conf/*/send_redirects; do echo 0 > $f; done; "
             "for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done")


# --------------------------------------------------------------------------- charon

#: charon's IKE_SA_INIT limits (strongswan.conf(5); reasons in docs/strongswan.md).
#: Half-open = IKE_SAs not yet established; a legitimate one is half open for one
#: IKE_SA_INIT + IKE_AUTH exchange (ms on a LAN), a spoofed one until
#: ``half_open_timeout`` (5 s).  The controller drives each gateway through one VICI
#: worker that waits for each CHILD_SA, so one gateway never has more than one of its
#: own IKE_SAs half open at a peer; the limits leave room for tens.
DOS_LIMITS = {
    "cookie_threshold": 30,        # half-open responder SAs (all peers): cookies for all
    "cookie_threshold_ip": 10,     # ... from one address: cookies for that address
    "block_threshold": 50,         # ... from one address: its further IKE_SA_INITs dropped
    "init_limit_half_open": 500,   # half-open SAs in all: every new IKE_SA_INIT dropped
    "init_limit_job_load": 1000,   # queued jobs: every new IKE_SA_INIT dropped
}


def strongswan_conf(name: str, vici_socket: Path, logfile: Path, plugins: str,
                    log_level: int = 1) -> str:
    """A private strongswan.conf for gateway ``name`` (no includes: nothing from /etc)."""
    return f"""# generated by mipvpn for gateway {name}
charon {{
    load_modular = no
    load = {plugins}
    install_routes = yes
    install_virtual_ip = no
    routing_table = {ROUTING_TABLE}
    routing_table_prio = {ROUTING_TABLE}
    # LAN-tuned retransmission: 0.5 s, 0.9 s, 1.6 s, then give up (~4 s)
    retransmit_timeout = 0.5
    retransmit_base = 1.8
    retransmit_tries = 3
    retransmit_jitter = 0
    # DoS protection (docs/strongswan.md, "IKE_SA_INIT flood"): cookies once many
    # IKE_SAs are half open, a cap per peer address and overall; our own initiations
    # pass (VICI initiate with init-limits = no) and one gateway's are serialised
    dos_protection = yes
    cookie_threshold = {DOS_LIMITS["cookie_threshold"]}
    cookie_threshold_ip = {DOS_LIMITS["cookie_threshold_ip"]}
    block_threshold = {DOS_LIMITS["block_threshold"]}
    init_limit_half_open = {DOS_LIMITS["init_limit_half_open"]}
    init_limit_job_load = {DOS_LIMITS["init_limit_job_load"]}
    make_before_break = yes
    reuse_ikesa = no
    close_ike_on_child_failure = yes
    delete_rekeyed_delay = 1
    half_open_timeout = 5
    inactivity_close_ike = no
    port = 500
    port_nat_t = 4500
    plugins {{
        vici {{
            socket = unix://{vici_socket}
        }}
        socket-default {{
            use_ipv6 = no
        }}
        kernel-netlink {{
            # don't let our charon touch other route tables / interfaces
            process_route = no
        }}
        kernel-libipsec {{
            allow_peer_ts = no
        }}
    }}
    syslog {{
        identifier = charon-{name}
        daemon {{
            default = -1
        }}
        auth {{
            default = -1
        }}
    }}
    filelog {{
        {name} {{
            path = {logfile}
            time_format = %H:%M:%S
            time_add_ms = yes
            ike_name = yes
            append = no
            default = {log_level}
            flush_line = yes
        }}
    }}
}}
"""


class CharonProcess:
    """charon for one gateway, running inside its Mininet host.

    Files live under ``run_dir/<name>/``: ``strongswan.conf``, ``charon.vici`` (the VICI
    socket, reachable from the root namespace) and ``charon.log``.  ``run_dir`` must be on
    a filesystem the host shares with the controller and short enough for a Unix socket
    path (108 bytes).
    """

    def __init__(self, host: _Host, run_dir: str | os.PathLike[str], *,
                 name: str | None = None, kernel_esp: bool | None = None,
                 log_level: int = 1) -> None:
        self.host = host
        self.name = name or host.name
        self.dir = Path(run_dir) / self.name
        self.conf_path = self.dir / "strongswan.conf"
        self.vici_socket = self.dir / "charon.vici"
        self.log_path = self.dir / "charon.log"
        self.kernel_esp = detect_kernel_esp() if kernel_esp is None else kernel_esp
        self.log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def netns_path(self) -> str:
        """The gateway host's network namespace, for ``StrongSwanGateway(netns=...)``."""
        return f"/proc/{self.host.pid}/ns/net"

    def start(self, timeout: float = 10.0) -> float:
        """Write the config, start charon, wait until VICI answers.  Returns seconds."""
        if self.proc is not None and self.proc.poll() is None:
            raise CharonError(f"charon for {self.name} already running (pid {self.proc.pid})")
        t0 = time.monotonic()
        private_dir(self.dir)   # 0700: the VICI socket loads keys, the log names peers
        if len(str(self.vici_socket)) >= 100:
            raise CharonError(f"VICI socket path too long: {self.vici_socket}")
        private_file(self.conf_path, strongswan_conf(
            self.name, self.vici_socket, self.log_path, charon_plugins(self.kernel_esp),
            self.log_level))
        self.vici_socket.unlink(missing_ok=True)   # a stale socket would fool the poll
        private_file(self.dir / "netns", self.netns_path + "\n")  # for StrongSwanGateway
        prepare_gateway_host(self.host)
        env = dict(os.environ, STRONGSWAN_CONF=str(self.conf_path))
        stderr = open(self.dir / "charon.stderr", "wb")  # noqa: SIM115 - kept by Popen
        try:
            self.proc = self.host.popen([CHARON], env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=stderr)
        finally:
            stderr.close()
        deadline = t0 + timeout
        while True:
            if self.proc.poll() is not None:
                raise CharonError(f"charon for {self.name} exited with {self.proc.returncode};"
                                  f" see {self.log_path}")
            if self._vici_answers():
                break
            if time.monotonic() > deadline:
                self.stop()
                raise CharonError(f"charon for {self.name}: no VICI answer in {timeout}s")
            time.sleep(0.01)
        took = time.monotonic() - t0
        log.info("charon %s pid %d up in %.0f ms", self.name, self.proc.pid, took * 1e3)
        return took

    def _vici_answers(self) -> bool:
        if not self.vici_socket.exists():
            return False
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(1.0)
        try:
            sock.connect(str(self.vici_socket))
            vici.Session(sock).version()
            return True
        except (OSError, SessionException):
            return False
        finally:
            sock.close()

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM charon by PID, wait (SIGKILL after ``timeout``), delete the socket."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        self.vici_socket.unlink(missing_ok=True)

    def __enter__(self) -> CharonProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()



# --------------------------------------------------------------------------- anchors

ANCHOR_DEV = "ipsecanc0"


class SelectorAnchors:
    """Give libipsec a local address inside every local traffic selector of a gateway.

    kernel-libipsec installs the route for a CHILD_SA's remote selector with
    ``src = <a local address inside the local selector>`` and *fails the CHILD_SA* when
    the gateway has none ("error installing route with policy ...").  Our gateways route
    for other hosts: the FA's local selector is the MN's home address (/32), the HA's
    local selector towards an FA is the CN's network.  So, inside the gateway's netns:

    * a selector the gateway already has an address in needs nothing;
    * otherwise the selector's network address (for a /32: the host itself) is added as
      a /32 to ``ipsecanc0``, one end of a veth pair that stays down;
    * for a host anchor (/31, /32 — a real host, e.g. the MN) the kernel's ``local``
      route for it is deleted once charon has installed its route (``settle``), so the
      gateway forwards that host's packets instead of delivering them to itself; it is
      put back before the next CHILD_SA install (the kernel checks a route's ``src``
      against the local table when the route is added).  Network-address anchors keep
      their local route: nobody sends to a network address.

    Reference-counted per anchor; thread-safe.
    """

    def __init__(self, netns_path: str) -> None:
        if NetNS is None:
            raise RuntimeError("pyroute2 is required for selector anchors")
        self._ns = NetNS(netns_path)
        self._lock = threading.Lock()
        self._refs: dict[str, int] = {}
        self._hosts: set[str] = set()     # host anchors (their local route comes and goes)
        self._index = self._ensure_dev()

    def _ensure_dev(self) -> int:
        found = self._ns.link_lookup(ifname=ANCHOR_DEV)
        if not found:
            self._ns.link("add", ifname=ANCHOR_DEV, kind="veth", peer=ANCHOR_DEV + "p")
            found = self._ns.link_lookup(ifname=ANCHOR_DEV)
        return int(found[0])

    def _own_addresses(self) -> list[ipaddress.IPv4Address]:
        return [ipaddress.IPv4Address(a.get_attr("IFA_ADDRESS"))
                for a in self._ns.get_addr(family=socket.AF_INET)
                if a["index"] != self._index]

    @staticmethod
    def _anchor_of(selector: str) -> tuple[str, bool] | None:
        """(anchor address, is_host) for an IPv4 selector; None for others."""
        try:
            net = ipaddress.ip_network(selector, strict=False)
        except ValueError:
            return None
        if not isinstance(net, ipaddress.IPv4Network) or net.prefixlen == 0:
            return None     # 0.0.0.0/0 includes 127.0.0.1: charon needs no address
        return str(net.network_address), net.prefixlen >= 31

    def acquire(self, selectors: Iterable[str], restore_local: bool = True) -> list[str]:
        """Make sure each selector holds a local address; returns the anchors taken.
        ``restore_local=False``: a host anchor already held keeps its local route away
        (the caller knows charon will add no new route: its policies equal installed
        ones, whose routes are refcounted) - the gateway goes on forwarding that
        host's packets meanwhile instead of swallowing them."""
        taken = []
        with self._lock:
            own = self._own_addresses()
            for sel in selectors:
                anchor = self._anchor_of(sel)
                if anchor is None:
                    continue
                addr, is_host = anchor
                net = ipaddress.ip_network(sel, strict=False)
                if addr not in self._refs and any(a in net for a in own):
                    continue
                if addr not in self._refs:
                    self._ns.addr("replace", index=self._index, address=addr, prefixlen=32)
                    self._refs[addr] = 0
                    if is_host:
                        self._hosts.add(addr)
                elif is_host and restore_local:
                    self._set_local_route(addr, present=True)
                self._refs[addr] += 1
                taken.append(addr)
        return taken

    def settle(self, anchors: Iterable[str]) -> None:
        """Drop the local route of host anchors (charon's routes are in place)."""
        with self._lock:
            for addr in anchors:
                if addr in self._hosts:
                    self._set_local_route(addr, present=False)

    def release(self, anchors: Iterable[str]) -> None:
        with self._lock:
            for addr in anchors:
                if addr not in self._refs:
                    continue
                self._refs[addr] -= 1
                if self._refs[addr] <= 0:
                    del self._refs[addr]
                    self._hosts.discard(addr)
                    try:
                        self._ns.addr("del", index=self._index, address=addr, prefixlen=32)
                    except Exception:  # noqa: BLE001 - already gone
                        pass

    def _set_local_route(self, addr: str, present: bool) -> None:
        try:
            self._ns.route("replace" if present else "del", table=255, type="local",
                           dst=f"{addr}/32", oif=self._index, proto="kernel",
                           scope="host", prefsrc=addr)
        except Exception as exc:  # noqa: BLE001 - netlink error: absent / present already
            log.debug("anchor %s local route %s: %s", addr, present, exc)

    def close(self) -> None:
        with self._lock:
            self._ns.close()


# --------------------------------------------------------------------------- driver

@dataclass(frozen=True)
class ChildSaState:
    name: str
    state: str            # INSTALLED, REKEYING, ...
    spi_in: str
    spi_out: str
    local_ts: tuple[str, ...]
    remote_ts: tuple[str, ...]
    bytes_in: int
    bytes_out: int
    packets_in: int
    packets_out: int
    unique_id: str = ""   # charon's CHILD_SA unique id (``rekey`` / ``terminate`` by id)


@dataclass(frozen=True)
class TunnelState:
    """One IKE_SA of a tunnel as charon reports it (``list-sas``)."""

    tunnel_id: str
    state: str                      # IKE_SA state: ESTABLISHED, CONNECTING, ...
    local_address: str
    remote_address: str
    children: tuple[ChildSaState, ...]

    @property
    def established(self) -> bool:
        """An IKE_SA is up and at least one CHILD_SA is installed."""
        return self.state == "ESTABLISHED" and any(c.state == "INSTALLED"
                                                   for c in self.children)

    @property
    def bytes_in(self) -> int:
        return sum(c.bytes_in for c in self.children)

    @property
    def bytes_out(self) -> int:
        return sum(c.bytes_out for c in self.children)

    @property
    def packets_in(self) -> int:
        return sum(c.packets_in for c in self.children)

    @property
    def packets_out(self) -> int:
        return sum(c.packets_out for c in self.children)


def _s(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _i(value: Any) -> int:
    try:
        return int(_s(value) or 0)
    except ValueError:
        return 0


def _strs(values: Any) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, (bytes, str)):
        return (_s(values),)
    return tuple(_s(v) for v in values)


def _tunnel_state(name: str, ike: dict[str, Any]) -> TunnelState:
    children = []
    for child in (ike.get("child-sas") or {}).values():
        children.append(ChildSaState(
            name=_s(child.get("name")), state=_s(child.get("state")),
            spi_in=_s(child.get("spi-in")), spi_out=_s(child.get("spi-out")),
            local_ts=_strs(child.get("local-ts")), remote_ts=_strs(child.get("remote-ts")),
            bytes_in=_i(child.get("bytes-in")), bytes_out=_i(child.get("bytes-out")),
            packets_in=_i(child.get("packets-in")), packets_out=_i(child.get("packets-out")),
            unique_id=_s(child.get("uniqueid"))))
    return TunnelState(tunnel_id=name, state=_s(ike.get("state")),
                       local_address=_s(ike.get("local-host")),
                       remote_address=_s(ike.get("remote-host")),
                       children=tuple(children))


def _norm_ts(selector: str) -> str:
    """A traffic selector as charon prints it (``10.30.0.0/24``), for comparisons."""
    try:
        return str(ipaddress.ip_network(selector, strict=False))
    except ValueError:
        return selector


def _identity(tunnel_id: str, gateway: str) -> str:
    """Per-tunnel IKE identity: two tunnels between the same gateways never share one."""
    return f"{tunnel_id}@{gateway}"


def _secret_id(tunnel_id: str) -> str:
    return f"psk:{tunnel_id}"


# IPsec policy priority of a secondary tunnel end (``TunnelSide.secondary``).  Lower
# values win.  kernel-netlink computes at most 600,000 (base 200,000: x2 for installed
# SAs and trap policies, x3 for fallback drops, minus the selector sizes), so with kernel
# XFRM this end's SA never backs the policy another tunnel with the same selectors (and
# the same reqid) installs.  kernel-libipsec ignores manual priorities (measured: the
# MN's uplink still went into the forwarding tunnel), see ``_reassert_primaries``.
SECONDARY_POLICY_PRIORITY = 0xFFFFF


def child_names(tunnel_id: str, count: int) -> list[str]:
    """CHILD_SA config names of a tunnel: its id, then ``<id>#2``, ``<id>#3``, ..."""
    return [tunnel_id] + [f"{tunnel_id}#{i}" for i in range(2, count + 1)]


def connection_for(side: TunnelSide, dpd_delay: str = "2s",
                   remote_groups: Sequence[Sequence[str]] | None = None) -> dict[str, Any]:
    """The VICI ``load-conn`` message for one gateway's side of a tunnel (no secret).

    A secondary side gets a fixed, low policy priority (``SECONDARY_POLICY_PRIORITY``).
    ``remote_groups`` splits the remote selectors over several CHILD_SAs (names from
    ``child_names``), each with all local selectors; default: one CHILD_SA."""
    name = side.tunnel_id
    groups = [list(g) for g in remote_groups] if remote_groups else [
        list(side.remote.selectors)]
    children: dict[str, Any] = {}
    for child_name, remote in zip(child_names(name, len(groups)), groups):
        child: dict[str, Any] = {
            "mode": "tunnel",
            "local_ts": list(side.local.selectors),
            "remote_ts": remote,
            "esp_proposals": [side.security.esp],
            "start_action": "none",
            "dpd_action": "clear",
            "close_action": "none",
        }
        if side.secondary:
            child["priority"] = SECONDARY_POLICY_PRIORITY
        children[child_name] = child
    return {name: {
        "version": 2,
        "local_addrs": [side.local.address],
        "remote_addrs": [side.remote.address],
        "proposals": [side.security.ike],
        "mobike": "no",
        "dpd_delay": dpd_delay,
        "unique": "no",
        "local": {"auth": "psk", "id": _identity(name, side.local.gateway)},
        "remote": {"auth": "psk", "id": _identity(name, side.remote.gateway)},
        "children": children,
    }}


class StrongSwanGateway(GatewayDriverBase):
    """Controller-side driver of one gateway's charon: one VICI session, thread-safe
    (a ``GatewayDriver``)."""

    def dialable(self) -> bool:
        """charon's VICI socket exists (the gateway's charon has started)."""
        return Path(self.vici_socket_path).exists()

    def __init__(self, name: str, vici_socket_path: str | os.PathLike[str],
                 netns: str | None = None, connect_timeout: float = 2.0) -> None:
        """``netns``: path of the gateway's network namespace (``/proc/<pid>/ns/net``);
        local selectors the gateway has no address in get anchors there (see
        ``SelectorAnchors``) — required with kernel-libipsec for such selectors.  When
        omitted, the path ``CharonProcess`` wrote next to the VICI socket (file
        ``netns``) is used, read at the first ``add_tunnel``; if neither exists, no
        anchors are made."""
        self.name = name
        self.vici_socket_path = str(vici_socket_path)
        self.connect_timeout = connect_timeout
        self._lock = threading.RLock()
        self._session: vici.Session | None = None
        self._sock: socket.socket | None = None
        self._netns = netns
        self._anchors: SelectorAnchors | None = None
        self._anchored: dict[str, list[str]] = {}
        self._libipsec: bool | None = None     # charon runs kernel-libipsec (cached)

    def warm_up(self) -> None:
        """Open the VICI session and the namespace controller now, not on the first
        tunnel: entering the gateway's namespace forks a helper process, which costs
        from tens to hundreds of milliseconds on a busy machine (measured up to
        580 ms) — time that would otherwise land inside a handover."""
        self.version()
        with self._lock:
            self._anchor_ctl()

    def _anchor_ctl(self) -> SelectorAnchors | None:
        if self._anchors is None:
            path = self._netns
            if path is None:
                hint = Path(self.vici_socket_path).parent / "netns"
                path = hint.read_text().strip() if hint.exists() else None
            if path and os.path.exists(path):
                self._anchors = SelectorAnchors(path)
        return self._anchors

    # -- session handling

    def _vici_socket(self) -> socket.socket:
        """A new connection to charon's VICI socket (``TunnelError`` naming the path)."""
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(self.connect_timeout)
        try:
            sock.connect(self.vici_socket_path)
        except OSError as exc:
            sock.close()
            raise TunnelError(f"{self.name}: VICI socket {self.vici_socket_path}: "
                              f"{exc}") from exc
        return sock

    def _connect(self) -> vici.Session:
        if self._session is None:
            sock = self._vici_socket()
            sock.settimeout(None)   # blocking calls (initiate) are bounded by charon
            self._sock, self._session = sock, vici.Session(sock)
        return self._session

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock, self._session = None, None

    def _call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(session, *args)``; on a transport failure reconnect once and retry.

        Command failures (``CommandException``) are not retried: charon answered.
        """
        with self._lock:
            for attempt in (1, 2):
                session = self._connect()
                try:
                    return fn(session, *args)
                except CommandException:
                    raise
                except (OSError, SessionException) as exc:
                    self._drop()
                    if attempt == 2:
                        raise TunnelError(f"{self.name}: VICI failed: {exc}") from exc
                    log.warning("%s: VICI session lost (%s), reconnecting", self.name,
                                log_text(exc))
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            self._drop()
            if self._anchors is not None:
                self._anchors.close()
                self._anchors = None

    def version(self) -> dict[str, str]:
        raw = self._call(lambda s: s.version())
        return {k: _s(v) for k, v in raw.items()}

    # -- tunnels

    def add_tunnel(self, side: TunnelSide, timeout: float = 5.0,
                   keep_sa: bool = False) -> float:
        """Load (or replace) a tunnel; when ``side.initiator``, bring its CHILD_SA up.

        Blocks until the CHILD_SA is installed; raises ``TunnelError`` on failure or after
        ``timeout`` seconds.  Returns the seconds taken.  ``keep_sa``: do not terminate
        an SA charon holds for the tunnel (``load_tunnel``).
        """
        t0 = time.monotonic()
        tid = side.tunnel_id
        groups, covered = (self._primary_cover(side) if side.secondary and side.initiator
                           and self.uses_libipsec() else (None, False))
        conn = connection_for(side, remote_groups=groups)
        secret = {"id": _secret_id(tid), "type": "IKE", "data": side.psk,
                  "owners": [_identity(tid, side.local.gateway),
                             _identity(tid, side.remote.gateway)]}

        def load(session: vici.Session) -> None:
            if not keep_sa and self._has_sa(session, tid):   # replace: drop old SAs
                self._terminate(session, tid)
            session.load_shared(secret)
            session.load_conn(conn)

        with self._lock:
            old = self._anchored.pop(tid, [])
            ctl = self._anchor_ctl()
            # a secondary whose selectors installed primaries already hold (their
            # routes, refcounted) needs no local route for the MN's home address: with
            # it, the new FA would swallow the MN's downlink while the secondary comes
            # up (measured: 30-66 packets per smooth handoff)
            anchors = (ctl.acquire(side.local.selectors, restore_local=not covered)
                       if ctl else [])
            self._anchored[tid] = anchors
            if self._anchors is not None:
                self._anchors.release(old)
        try:
            self._call(load)
        except CommandException as exc:
            raise TunnelError(f"{self.name}: loading tunnel {tid} failed: {exc}") from exc

        if not side.initiator:
            if anchors or side.secondary:
                threading.Thread(target=self._settle_when_up,
                                 args=(tid, anchors, 10.0, side.secondary),
                                 name=f"settle-{self.name}", daemon=True).start()
        else:
            def initiate(session: vici.Session, child: str) -> None:
                msg = {"child": child, "ike": tid, "timeout": int(timeout * 1000),
                       "init-limits": "no"}
                for event in session.initiate(msg):
                    if log.isEnabledFor(logging.DEBUG):
                        log.debug("%s: %s", self.name, log_text(_s(event.get("msg"))))

            try:
                for child in conn[tid]["children"]:
                    self._call(initiate, child)
            except CommandException as exc:
                raise TunnelError(f"{self.name}: initiating tunnel {tid} to "
                                  f"{side.remote.address} failed: {exc}") from exc
            finally:
                if self._anchors is not None and anchors:
                    self._anchors.settle(anchors)
            if side.secondary:
                self._reassert_primaries(tid)
        took = time.monotonic() - t0
        log.info("%s: tunnel %s %s in %.1f ms", self.name, log_text(tid),
                 "up" if side.initiator else "loaded", took * 1e3)
        return took

    def load_tunnel(self, side: TunnelSide) -> float:
        """Load a tunnel's connection and secret without initiating it and without
        touching an SA charon may already hold for it (reconcile, issue 5)."""
        return self.add_tunnel(dataclasses.replace(side, initiator=False), keep_sa=True)

    def adopt(self, side: TunnelSide) -> None:
        """A tunnel charon already holds (loaded by an earlier controller process):
        take over its selector anchors, so removing it later releases them."""
        with self._lock:
            if side.tunnel_id in self._anchored:
                return
            ctl = self._anchor_ctl()
            anchors = ctl.acquire(side.local.selectors) if ctl else []
            self._anchored[side.tunnel_id] = anchors
            if ctl is not None and anchors:
                ctl.settle(anchors)

    def wait_closed(self, stop: threading.Event, poll: float = 0.5) -> bool:
        """Block while charon lives: hold a second VICI connection open and return
        True as soon as charon closes it (the process died: the kernel closes its
        sockets), False when ``stop`` is set.  Raises ``TunnelError`` when charon
        cannot be reached at all.  Nothing is sent on this connection."""
        sock = self._vici_socket()
        sock.settimeout(poll)
        try:
            while not stop.is_set():
                try:
                    if sock.recv(1) == b"":
                        return True
                except socket.timeout:
                    continue
                except OSError:
                    return True
            return False
        finally:
            sock.close()

    def loaded_connections(self) -> dict[str, dict[str, list[str]]]:
        """Loaded connections (``list-conns``): name -> remote_addrs, local_ts,
        remote_ts (of its child of the same name)."""

        def list_conns(session: vici.Session) -> dict[str, dict[str, list[str]]]:
            out: dict[str, dict[str, list[str]]] = {}
            for conn in session.list_conns():
                for raw_name, c in conn.items():
                    name = _s(raw_name)
                    children = c.get("children") or {}
                    child = next((v for k, v in children.items() if _s(k) == name),
                                 next(iter(children.values()), {}))
                    out[name] = {"remote_addrs": list(_strs(c.get("remote_addrs"))),
                                 "local_ts": list(_strs(child.get("local-ts"))),
                                 "remote_ts": list(_strs(child.get("remote-ts")))}
            return out

        result: dict[str, dict[str, list[str]]] = self._call(list_conns)
        return result

    def _settle_when_up(self, tunnel_id: str, anchors: list[str], timeout: float,
                        secondary: bool = False) -> None:
        """Responder side: settle host anchors (and, for a secondary tunnel, re-assert
        the primaries) once the peer has brought the SA up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                state = self.tunnel(tunnel_id)
            except TunnelError:
                break
            if state is not None and state.established:
                break
            if self._anchored.get(tunnel_id) is not anchors:
                return              # replaced or removed meanwhile
            time.sleep(0.002)
        if self._anchors is not None and self._anchored.get(tunnel_id) is anchors:
            self._anchors.settle(anchors)
        if secondary and self._anchored.get(tunnel_id) is anchors:
            self._reassert_primaries(tunnel_id)

    def uses_libipsec(self) -> bool:
        """Whether this charon runs ``kernel-libipsec`` (VICI ``stats``, cached); when
        it cannot tell, True (the caller then does what libipsec needs)."""
        if self._libipsec is None:
            try:
                stats = self._call(lambda s: s.stats())
            except (CommandException, TunnelError):
                return True
            plugins = {_s(p) for p in stats.get("plugins") or []}
            self._libipsec = "kernel-libipsec" in plugins if plugins else True
        return self._libipsec

    def _primary_groups(self, side: TunnelSide) -> list[tuple[str, ...]] | None:
        return self._primary_cover(side)[0]

    def _primary_cover(self, side: TunnelSide) -> tuple[list[tuple[str, ...]] | None, bool]:
        """The secondary's remote selectors grouped as the installed CHILD_SAs with its
        local selectors group them (kernel-libipsec).

        charon shares a reqid only between CHILD_SAs with equal selector lists, and only
        a shared reqid lets the forwarded packets in through the primary's inbound policy
        while the primary's rekey puts its SA first (``_reassert_primaries``).  With a
        tunnel to the HA (home address <-> CN 1) and one to a CN-GW (<-> CN 2), the
        forwarding tunnel's selectors (<-> CN 1, CN 2) equal neither: it becomes one
        CHILD_SA per primary (plus one for selectors no primary has).  None: one.
        Also whether installed primaries cover every remote selector (no new route)."""
        local = {_norm_ts(t) for t in side.local.selectors}
        wanted = [_norm_ts(t) for t in side.remote.selectors]
        groups: list[tuple[str, ...]] = []
        taken: set[str] = set()
        for state in self.tunnels():
            if state.tunnel_id == side.tunnel_id:
                continue
            for child in state.children:
                remote = tuple(_norm_ts(t) for t in child.remote_ts)
                if (child.state == "INSTALLED" and remote
                        and {_norm_ts(t) for t in child.local_ts} == local
                        and set(remote) <= set(wanted) and not set(remote) & taken):
                    groups.append(remote)
                    taken |= set(remote)
        rest = tuple(t for t in wanted if t not in taken)
        covered = bool(groups) and not rest
        if rest:
            groups.append(rest)
        return (groups if len(groups) > 1 else None), covered

    def _reassert_primaries(self, tunnel_id: str, timeout: float = 2.0) -> list[str]:
        """Make every other CHILD_SA with the secondary tunnel's selectors win again.

        kernel-libipsec ignores policy priorities: it takes the first outbound policy in
        order of selector size, newest first among equal ones, and then the *newest*
        outbound SA of that policy's reqid — and charon gives CHILD_SAs with equal
        selectors one reqid.  So the secondary tunnel, set up last, would carry the
        traffic of the primary (measured: the MN's whole uplink went to the old FA).
        Rekeying each primary CHILD_SA makes its SA the newest again; the secondary's
        inbound SA keeps working (its packets pass the shared reqid's inbound policy).
        Waits (at most ``timeout``) until each rekeyed tunnel has its new CHILD_SA.
        Returns the tunnels rekeyed.  Nothing to do with kernel XFRM (the priority)."""
        if not self.uses_libipsec():
            return []
        t0 = time.monotonic()
        states = self.tunnels()

        def key(c: ChildSaState) -> tuple[frozenset[str], frozenset[str]]:
            return (frozenset(_norm_ts(t) for t in c.local_ts),
                    frozenset(_norm_ts(t) for t in c.remote_ts))

        own = {key(c) for st in states if st.tunnel_id == tunnel_id
               for c in st.children if c.state == "INSTALLED"}
        targets = {c.unique_id: st.tunnel_id for st in states if st.tunnel_id != tunnel_id
                   for c in st.children if c.state == "INSTALLED" and key(c) in own}
        for cid, tid in targets.items():
            try:
                self._call(lambda s, cid=cid: s.rekey({"child-id": cid}))
            except CommandException as exc:
                log.warning("%s: rekeying %s (primary of %s) failed: %s", self.name,
                            log_text(tid), log_text(tunnel_id), log_text(exc))
        # done when the old CHILD_SA is neither installed nor rekeying any more (REKEYED
        # once its successor is installed, then deleted)
        pending = dict(targets)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            time.sleep(0.005)
            busy = {c.unique_id for st in self.tunnels() for c in st.children
                    if c.state in ("INSTALLED", "REKEYING")}
            pending = {cid: tid for cid, tid in pending.items() if cid in busy}
        took = (time.monotonic() - t0) * 1e3
        names = sorted(set(targets.values()))
        if pending:
            log.warning("%s: %s: primaries not rekeyed in %.0f ms: %s", self.name,
                        log_text(tunnel_id), took,
                        log_text(", ".join(sorted(set(pending.values())))))
        elif targets:
            log.info("%s: %s is secondary: rekeyed %s in %.1f ms", self.name,
                     log_text(tunnel_id), log_text(", ".join(names)), took)
        return names

    def remove_tunnel(self, tunnel_id: str) -> None:
        """Terminate the tunnel's IKE_SA (forced, immediate), unload conn and secret."""

        counts = [0, 0]

        def remove(session: vici.Session) -> None:
            for sa in session.list_sas({"ike": tunnel_id}):   # what it carried, for the log
                for name, ike in sa.items():
                    state = _tunnel_state(_s(name), ike)
                    counts[0] += state.packets_in
                    counts[1] += state.packets_out
            self._terminate(session, tunnel_id)
            for command, arg in ((session.unload_conn, {"name": tunnel_id}),
                                 (session.unload_shared, {"id": _secret_id(tunnel_id)})):
                try:
                    command(arg)
                except CommandException:
                    pass            # already gone: removal is idempotent

        self._call(remove)
        with self._lock:
            anchors = self._anchored.pop(tunnel_id, [])
            if self._anchors is not None:
                self._anchors.release(anchors)
        log.info("%s: tunnel %s removed (ESP packets in %d, out %d)", self.name,
                 log_text(tunnel_id),
                 *counts)

    @staticmethod
    def _has_sa(session: vici.Session, tunnel_id: str) -> bool:
        return any(True for _ in session.list_sas({"ike": tunnel_id}))

    @staticmethod
    def _terminate(session: vici.Session, tunnel_id: str) -> None:
        try:
            for _ in session.terminate({"ike": tunnel_id, "force": "yes", "timeout": -1}):
                pass
        except CommandException:
            pass                    # no matching SA

    def tunnels(self) -> list[TunnelState]:
        """Every IKE_SA charon holds, typed."""

        def list_sas(session: vici.Session) -> list[TunnelState]:
            out = []
            for sa in session.list_sas():
                for name, ike in sa.items():
                    out.append(_tunnel_state(_s(name), ike))
            return out

        result: list[TunnelState] = self._call(list_sas)
        return result

    def tunnel(self, tunnel_id: str) -> TunnelState | None:
        for state in self.tunnels():
            if state.tunnel_id == tunnel_id:
                return state
        return None

    def connections(self) -> list[str]:
        """Names (tunnel ids) of the loaded connections."""

        def list_conns(session: vici.Session) -> list[str]:
            return [_s(name) for conn in session.list_conns() for name in conn]

        result: list[str] = self._call(list_conns)
        return result


def stop_all(charons: Iterable[CharonProcess]) -> None:
    """Stop several charons by PID, ignoring ones that never started."""
    for charon in charons:
        charon.stop()
