"""Issue 7: a Diameter peer we did not write (scapy) does CER/CEA, DWR/DWA and AMR/AMA
with our AAAF (root; split from test_conformance.py by topic)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conformance_tools import ROOT, TOPOLOGY, VENDOR_ID, topology_ports
from tests.integration.netns import can_unshare, run_in_netns

pytestmark = pytest.mark.integration


# ====================================================================== interop peer

def _recv_diameter(sock: socket.socket) -> bytes:
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            raise ConnectionError("peer closed")
        head += chunk
    length = struct.unpack("!I", head)[0] & 0xFFFFFF
    data = head
    while len(data) < length:
        chunk = sock.recv(length - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


def _scapy_peer_session() -> dict[str, Any]:
    """In the child (fresh netns): `mipvpn controller`, then a scapy Diameter client on
    the AAAF's port.  Returns what came back, parsed by scapy."""
    import scapy.contrib.diameter as sd
    from scapy.layers.mobileip import MobileIP, MobileIPRRP

    from controller.config import load_topology
    from controller.proto import mip
    from mininet_scripts.mn_state import Agent, MnConfig, MobileNodeState

    topo = load_topology(TOPOLOGY)
    ports = topology_ports()
    # the scapy peer stands in for the FA the MN attaches to (issue 11: the AAAF takes
    # only its own FAs, each naming itself); that FA's role is left out of the process
    mn_name, mn = next(iter(topo.mobile_nodes.items()))
    fa_name = topo.switches[mn.attach_switch].foreign_agent
    run_dir = Path(tempfile.mkdtemp(prefix="mvpeer-"))
    log = open(run_dir / "controller.log", "wb")  # noqa: SIM115
    ctl = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "controller", "--config", str(TOPOLOGY),
         "--run-dir", str(run_dir), "--of-listen", "127.0.0.1:16653",
         "--rest", "127.0.0.1:18080", "--exclude-roles", f"fa:{fa_name}"], cwd=ROOT,
        stdout=log, stderr=subprocess.STDOUT)
    got: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", ports.aaaf), timeout=5)
                break
            except OSError:
                if ctl.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("controller did not listen: "
                                       + (run_dir / "controller.log").read_text()[-3000:])
                time.sleep(0.1)
        foreign = next(d for d in topo.domains.values()
                       if d.aaa is not None and d.home_agent is None and d.realm != "")
        realm = foreign.realm
        me = f"{fa_name}.{realm}"
        with sock:
            def exchange(msg: Any) -> Any:
                sock.sendall(bytes(msg))
                return sd.DiamG(_recv_diameter(sock))

            def avps(ans: Any) -> dict[int, Any]:
                return {a.avpCode: a for a in ans.avpList}

            cea = exchange(sd.DiamReq(
                "Capabilities-Exchange", drHbHId=1, drEtEId=1, avpList=[
                    sd.AVP("Origin-Host", val=me), sd.AVP("Origin-Realm", val=realm),
                    sd.AVP("Host-IP-Address", val="127.0.0.1"), sd.AVP("Vendor-Id", val=0),
                    sd.AVP("Product-Name", val="scapy"),
                    sd.AVP("Auth-Application-Id", val=2)]))
            a = avps(cea)
            got["cea"] = (cea.drCode, int(cea.drFlags), cea.drHbHId, a[268].val,
                          a[264].val.decode(), a[258].val)
            dwa = exchange(sd.DiamReq("Device-Watchdog", drHbHId=2, drEtEId=2, avpList=[
                sd.AVP("Origin-Host", val=me), sd.AVP("Origin-Realm", val=realm)]))
            got["dwa"] = (dwa.drCode, int(dwa.drFlags), dwa.drHbHId, avps(dwa)[268].val)

            fa = topo.gateways[fa_name]
            ha = topo.gateways[mn.home_agent]
            extra = {}
            if getattr(mn, "mn_ha_key", None) and "ha_key" in {
                    f.name for f in dataclasses.fields(MnConfig)}:
                extra = {"ha_spi": mn.mn_ha_spi, "ha_key": mn.mn_ha_key}
            state = MobileNodeState(MnConfig(
                nai=mn.nai, home_address=mn.home_address, home_agent=ha.core.ip.split("/")[0],
                spi=mn.mn_aaa_spi, key=mn.mn_aaa_key, lifetime=mn.lifetime, **extra))
            agent = Agent(router_address=fa.inside.ip.split("/")[0],
                          care_of_address=fa.core.ip.split("/")[0], mac=fa.inside.mac,
                          registration_lifetime=1800)

            def amr(hbh: int, rrq: bytes, sid: str) -> Any:
                ilen, alen, aoff = mip.mn_aaa_auth_offsets(rrq)
                return sd.DiamReq("AA-Mobile-Node", drAppId=2, drHbHId=hbh, drEtEId=hbh,
                                  avpList=[
                    sd.AVP("Session-Id", val=sid), sd.AVP("Auth-Application-Id", val=2),
                    sd.AVP("User-Name", val=mn.nai),
                    sd.AVP("Destination-Realm", val=mn.nai.split("@")[1]),
                    sd.AVP("Origin-Host", val=me), sd.AVP("Origin-Realm", val=realm),
                    sd.AVP("MIP-Reg-Request", val=rrq),
                    sd.AVP("MIP-MN-AAA-Auth", val=[
                        sd.AVP("MIP-MN-AAA-SPI", val=mn.mn_aaa_spi),
                        sd.AVP("MIP-Auth-Input-Data-Length", val=ilen),
                        sd.AVP("MIP-Authenticator-Length", val=alen),
                        sd.AVP("MIP-Authenticator-Offset", val=aoff)]),
                    sd.AVP("MIP-Mobile-Node-Address", val=mn.home_address),
                    sd.AVP("MIP-Home-Agent-Address", val=ha.core.ip.split("/")[0]),
                    sd.AVP("MIP-Feature-Vector", val=4),
                    # our vendor AVP naming the FA this peer stands in for (V=1, M=0)
                    sd.AVPV_StrLenField(avpCode=5, avpFlags=0x80, avpVnd=VENDOR_ID,
                                        val=fa_name)])

            ident = mip.ntp_identification(time.time())
            rrq = state.build_rrq(agent, ident, None, mn.lifetime)
            ama = exchange(amr(3, rrq, f"{me};1;1"))
            a = avps(ama)
            rrp = MobileIP(a[321].val) if 321 in a else None
            got["ama"] = (ama.drCode, int(ama.drFlags), ama.drAppId, ama.drHbHId,
                          a[268].val, a[263].val.decode(),
                          (rrp.type, rrp[MobileIPRRP].code, rrp[MobileIPRRP].id & 0xFFFFFFFF)
                          if rrp is not None else None, ident & 0xFFFFFFFF,
                          a[281].val.decode() if 281 in a else "")
            bad = bytearray(state.build_rrq(agent, ident + 1000, None, mn.lifetime))
            bad[-1] ^= 0xFF                               # wrong MN-AAA authenticator
            ama = exchange(amr(4, bytes(bad), f"{me};1;2"))
            got["ama_bad"] = (ama.drCode, ama.drHbHId, avps(ama)[268].val)
            # an unknown AVP with the M bit: RFC 6733 says 5001 with Failed-AVP
            weird = amr(5, rrq, f"{me};1;3")
            weird.avpList.append(sd.AVP_Unknown(avpCode=65000, avpFlags=0x40, val=b"x"))
            weird.drLen = None
            ama = exchange(weird)
            got["ama_unknown_m"] = (ama.drHbHId, avps(ama)[268].val, 279 in avps(ama))
    finally:
        got["log"] = (run_dir / "controller.log").read_text(errors="replace")[-4000:]
        ctl.terminate()
        try:
            ctl.wait(10)
        except subprocess.TimeoutExpired:
            ctl.kill()
            ctl.wait(5)
        log.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    return got


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespace)")
def test_scapy_diameter_peer_talks_to_our_aaaf() -> None:
    if not can_unshare():
        pytest.skip("cannot create network namespaces")
    got = run_in_netns(_scapy_peer_session, timeout=120)
    assert got["cea"][:4] == (257, 0, 1, 2001), got["cea"]
    assert got["cea"][5] == 2                             # Auth-Application-Id 2 offered
    assert got["dwa"] == (280, 0, 2, 2001)
    code, flags, app, hbh, rc, sid, rrp, ident_low, error = got["ama"]
    assert (code, flags & 0x80, app, hbh, rc) == (260, 0, 2, 3, 2001), (error, got["log"])
    assert sid.endswith(";1;1")
    assert rrp is not None and rrp[:2] == (3, 0) and rrp[2] == ident_low   # RRP accepted
    assert got["ama_bad"] == (260, 4, 4001)               # AUTHENTICATION_REJECTED
    assert got["ama_unknown_m"] == (5, 5001, True)        # AVP_UNSUPPORTED + Failed-AVP
