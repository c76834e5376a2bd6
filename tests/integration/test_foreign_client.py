"""A Mobile IPv4 client we did not write, against the demo stack (root: OVS + Mininet +
charon + the controller), issue 18.

The client is made here, not from our codec: the Registration Request's fixed part is
scapy's ``MobileIPRRQ``; the extensions (MN-NAI, RFC 2794; MN-HA, RFC 5944 §3.5.2;
MN-AAA, RFC 3012 §6) are laid out byte by byte with their HMAC-MD5 authenticators
computed in the script.  It runs inside mn1's Mininet namespace on a plain UDP socket
bound to an ephemeral port (not 434, as most clients must when another process holds
434), broadcasts the request as an unregistered MN does, and reads the answer on that
same socket with scapy's ``MobileIPRRP``: a reply sent to port 434 never reaches it.

One bring-up, then, in order (the FA holds an accepted registration's retransmissions
for 3 s, so the replay comes after that):

- lifetime above the FA's maximum -> 69, Lifetime = the FA's maximum (1800);
- a corrupted MN-AAA authenticator -> 67;
- a reserved flag bit (``x``) set -> 70;
- minimal encapsulation requested (``M``) -> 72;
- the valid request -> 0, Identification echoed, Lifetime <= requested;
- the valid request's Identification again -> 133, low 32 bits echoed, high 32 bits
  the HA's clock (RFC 5944 §5.7);
and every reply comes from the FA's address and UDP port 434 to the client's port.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ovs-vsctl") is None
    or not Path("/usr/lib/ipsec/charon").exists(),
    reason="needs root, Open vSwitch, Mininet and strongSwan")

NTP_EPOCH = 2_208_988_800   # seconds from 1900-01-01 to 1970-01-01

# The client: argv[1] is a JSON object (addresses, keys, the requests to make); prints
# one JSON line per request with what came back (or {"timeout": true}).
CLIENT = r'''
import hashlib, hmac, json, socket, struct, sys, time
from scapy.layers.mobileip import MobileIP, MobileIPRRQ, MobileIPRRP

a = json.loads(sys.argv[1])
aaa_key, ha_key = bytes.fromhex(a["aaa_key"]), bytes.fromhex(a["ha_key"])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, a["iface"].encode())
s.bind((a["home"], a["port"]))
s.settimeout(a["timeout"])

def rrq(r):
    fixed = bytes(MobileIP(type=1) / MobileIPRRQ(
        flags=r["flags"], lifetime=r["lifetime"], homeaddr=a["home"], haaddr=a["ha"],
        coaddr=a["coa"], id=r["id"]))
    nai = a["nai"].encode()
    msg = fixed + struct.pack("!BB", 131, len(nai)) + nai          # RFC 2794 MN-NAI
    msg += struct.pack("!BBI", 32, 20, a["ha_spi"])                # RFC 5944 MN-HA
    msg += hmac.new(ha_key, msg, hashlib.md5).digest()
    msg += struct.pack("!BBHI", 36, 1, 20, a["aaa_spi"])           # RFC 3012 MN-AAA
    auth = hmac.new(aaa_key, msg, hashlib.md5).digest()
    if r.get("corrupt"):
        auth = bytes([auth[0] ^ 1]) + auth[1:]
    return msg + auth

for r in a["requests"]:
    s.sendto(rrq(r), ("255.255.255.255", 434))
    out = {"name": r["name"]}
    try:
        data, peer = s.recvfrom(2048)
    except socket.timeout:
        out["timeout"] = True
    else:
        rep = MobileIP(data)
        rrp = rep[MobileIPRRP]
        out.update(peer=list(peer), type=rep.type, code=rrp.code, lifetime=rrp.lifetime,
                   homeaddr=rrp.homeaddr, haaddr=rrp.haaddr, id=rrp.id)
    print(json.dumps(out), flush=True)
    time.sleep(r.get("pause", 0))
'''


def _ident(seq: int) -> int:
    """An NTP-format identification (RFC 5944 §5.7): seconds since 1900 and a tag."""
    return (int(time.time() + NTP_EPOCH) << 32) | (0x5A5A0000 + seq)


@needs_root
def test_foreign_client_on_an_ephemeral_port_gets_every_answer() -> None:
    from controller.config import load_topology
    from mininet_scripts.demo import Demo

    topo = load_topology(ROOT / "topology" / "default.yaml")
    mn = topo.mobile_nodes["mn1"]
    fa = topo.gateways["fa1"]
    ha = topo.gateways[mn.home_agent]
    run_dir = Path(tempfile.mkdtemp(prefix="mipvpn-foreign-"))
    os.chmod(run_dir, 0o755)
    demo = Demo(topo, run_dir, "127.0.0.1:18080", 16653)
    try:
        demo.bring_up()
        host = demo.mnet.host("mn1")
        good = _ident(1)
        requests = [
            {"name": "too_long", "flags": 0x02, "lifetime": 0xFFFF, "id": _ident(2)},
            {"name": "bad_aaa", "flags": 0x02, "lifetime": 300, "id": _ident(3),
             "corrupt": True},
            {"name": "reserved_x", "flags": 0x03, "lifetime": 300, "id": _ident(4)},
            {"name": "minimal_encap", "flags": 0x12, "lifetime": 300, "id": _ident(5)},
            {"name": "good", "flags": 0x02, "lifetime": 300, "id": good, "pause": 3.5},
            {"name": "replay", "flags": 0x02, "lifetime": 300, "id": good},
        ]
        args = {"iface": host.defaultIntf().name, "home": mn.home_address, "port": 40434,
                "ha": ha.core.ip, "coa": fa.core.ip, "nai": mn.nai,
                "aaa_spi": mn.mn_aaa_spi, "aaa_key": mn.mn_aaa_key.hex(),
                "ha_spi": mn.mn_ha_spi, "ha_key": mn.mn_ha_key.hex(), "timeout": 5.0,
                "requests": requests}
        proc = host.popen([sys.executable, "-c", CLIENT, json.dumps(args)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          cwd=str(ROOT))
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err.decode()
        got = {r["name"]: r for r in map(json.loads, out.decode().splitlines())}
        stamp = int(time.time() + NTP_EPOCH)

        timed_out = [name for name, r in got.items() if r.get("timeout")]
        assert not timed_out, f"no reply on the client's port for {timed_out}: {got}"
        for name, r in got.items():
            # from the FA's address and port 434, a Registration Reply for this MN
            assert r["peer"] == [fa.inside.ip, 434], (name, r)
            assert r["type"] == 3 and r["homeaddr"] == mn.home_address, (name, r)
        codes = {name: r["code"] for name, r in got.items()}
        assert codes == {"too_long": 69, "bad_aaa": 67, "reserved_x": 70,
                         "minimal_encap": 72, "good": 0, "replay": 133}, got
        assert got["too_long"]["lifetime"] == 1800       # the FA's maximum
        for r in requests[:5]:
            assert got[r["name"]]["id"] == r["id"], (r["name"], got[r["name"]])
        assert 0 < got["good"]["lifetime"] <= 300
        assert got["good"]["haaddr"] == ha.core.ip
        replay = got["replay"]
        assert replay["id"] & 0xFFFFFFFF == good & 0xFFFFFFFF
        assert abs((replay["id"] >> 32) - stamp) < 30    # the HA's clock
    finally:
        demo.close()
        shutil.rmtree(run_dir, ignore_errors=True)
