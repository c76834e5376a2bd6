"""charon for one gateway: its private strongswan.conf (plugins, kernel ESP detection,
DoS limits) and the process inside the gateway's Mininet host.

``CharonProcess`` writes a private ``strongswan.conf`` for one gateway and runs charon
inside that gateway's Mininet host (the host needs ``privateDirs=['/run']``: charon's
pid file path is compiled in).  Its VICI socket lives on the shared filesystem so the
controller, in the root namespace, can reach it.  ``prepare_gateway_host`` sets the
sysctls a gateway needs to route through libipsec.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable, Protocol

import vici
from vici.exception import SessionException

from controller.adapters.private_files import private_dir, private_file

log = logging.getLogger("mipvpn.strongswan")

CHARON = "/usr/lib/ipsec/charon"
ROUTING_TABLE = 220

_BASE_PLUGINS = ("random nonce openssl aes sha1 sha2 hmac gcm kdf pem pkcs1 x509 "
                 "pubkey").split()
_TAIL_PLUGINS = ("socket-default", "vici")


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
    reuse_ikesa = yes
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


def stop_all(charons: Iterable[CharonProcess]) -> None:
    """Stop several charons by PID, ignoring ones that never started."""
    for charon in charons:
        charon.stop()
