"""What the conformance tests (test_conformance*.py, issue 7) share: the topology's
ports, tshark/dumpcap helpers and the markers for root and tshark."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "topology" / "default.yaml"
LUA = ROOT / "docs" / "wireshark" / "mipvpn.lua"
DICTIONARY = ROOT / "docs" / "wireshark" / "dictionary-mipvpn.xml"
WS_DIAMETER = Path("/usr/share/wireshark/diameter")
VENDOR_ID = 32473

HAVE_TSHARK = shutil.which("tshark") is not None and shutil.which("dumpcap") is not None
needs_tshark = pytest.mark.skipif(not HAVE_TSHARK, reason="needs tshark/dumpcap "
                                  "(Debian package tshark)")
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ovs-vsctl") is None
    or not Path("/usr/lib/ipsec/charon").exists(),
    reason="needs root, Open vSwitch, Mininet and strongSwan")


# ====================================================================== tshark helpers

@dataclass(frozen=True)
class Ports:
    aaah: int
    aaaf: int
    ha_diameter: int
    ha_mip: int
    more_diameter: tuple[int, ...] = ()   # further AAAFs (two-domains: AAAF-B)

    @property
    def diameter(self) -> tuple[int, ...]:
        return (self.aaah, self.aaaf, self.ha_diameter, *self.more_diameter)

    def decode_as(self, lua: bool = False) -> list[str]:
        """Decode As for the ports tshark does not know (it knows 3868 and 434).  With
        our Lua dissector the HA's MIP port goes to it (mipvpn.ports), not straight to
        Wireshark's mip dissector: the HA also sends Binding Updates from that port."""
        args = []
        for port in self.diameter:
            if port != 3868:
                args += ["-d", f"tcp.port=={port},diameter"]
        if self.ha_mip != 434:
            args += (["-o", f"mipvpn.ports:434,{self.ha_mip}"] if lua
                     else ["-d", f"udp.port=={self.ha_mip},mip"])
        return args


def topology_ports() -> Ports:
    from controller.config import load_topology
    topo = load_topology(TOPOLOGY)
    home = next(d for d in topo.domains.values() if d.home_agent is not None)
    foreign = next(d for d in topo.domains.values()
                   if d.aaa is not None and d is not home)
    return Ports(home.aaa.listen_port, foreign.aaa.listen_port,
                 home.home_agent.diameter_listen_port, home.home_agent.mip_listen_port)


def tshark(pcap: Path, *args: str, ports: Ports | None = None, dictionary: bool = False,
           lua: bool = False, check: bool = True) -> str:
    """Run tshark on a capture file; stdout.  ``dictionary``: our Diameter dictionary in
    a private mount namespace (a bind-mounted copy of the system folder, whose Custom.xml
    is our vendor block); ``lua``: load docs/wireshark/mipvpn.lua."""
    cmd = ["tshark", "-n", "-r", str(pcap)]
    if lua:
        cmd += ["-X", f"lua_script:{LUA}"]
    if ports is not None:
        cmd += ports.decode_as(lua)
    cmd += list(args)
    with tempfile.TemporaryDirectory(prefix="mipvpn-ws-") as tmp:
        env = {**os.environ, "WIRESHARK_CONFIG_DIR": tmp, "HOME": tmp}  # no personal prefs
        if dictionary:
            folder = Path(tmp) / "diameter"
            shutil.copytree(WS_DIAMETER, folder)
            shutil.copy(DICTIONARY, folder / "Custom.xml")
            cmd = ["unshare", "-m", "--propagation", "private", "--", "sh", "-c",
                   'mount --bind "$0" /usr/share/wireshark/diameter && exec "$@"',
                   str(folder), *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {done.returncode}: {done.stderr[-2000:]}")
    if "Lua" in done.stderr and "rror" in done.stderr:
        raise AssertionError(f"Lua error: {done.stderr[-2000:]}")
    return done.stdout


def expert(pcap: Path, **kw: Any) -> dict[str, Counter[str]]:
    """``-z expert``: {severity section: Counter(protocol + summary)}."""
    out = tshark(pcap, "-q", "-z", "expert", **kw)
    sections: dict[str, Counter[str]] = {}
    current: Counter[str] | None = None
    for line in out.splitlines():
        m = re.match(r"^(Errors|Warns|Notes|Chats|Comments) \(\d+\)", line)
        if m:
            current = sections.setdefault(m.group(1), Counter())
            continue
        m = re.match(r"^\s+(\d+)\s+(\S+)\s+(\S+)\s+(.*)$", line)
        if current is not None and m and m.group(1).isdigit():
            current[f"{m.group(3)}: {m.group(4).strip()}"] += int(m.group(1))
    return sections


def fields(pcap: Path, display_filter: str, names: list[str], **kw: Any) -> list[list[str]]:
    """One row per matching frame (values of repeated fields joined by "|")."""
    out = tshark(pcap, "-Y", display_filter, "-T", "fields", "-E", "separator=\t",
                 "-E", "occurrence=a", "-E", "aggregator=|", "-e", "frame.number",
                 *[a for n in names for a in ("-e", n)], **kw)
    return [line.split("\t")[1:] for line in out.splitlines() if line]


def malformed_count(pcap: Path, **kw: Any) -> int:
    return len(tshark(pcap, "-Y", "_ws.malformed || _ws.expert.severity == error",
                      **kw).splitlines())


def _start_capture(popen: Any, iface: str, bpf: str, path: Path) -> subprocess.Popen[bytes]:
    err = path.with_suffix(".dumpcap.log")
    proc = popen(["dumpcap", "-q", "-i", iface, "-f", bpf, "-w", str(path)],
                 stdout=subprocess.DEVNULL, stderr=open(err, "wb"))  # noqa: SIM115
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if "Capturing on" in err.read_text(errors="replace"):
            return proc  # type: ignore[no-any-return]
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"dumpcap on {iface} did not start: {err.read_text()}")


def _stop_capture(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)   # dumpcap finishes the file on SIGTERM
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


#: Without our dictionary, tshark may only complain about our vendor AVPs (vendor 32473).
STOCK_VENDOR_WARNINGS = re.compile(
    r"^Diameter: (Unknown AVP \d+ \(vendor=Example Enterprise Number for Documentation "
    r"Use\)|Unknown Vendor), if you know")
