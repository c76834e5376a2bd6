"""iperf3 between two Mininet hosts, and what QoS the path holds (scenario `qos`).

``run_iperf3`` starts a one-shot iperf3 server in one host and the client in another
(``-J``), returns the receiver-side rate; both processes are ours, bounded by
``timeout`` and stopped by PID.  ``meters`` and ``htb_rates`` read what an access switch
and a gateway actually hold (OpenFlow meters, HTB classes on ``ipsec0``), for the
runner's ``qos_path`` check (docs/qos.md).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

# TSO/GSO off on an end host's interface.  With them on, OVS's userspace datapath
# (userspace-tso-enable) hands the gateway multi-segment TCP frames it cannot forward
# into the 1400-byte tunnel device: TCP through the tunnels crawls at ~0.1-0.2 Mbit/s
# with or without QoS (docs/qos.md); UDP is unaffected.
NO_TSO = r"""
import sys
from pyroute2.ethtool import Ethtool
e = Ethtool(); f = e.get_features(sys.argv[1])
for name in ("tx-tcp-segmentation", "tx-generic-segmentation"):
    f.features[name].enable = False
e.set_features(sys.argv[1], f)
"""


# Counts the DS field of the first N IPv4 packets from SRC seen on IFACE (AF_PACKET, in
# the receiving host); prints {"<dscp>": count} ("/bad-checksum" appended to the key of
# a packet whose header checksum does not verify: the marking must keep it valid).
DS_SNIFFER = r"""
import json, socket, sys, time
iface, src, n, timeout = sys.argv[1], socket.inet_aton(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800)); s.bind((iface, 0))
s.settimeout(0.5); seen = {}; end = time.monotonic() + timeout; got = 0
print("ready", flush=True)
while got < n and time.monotonic() < end:
    try: f = s.recv(65535)
    except socket.timeout: continue
    ip = f[14:34]
    if len(ip) < 20 or ip[12:16] != src: continue
    words = [int.from_bytes(ip[i:i + 2], "big") for i in range(0, 20, 2)]
    total = sum(words); total = (total & 0xffff) + (total >> 16); total = (total & 0xffff) + (total >> 16)
    key = "%d%s" % (ip[1] >> 2, "" if total == 0xffff else "/bad-checksum")
    seen[key] = seen.get(key, 0) + 1; got += 1
