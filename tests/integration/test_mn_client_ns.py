"""mn_client against a fake foreign agent in two network namespaces (root only).

The fake FA (tests/integration/_fake_fa.py logic inline below) advertises every 0.3 s and
answers every RRQ with an accepting RRP unicast to the home address. Asserts the MN
registers, installs the default route + neighbour entry, and exits cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

FAKE_FA = r'''
import os, socket, struct, sys, time
from controller.proto import mip
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.setsockopt(socket.SOL_SOCKET, 25, b"fa-eth0")
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
u.bind(("0.0.0.0", 434)); u.settimeout(0.3)
seq = 0
while True:
    adv = mip.AgentAdvertisement("10.21.0.1", 0, 1800, seq, 300,
                                 mip.ADV_FLAG_F | mip.ADV_FLAG_T, ["10.21.0.1"])
    s.sendto(adv.encode(), ("224.0.0.1", 0)); seq += 1
    try:
        data, addr = u.recvfrom(2048)
    except socket.timeout:
        continue
    msg = mip.decode(data)
    if isinstance(msg, mip.RegistrationRequest):
        ok = mip.verify_auth(data, mip.AuthKind.MN_AAA, bytes.fromhex(os.environ["FAKE_FA_KEY"]))
        rrp = mip.RegistrationReply(0 if ok else 67, 120, msg.home_address, msg.home_agent,
                                    msg.identification)
        u.sendto(mip.encode(rrp), (msg.home_address, 434))
        print("rrq from", addr, "auth", ok, flush=True)
'''


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


@pytest.fixture
def namespaces():  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.skip("needs root")
    tag = str(os.getpid())
    mn_ns, fa_ns = f"mipt-mn-{tag}", f"mipt-fa-{tag}"
    _ip("netns", "add", mn_ns)
    _ip("netns", "add", fa_ns)
    try:
        _ip("link", "add", "mn-eth0", "netns", mn_ns, "type", "veth", "peer", "name",
            "fa-eth0", "netns", fa_ns)
        _ip("-n", mn_ns, "addr", "add", "10.10.0.100/32", "dev", "mn-eth0")
        _ip("-n", fa_ns, "addr", "add", "10.21.0.1/24", "dev", "fa-eth0")
        for ns, dev in ((mn_ns, "mn-eth0"), (fa_ns, "fa-eth0")):
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", fa_ns, "route", "add", "10.10.0.100/32", "dev", "fa-eth0")
        yield mn_ns, fa_ns
    finally:
        subprocess.run(["ip", "netns", "del", mn_ns], check=False)
        subprocess.run(["ip", "netns", "del", fa_ns], check=False)


def test_mn_registers_via_fake_fa(namespaces, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mn_ns, fa_ns = namespaces
    key = "00112233445566778899aabbccddeeff"
    events = tmp_path / "events.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # keys through the environment, never argv (ps): the MN client reads
    # $MIPVPN_MN_AAA_KEY (it refuses --key)
    fa = subprocess.Popen(["ip", "netns", "exec", fa_ns, sys.executable, "-c", FAKE_FA],
                          env=dict(env, FAKE_FA_KEY=key), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    mn = subprocess.Popen(
        ["ip", "netns", "exec", mn_ns, sys.executable, "-m", "mininet_scripts.mn_client",
         "--nai", "alice@home.example", "--home-address", "10.10.0.100",
         "--home-agent", "10.0.0.1", "--spi", "300", "--iface", "mn-eth0",
         "--lifetime", "300", "--events", str(events)],
        env=dict(env, MIPVPN_MN_AAA_KEY=key), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        records: list[dict] = []
        while time.monotonic() < deadline:
            if events.exists():
                records = [json.loads(line) for line in events.read_text().splitlines()]
                if any(r["event"] == "registered" for r in records):
                    break
            time.sleep(0.1)
        names = [r["event"] for r in records]
        assert "registered" in names, (names, mn.poll())
        reg = next(r for r in records if r["event"] == "registered")
        assert reg["coa"] == "10.21.0.1" and reg["code"] == 0
        route = subprocess.run(["ip", "-n", mn_ns, "route", "show", "default"],
                               capture_output=True, text=True, check=True).stdout
        assert "via 10.21.0.1 dev mn-eth0" in route and "onlink" in route
        neigh = subprocess.run(["ip", "-n", mn_ns, "neigh", "show", "10.21.0.1"],
                               capture_output=True, text=True, check=True).stdout
        assert "lladdr" in neigh
    finally:
        mn.send_signal(signal.SIGTERM)
        try:
            rc = mn.wait(timeout=5)
        except subprocess.TimeoutExpired:
            mn.kill()
            rc = mn.wait()
        fa.kill()
        fa.wait()
    assert rc == 0, mn.stdout.read() if mn.stdout else ""
    assert json.loads(events.read_text().splitlines()[-1])["event"] == "stopped"
