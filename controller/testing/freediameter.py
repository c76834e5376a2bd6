"""An independent RFC 6733 relay agent for tests and scenarios (issue 17): Debian's
``freeDiameterd`` with a configuration generated here, started and stopped by PID.

freeDiameter relays every request of an application it does not serve itself (it
advertises the Relay application, 0xffffffff).  Routing is by Destination-Realm with
the ``rt_default`` extension (``dr="<realm>" : "<peer>" += REALM``); the foreign AAAs
that dial it are let in by ``acl_wl`` (plain TCP on loopback: ``ALLOW_IPSEC``); it
dials the home AAA itself (``ConnectPeer``).  With ``tls`` every link runs TLS from the
start (mutual; the certificates of our CA); without, freeDiameter still wants TLS
credentials: a throw-away self-signed certificate is made for it.

"""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMON = "freeDiameterd"
EXTENSIONS = Path("/usr/lib/freeDiameter")


def available() -> bool:
    """freeDiameterd and the two extensions used here are installed."""
    return (shutil.which(DAEMON) is not None and (EXTENSIONS / "rt_default.fdx").is_file()
            and (EXTENSIONS / "acl_wl.fdx").is_file())


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A throw-away EC certificate and key for ``name`` (freeDiameter's TLS_Cred)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
            .sign(key, hashes.SHA256()))
    crt, pem = directory / f"{name}.crt", directory / f"{name}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    os.chmod(pem, 0o600)
    return crt, pem


def _quoted(text: str) -> str:
    if any(c in text for c in '"\\\n;'):
        raise ValueError(f"{text!r} cannot be written into a freeDiameter configuration")
    return f'"{text}"'


@dataclass
class FreeDiameterRelay:
    """One freeDiameterd: identity ``host``/``realm``, listening on ``listen``; for each
    (realm -> peer host) in ``routes`` the requests of that Destination-Realm go to that
    peer; ``connect``: (peer host, address, port) it dials; ``allow``: hosts that may
    dial it (plain TCP)."""

    directory: Path
    host: str
    realm: str
    listen: tuple[str, int]
    routes: dict[str, str]
    connect: list[tuple[str, str, int]]
    allow: list[str]
    #: seconds between its attempts to (re)connect a ConnectPeer (freeDiameter's Tc,
    #: default 30): the home AAA may start after it
    reconnect: int = 2
    #: (certificate, key, CA): every link over TLS from the start (RFC 6733 §13) -- it
    #: listens on ``listen`` as its SecPort (no plain port), dials with TLS and admits
    #: the ``allow`` hosts only with a certificate the CA signed; None: plain TCP
    tls: tuple[Path, Path, Path] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def config(self) -> Path:
        return self.directory / "freeDiameter.conf"

    @property
    def log(self) -> Path:
        return self.directory / "freeDiameterd.log"

    def write(self) -> Path:
        """The configuration files (freeDiameter.conf, rt_default.conf, acl_wl.conf)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.tls is None:
            crt, key = self_signed(self.directory, self.host)
            ca = crt
        else:
            crt, key, ca = self.tls
        rt = self.directory / "rt_default.conf"
        rt.write_text("".join(f"dr={_quoted(realm)} : {_quoted(peer)} += REALM ;\n"
                              for realm, peer in sorted(self.routes.items())))
        acl = self.directory / "acl_wl.conf"
        # acl_wl: a bare name needs TLS; ALLOW_IPSEC lets it in over plain TCP
        acl.write_text("".join(f"{'' if self.tls else 'ALLOW_IPSEC '}{h}\n"
                               for h in self.allow))
        no_tls = "" if self.tls else " No_TLS;"
        peers = "".join(
            f"ConnectPeer = {_quoted(h)} {{ ConnectTo = {_quoted(a)}; Port = {p};"
            f"{no_tls} }};\n" for h, a, p in self.connect)
        ports = (f"Port = 0;\nSecPort = {self.listen[1]};" if self.tls
                 else f"Port = {self.listen[1]};\nSecPort = 0;")
        self.config.write_text(
            f"Identity = {_quoted(self.host)};\nRealm = {_quoted(self.realm)};\n"
            f"{ports}\nNo_SCTP;\nNo_IPv6;\n"
            f"TcTimer = {int(self.reconnect)};\n"
            f"ListenOn = {_quoted(self.listen[0])};\n"
            f"TLS_Cred = {_quoted(str(crt))}, {_quoted(str(key))};\n"
            f"TLS_CA = {_quoted(str(ca))};\n"
            f"LoadExtension = {_quoted(str(EXTENSIONS / 'rt_default.fdx'))} : "
            f"{_quoted(str(rt))};\n"
            f"LoadExtension = {_quoted(str(EXTENSIONS / 'acl_wl.fdx'))} : "
            f"{_quoted(str(acl))};\n" + peers)
        return self.config

    def start(self) -> int:
        """Write the configuration and start freeDiameterd; its PID."""
        self.write()
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen([DAEMON, "-c", str(self.config)], stdout=out,
                                            stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        return self.process.pid

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Until freeDiameterd says it is initialized; RuntimeError (with the end of
        its log) if it exits or takes longer."""
        deadline = time.monotonic() + timeout
        while "daemon initialized" not in self.log_text():
            if not self.running() or time.monotonic() > deadline:
                raise RuntimeError(f"freeDiameterd ({self.config}) did not start:\n"
                                   + self.log_text()[-2000:])
            time.sleep(0.05)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM (it sends DPR to its peers), SIGKILL after ``timeout`` s; the exit
        status (None if it was never started)."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        return proc.wait()

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""