print(json.dumps(seen), flush=True)
"""


class IperfError(RuntimeError):
    pass


@dataclass
class IperfResult:
    kbit: float                 # receiver-side rate
    sent_kbit: float            # sender-side rate (UDP: what was offered and sent)
    lost_percent: float | None  # UDP only


def tso_off(host: Any) -> None:
    """Turn TSO/GSO off on ``host``'s default interface (needed for TCP, see NO_TSO)."""
    proc = host.popen([sys.executable, "-c", NO_TSO, host.defaultIntf().name],
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = proc.communicate(timeout=15)
    if proc.returncode != 0:
        raise IperfError(f"could not turn TSO/GSO off on {host.name}: {out.decode()[-300:]}")


def start_ds_sniffer(host: Any, src: str, packets: int = 50, timeout: float = 30.0
                     ) -> subprocess.Popen[bytes]:
    """Count the DS field of the next ``packets`` IPv4 packets from ``src`` arriving on
    ``host``'s default interface; returns once the socket is bound."""
    proc = host.popen([sys.executable, "-c", DS_SNIFFER, host.defaultIntf().name, src,
                       str(packets), str(timeout)], stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        _stop(proc)
        raise IperfError(f"DS sniffer in {host.name} did not start: "
                         f"{proc.stderr.read().decode()[-300:] if proc.stderr else ''}")
    return proc


def ds_seen(proc: subprocess.Popen[bytes], timeout: float = 35.0) -> dict[str, int]:
    """What ``start_ds_sniffer`` counted: {"<dscp>[/bad-checksum]": packets}."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out = b""                     # the sniffer saw too little in time: count nothing
    finally:
        _stop(proc)
    try:
        return json.loads(out or b"{}")  # type: ignore[no-any-return]
    except ValueError:
        return {}


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def run_iperf3(server: Any, client: Any, server_ip: str, *, port: int, seconds: float,
               protocol: str = "udp", offer_kbit: int = 20000, length: int = 1200,
               bind: str = "") -> IperfResult:
    """Data flows from ``client`` to ``server`` (Mininet hosts, or anything with
    ``popen``) for ``seconds``; UDP offered at ``offer_kbit`` in ``length``-byte
    datagrams, TCP as fast as it goes."""
    srv = server.popen(["timeout", str(int(seconds) + 20), "iperf3", "-s", "-1",
                        "-B", server_ip, "-p", str(port)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cli = None
    try:
        time.sleep(0.3)
        cmd = ["timeout", str(int(seconds) + 15), "iperf3", "-c", server_ip, "-p", str(port),
               "-t", str(seconds), "-J"] + (["-B", bind] if bind else [])
        if protocol == "udp":
            cmd += ["-u", "-b", f"{offer_kbit}K", "-l", str(length)]
        cli = client.popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = cli.communicate(timeout=seconds + 25)
        try:
            result = json.loads(out or b"{}")
        except ValueError as exc:
            raise IperfError(f"iperf3 printed no JSON ({exc}): {err.decode()[-300:]}") from exc
        if "error" in result or "end" not in result:
            raise IperfError(f"iperf3 failed: {result.get('error')} {err.decode()[-300:]}")
        end = result["end"]
        if protocol == "udp":
            # sum_received: the receiver's rate and loss (iperf3 >= 3.10; `sum` before)
            received = end.get("sum_received") or end["sum"]
            sent = end.get("sum_sent") or end["sum"]
            lost = received.get("lost_percent")
        else:
            received, sent, lost = end["sum_received"], end["sum_sent"], None
        return IperfResult(kbit=float(received["bits_per_second"]) / 1000,
                           sent_kbit=float(sent["bits_per_second"]) / 1000,
                           lost_percent=None if lost is None else float(lost))
    finally:
        _stop(cli)
        _stop(srv)


_METER_RE = re.compile(r"meter=(\d+)\s+(\w+)[^\n]*\n\s*type=drop rate=(\d+)")
_HTB_RE = re.compile(r"class htb (\S+) .*?\brate (\d+(?:\.\d+)?)(bit|Kbit|Mbit|Gbit)\b")
_UNIT = {"bit": 1e-3, "Kbit": 1.0, "Mbit": 1e3, "Gbit": 1e6}


def parse_meters(text: str) -> dict[int, int]:
    """``ovs-ofctl -O OpenFlow13 dump-meters`` -> {meter id: drop-band rate in kbit/s}
    (meters in pktps are left out)."""
    return {int(m): int(rate) for m, unit, rate in _METER_RE.findall(text) if unit == "kbps"}


def parse_htb_rates(text: str) -> dict[str, float]:
    """``tc class show dev DEV`` -> {class id: rate in kbit/s} (tc prints SI units)."""
    return {cls: float(value) * _UNIT[unit] for cls, value, unit in _HTB_RE.findall(text)}


_FILTER_RE = re.compile(r"flowid (\S+)")
_MATCH_RE = re.compile(r"^\s+match ([0-9a-f]{8})/([0-9a-f]{8}) at (\d+)")


def parse_u32_filters(text: str) -> list[tuple[str, list[tuple[int, int, int]]]]:
    """``tc filter show dev DEV`` -> [(class id, [(value, mask, offset), ...])] for the
    u32 filters that send traffic to a class."""
    out: list[tuple[str, list[tuple[int, int, int]]]] = []
    for line in text.splitlines():
        flow = _FILTER_RE.search(line) if line.startswith("filter") else None
        if flow:
            out.append((flow.group(1), []))
            continue
        match = _MATCH_RE.match(line)
        if match and out:
            value, mask, offset = match.groups()
            out[-1][1].append((int(value, 16), int(mask, 16), int(offset)))
    return out


def classes_for(filters: list[tuple[str, list[tuple[int, int, int]]]], address: str
                ) -> set[str]:
    """The classes whose filter selects IPv4 packets from or to ``address`` (a key on
    the source (12) or destination (16) field with that exact host)."""
    addr = int.from_bytes(bytes(int(x) for x in address.split(".")), "big")
    return {cls for cls, keys in filters
            if any(off in (12, 16) and mask == 0xFFFFFFFF and value == addr
                   for value, mask, off in keys)}


def shaping_of(host: Any, address: str, dev: str = "ipsec0") -> dict[str, float]:
    """{class id: kbit/s} of the HTB classes on ``host``'s ``dev`` that the u32 filters
    send ``address``'s packets to."""
    rates = htb_rates(host, dev)
    mine = classes_for(parse_u32_filters(host.cmd(f"tc filter show dev {dev}")), address)
    return {cls: rates.get(cls, 0.0) for cls in sorted(mine)}


def meters(switch: Any) -> dict[int, int]:
    """The OpenFlow meters a Mininet OVS switch holds now."""
    return parse_meters(switch.dpctl("dump-meters", "-O", "OpenFlow13"))


def htb_rates(host: Any, dev: str = "ipsec0") -> dict[str, float]:
    """The HTB classes on a gateway's tunnel device (kernel-libipsec: ``ipsec0``)."""
    return parse_htb_rates(host.cmd(f"tc class show dev {dev}"))
