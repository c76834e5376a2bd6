"""Issue 14: what ``AnnounceMobileNode`` relies on in the FA's kernel, on a real Linux
neighbour table (a veth pair in a private network namespace; no OVS).

An FA that routed a packet towards an MN's home address while the MN was elsewhere
has an INCOMPLETE entry (probes every ``retrans_time``, 1 s) or, after its probes, a
FAILED one.  The ARP reply the controller sends on the MN's behalf
(``openflow.arp_reply_frame``, the bytes the runtime packets out) resolves it at once:
the queued packet leaves for the MN's MAC within milliseconds, not at the next probe.
Without an entry, the reply creates none (``arp_accept`` 0)."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import time

import pytest

from controller.adapters import openflow
from tests.integration.netns import in_netns

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a private network namespace)"),
]

FA_IP, MN_IP, OTHER_IP = "10.99.0.1", "10.99.0.100", "10.99.0.101"
MN_MAC = "02:00:00:00:99:64"
ETH_P_ALL = 0x0003


def _sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def _lab() -> tuple[str, socket.socket]:
    """fa0 (the FA's inside interface, FA_IP/24) <-> mn0 (the access link: a raw socket
    on it sees what the FA sends and injects what the MN's side would)."""
    _sh("ip", "link", "add", "fa0", "type", "veth", "peer", "name", "mn0")
    _sh("ip", "addr", "add", f"{FA_IP}/24", "dev", "fa0")
    _sh("ip", "link", "set", "fa0", "up")
    _sh("ip", "link", "set", "mn0", "up")
    fa_mac = json.loads(_sh("ip", "-j", "link", "show", "fa0"))[0]["address"]
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    raw.bind(("mn0", 0))
    return fa_mac, raw


def _send_udp(dst: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"downlink", (dst, 9))


def _neigh(ip: str) -> str:
    return _sh("ip", "neigh", "show", ip, "dev", "fa0").strip()


def _wait_frame(raw: socket.socket, want: bytes, timeout: float) -> float | None:
    """Seconds until a frame whose first bytes are ``want`` arrives on mn0, or None."""
    start = time.monotonic()
    while (left := timeout - (time.monotonic() - start)) > 0:
        if select.select([raw], [], [], left)[0]:
            frame = raw.recv(2048)
            if frame.startswith(want):
                return time.monotonic() - start
    return None


@in_netns(timeout=60)
def test_an_incomplete_entry_is_resolved_by_the_announcement() -> None:
    fa_mac, raw = _lab()
    _send_udp(MN_IP)                        # the blip: the FA asks, nobody answers
    time.sleep(0.2)
    assert "INCOMPLETE" in _neigh(MN_IP), _neigh(MN_IP)
    raw.send(openflow.arp_reply_frame(MN_MAC, MN_IP, fa_mac, FA_IP))
    took = _wait_frame(raw, bytes.fromhex(MN_MAC.replace(":", "")), 0.5)
    assert took is not None and took < 0.1, took     # the queued packet, not at 1 s
    assert MN_MAC in _neigh(MN_IP) and "REACHABLE" in _neigh(MN_IP), _neigh(MN_IP)


@in_netns(timeout=60)
def test_without_it_the_entry_waits_for_the_next_probe() -> None:
    """The control: no announcement, the MN answers the FA's next ARP request only."""
    _fa_mac, raw = _lab()
    _send_udp(MN_IP)
    time.sleep(0.2)
    assert _wait_frame(raw, bytes.fromhex(MN_MAC.replace(":", "")), 0.5) is None
    assert "INCOMPLETE" in _neigh(MN_IP), _neigh(MN_IP)


@in_netns(timeout=60)
def test_a_failed_entry_is_resolved_and_none_is_created() -> None:
    fa_mac, raw = _lab()
    # probes of 100 ms, one each: FAILED quickly (the default takes 3 s)
    _sh("sysctl", "-qw", "net.ipv4.neigh.fa0.retrans_time_ms=100",
        "net.ipv4.neigh.fa0.mcast_solicit=1", "net.ipv4.neigh.fa0.ucast_solicit=1")
    _send_udp(MN_IP)
    time.sleep(0.5)
    assert "FAILED" in _neigh(MN_IP), _neigh(MN_IP)
    raw.send(openflow.arp_reply_frame(MN_MAC, MN_IP, fa_mac, FA_IP))
    time.sleep(0.05)
    assert MN_MAC in _neigh(MN_IP) and "REACHABLE" in _neigh(MN_IP), _neigh(MN_IP)
    # an address the FA never asked for: no entry from an announcement alone
    raw.send(openflow.arp_reply_frame("02:00:00:00:99:65", OTHER_IP, fa_mac, FA_IP))
    time.sleep(0.05)
    assert _neigh(OTHER_IP) == ""
