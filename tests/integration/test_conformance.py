"""Issue 7: our packets as independent implementations see them (root, tshark, scapy).

One run of the default demo scenario (registration through FA1, intra-domain move to
FA2, probe traffic) in a private network namespace, captured with dumpcap on ``lo``
(Diameter between the roles, Mobile IPv4 relayed to the HA), on mn1's access link (UDP
434 + ICMP agent discovery, captured inside mn1's Mininet namespace) and on the HA's
core interface (ESP-in-UDP 4500).  Then:

* stock tshark decodes every standard message with no malformed packet and no warning
  except "unknown AVP/vendor" for our vendor AVPs;
* with docs/wireshark/dictionary-mipvpn.xml (bind-mounted into a private mount
  namespace: tshark 4.0 reads Diameter dictionaries only from its system folder) there
  is no unknown AVP at all and every vendor AVP is decoded by name;
* with docs/wireshark/mipvpn.lua: no malformed packet, no Lua error, the CVSE decoded;
* the messages of a registration appear in RFC 4004 order with application id 2;
* ESP captured on the wire decrypts and authenticates (AES-GCM-128, scapy) with the
  keys charon logged in a test-only log level (never in production code).

The Diameter interop peer (scapy) is in test_conformance_interop.py, the other
scenarios of the issue's list in test_conformance_scenarios.py; the helpers they
share in conformance_tools.py.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conformance_tools import (HAVE_TSHARK, Ports, ROOT,
                                                 STOCK_VENDOR_WARNINGS, TOPOLOGY, VENDOR_ID,
                                                 _start_capture, _stop_capture, expert,
                                                 fields, malformed_count, needs_root,
                                                 needs_tshark, topology_ports, tshark)
from tests.integration.netns import can_unshare, run_in_netns

pytestmark = pytest.mark.integration


# ====================================================================== the scenario

@dataclass(frozen=True)
class Scenario:
    lo: Path          # Diameter + MIP between the roles (loopback of the controller ns)
    access: Path      # mn1's link: UDP 434 + ICMP (captured in mn1's namespace)
    esp: Path         # HA core interface: UDP 4500
    ha_log: Path      # HA charon log with CHILD_SA keys (test-only log level)
    ports: Ports
    result: dict[str, Any]


def _keylog_conf(original: Any) -> Any:
    """strongswan_conf with CHILD_SA key logging (chd level 4: charon prints the ESP
    keys).  TEST ONLY: applied by monkeypatching inside the test's child process."""
    def conf(*args: Any, **kwargs: Any) -> str:
        text = original(*args, **kwargs)
        marker = "            flush_line = yes\n"
        assert marker in text, "strongswan_conf changed: update the key-log overlay"
        return text.replace(marker, marker + "            chd = 4\n")
    return conf


def _run_scenario(out: str) -> dict[str, Any]:
    """In the child (fresh network namespace): the demo with three captures."""
    import controller.adapters.strongswan.charon as strongswan
    from controller.config import load_topology
    from mininet_scripts.demo import Demo

    os.chdir(ROOT)
    outdir = Path(out)
    strongswan.strongswan_conf = _keylog_conf(strongswan.strongswan_conf)
    topo = load_topology(TOPOLOGY)
    ports = topology_ports()
    run_dir = Path(tempfile.mkdtemp(prefix="mvconf-"))
    os.chmod(run_dir, 0o755)
    caps: list[subprocess.Popen[bytes]] = []
    bpf_lo = " or ".join(f"tcp port {p}" for p in ports.diameter) + " or udp"
    demo = Demo(topo, run_dir, "127.0.0.1:18080", 16653)
    try:
        caps.append(_start_capture(subprocess.Popen, "lo", bpf_lo, outdir / "lo.pcapng"))
        demo.bring_up()
        mn_name = next(iter(topo.mobile_nodes))
        mn = demo.mnet.host(mn_name)
        caps.append(_start_capture(mn.popen, mn.defaultIntf().name, "udp port 434 or icmp",
                                   outdir / "access.pcapng"))
        ha_name = next(n for n, g in topo.gateways.items() if g.kind == "home_agent")
        ha = demo.mnet.host(ha_name)
        ha_ip = topo.gateways[ha_name].core.ip.split("/")[0]
        ha_if = next(i.name for i in ha.intfList() if i.IP() == ha_ip)
        caps.append(_start_capture(ha.popen, ha_if, "udp port 4500", outdir / "esp.pcapng"))
        result = demo.run()
        return {"registration_ms": result["registration_ms"],
                "moves": [(m["from"], m["to"], m["kind"]) for m in result["moves"]],
                "mn": mn_name, "ha": ha_name}
    finally:
        for proc in caps:
            _stop_capture(proc)
        demo.close()
        for name in ("ha",):
            log = run_dir / "gw" / name / "charon.log"
            if log.exists():
                shutil.copy(log, outdir / f"{name}-charon.log")
        if (run_dir / "controller.log").exists():
            shutil.copy(run_dir / "controller.log", outdir / "controller.log")
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    if os.geteuid() != 0 or shutil.which("ovs-vsctl") is None \
            or not Path("/usr/lib/ipsec/charon").exists():
        pytest.skip("needs root, Open vSwitch, Mininet and strongSwan")
    if not HAVE_TSHARK:
        pytest.skip("needs tshark/dumpcap (Debian package tshark)")
    if not can_unshare():
        pytest.skip("cannot create network namespaces")
    out = tmp_path_factory.mktemp("conformance")
    result = run_in_netns(_run_scenario, str(out), timeout=420)
    return Scenario(out / "lo.pcapng", out / "access.pcapng", out / "esp.pcapng",
                    out / "ha-charon.log", topology_ports(), result)


# ====================================================================== stock tshark


@needs_root
@needs_tshark
def test_stock_tshark_decodes_standard_messages(scenario: Scenario) -> None:
    for pcap in (scenario.lo, scenario.access):
        assert malformed_count(pcap, ports=scenario.ports) == 0, pcap.name
        ex = expert(pcap, ports=scenario.ports)
        assert not ex.get("Errors"), (pcap.name, ex.get("Errors"))
        bad = [w for w in ex.get("Warns", {}) if not STOCK_VENDOR_WARNINGS.match(w)]
        assert not bad, (pcap.name, bad)
    # every Mobile IP extension / agent advertisement field known to stock tshark
    text = tshark(scenario.access, "-O", "mip,icmp", "-Y", "mip || icmp.type == 9")
    assert "Unknown" not in text and "not dissected" not in text
    text = tshark(scenario.lo, "-O", "mip", "-Y", "mip", ports=scenario.ports)
    assert "Unknown" not in text and "not dissected" not in text
    # Diameter AVPs: only our vendor AVPs are unknown to stock tshark
    rows = fields(scenario.lo, "diameter", ["diameter.avp.code", "diameter.avp.vendorId"],
                  ports=scenario.ports)
    assert rows and any("320" in r[0].split("|") for r in rows)


@needs_root
@needs_tshark
def test_registration_in_rfc4004_order(scenario: Scenario) -> None:
    """RRQ (MN) -> AMR FA->AAAF -> AMR AAAF->AAAH -> HAR AAAH->HA -> HAA -> AMA AAAH->AAAF
    -> AMA AAAF->FA -> RRP (MN), application id 2, command codes 260/262; the move is
    answered by the AAAF alone (claim 17)."""
    p = scenario.ports
    role = {p.aaaf: "AAAF", p.aaah: "AAAH", p.ha_diameter: "HA"}
    events: list[tuple[float, str]] = []
    for t, sport, dport, reqs, codes, apps in fields(
            scenario.lo, "diameter.cmd.code == 260 || diameter.cmd.code == 262",
            ["frame.time_epoch", "tcp.srcport", "tcp.dstport", "diameter.flags.request",
             "diameter.cmd.code", "diameter.applicationId"], ports=p):
        # a segment may carry several messages: these fields occur once per message
        for req, code, app in zip(reqs.split("|"), codes.split("|"), apps.split("|"),
                                  strict=True):
            assert app == "2", (code, app)
            is_req = req in ("1", "True")
            server = role[int(dport if is_req else sport)]
            name = {("260", True): "AMR", ("260", False): "AMA", ("262", True): "HAR",
                    ("262", False): "HAA"}[(code, is_req)]
            events.append((float(t), f"{name}@{server}"))
    result_codes = [rc for (rcs,) in fields(
        scenario.lo, "(diameter.cmd.code == 260 || diameter.cmd.code == 262) && "
        "diameter.flags.request == 0", ["diameter.Result-Code"], ports=p)
        for rc in rcs.split("|")]
    assert result_codes and set(result_codes) == {"2001"}, result_codes
    for t, mtype, code in fields(scenario.access, "mip", ["frame.time_epoch", "mip.type",
                                                          "mip.code"]):
        events.append((float(t), {"1": "RRQ", "3": "RRP"}[mtype]))
        if mtype == "3":
            assert code == "0"
    events.sort()
    names = [n for _t, n in events]
    first = names[:names.index("RRP") + 1]
    assert first == ["RRQ", "AMR@AAAF", "AMR@AAAH", "HAR@HA", "HAA@HA", "AMA@AAAH",
                     "AMA@AAAF", "RRP"], names
    move = names[len(first):]
    assert move[0] == "RRQ" and move[-1] == "RRP", names
    assert [n for n in move if n[:3] in ("AMR", "AMA", "HAR", "HAA")] == [
        "AMR@AAAF", "AMA@AAAF"], names


@needs_root
@needs_tshark
def test_rrq_and_adverts_decoded_by_stock_tshark(scenario: Scenario) -> None:
    from controller.config import load_topology
    mn = next(iter(load_topology(TOPOLOGY).mobile_nodes.values()))
    mn_ha_spi = getattr(mn, "mn_ha_spi", None)
    rows = fields(scenario.access, "mip.type == 1",
                  ["mip.nai", "mip.ext.auth.subtype", "mip.auth.spi", "mip.homeaddr",
                   "mip.haaddr", "mip.coa", "mip.t", "mip.ext.cvse.vendor_id",
                   "mip.ext.cvse.vendor_value", "udp.payload", "mip.ext.type"])
    assert len(rows) == 2, rows
    for i, r in enumerate(rows):
        assert r[0] == "alice@home.example"
        assert r[1] == "1"                       # Generalized auth subtype 1: MN-AAA
        spis = [int(x, 0) for x in r[2].split("|")]
        # the move carries MN-FA authentication (issue 11: keyed from the nonce of the
        # first reply) after everything else, MN-AAA just before it
        mn_fa = spis.pop() if i else None
        assert mn_fa is None or mn_fa >= 256     # SPIs 0-255 are reserved
        assert spis[-1] == mn.mn_aaa_spi         # MN-AAA after MN-HA (RFC 3012 §3.1)
        assert (r[3], r[4]) == ("10.10.0.100", "10.0.0.1")
        assert r[6] in ("1", "True")             # reverse tunnelling requested
        # RFC 5944 §3.6.1.3 / 3012 §3.1 order: NAI, [CVSE], [MN-HA 32], MN-AAA 36,
        # [MN-FA 33] last (the FA's extension covers everything before it)
        want = (["131"] + (["38"] if i else []) + (["32"] if mn_ha_spi else []) + ["36"]
                + (["33"] if i else []))
        assert r[10].split("|") == want, r[10]
        if mn_ha_spi:
            assert spis == [mn_ha_spi, mn.mn_aaa_spi]
    assert [r[5] for r in rows] == ["10.0.0.11", "10.0.0.12"]
    assert rows[0][7] == "" and rows[1][7] == str(VENDOR_ID)    # CVSE only after the move
    assert rows[1][8] == "0a00000b"              # previous CoA 10.0.0.11
    # the MN's RRQ travels byte for byte inside MIP-Reg-Request (RFC 4004 §7.1)
    in_amr = {r[0].split("|")[0].replace(":", "") for r in fields(
        scenario.lo, "diameter.cmd.code == 260 && diameter.flags.request == 1",
        ["diameter.MIP-Reg-Request"], ports=scenario.ports)}
    assert {r[9].replace(":", "") for r in rows} <= in_amr
    adverts = fields(scenario.access, "icmp.type == 9",
                     ["icmp.code", "icmp.mip.f", "icmp.mip.r", "icmp.mip.coa",
                      "icmp.checksum.status"])
    assert adverts
    for code, f_bit, r_bit, coa, csum in adverts:
        assert code == "16" and f_bit in ("1", "True") and r_bit in ("1", "True")
        assert coa in ("10.0.0.11", "10.0.0.12") and csum == "1"


# ====================================================================== our dictionary

EXPECTED_VENDOR_AVPS = {
    "Mipvpn-VPN-Info", "Mipvpn-NAI", "Mipvpn-Home-Address", "Mipvpn-Home-Agent",
    "Mipvpn-Foreign-Agent", "Mipvpn-Previous-FA", "Mipvpn-Tunnel", "Mipvpn-Tunnel-Id",
    "Mipvpn-Tunnel-End-A", "Mipvpn-Tunnel-End-B", "Mipvpn-Gateway-Name",
    "Mipvpn-Gateway-Address", "Mipvpn-Traffic-Selector", "Mipvpn-IKE-Proposal",
    "Mipvpn-ESP-Proposal", "Mipvpn-PSK", "Mipvpn-QoS-Rate-Kbps", "Mipvpn-QoS-DSCP",
    "Mipvpn-Initiator", "Mipvpn-Previous-FA-Address",
}


@needs_root
@needs_tshark
def test_vendor_avps_decode_by_name_with_our_dictionary(scenario: Scenario) -> None:
    ex = expert(scenario.lo, ports=scenario.ports, dictionary=True)
    assert not ex.get("Errors"), ex.get("Errors")
    warns = ex.get("Warns", Counter())
    assert not [w for w in warns if "Unknown" in w], warns
    # The only other warning allowed: an empty Mipvpn-PSK (the HAR's copy of the static
    # tunnel, whose key the gateways already hold; a zero-length OctetString is valid
    # RFC 6733, tshark merely notes it).  See docs/conformance.md.
    assert set(warns) <= {"Diameter: Data is empty"}, warns
    text = tshark(scenario.lo, "-V", "-Y", "diameter", ports=scenario.ports,
                  dictionary=True)
    last_avp = ""
    for line in text.splitlines():
        m = re.search(r"AVP: ([\w-]+)\(\d+\)", line)
        if m:
            last_avp = m.group(1)
        elif "Data is empty" in line and "Expert" not in line and "[" not in line:
            assert last_avp == "Mipvpn-PSK", last_avp
    assert "Unknown(" not in text
    seen = set(re.findall(r"AVP: (Mipvpn-[\w-]+)\(\d+\) l=\d+ f=V-- vnd=Mipvpn", text))
    assert EXPECTED_VENDOR_AVPS <= seen, EXPECTED_VENDOR_AVPS - seen
    assert malformed_count(scenario.lo, ports=scenario.ports, dictionary=True) == 0
    # grouped content decoded: the tunnel ids and proposals are readable by name
    rows = fields(scenario.lo, "diameter.cmd.code == 260 && diameter.flags.request == 0",
                  ["diameter.Mipvpn-Tunnel-Id", "diameter.Mipvpn-ESP-Proposal"],
                  ports=scenario.ports, dictionary=True)
    ids = {t for r in rows for t in r[0].split("|") if t}
    assert "alice_home.example/ha-fa1" in ids and "alice_home.example/ha-fa2" in ids
    assert {e for r in rows for e in r[1].split("|") if e} == {"aes128gcm16-ecp256"}


# ====================================================================== our Lua dissector

@needs_root
@needs_tshark
def test_lua_dissector_over_the_scenario(scenario: Scenario) -> None:
    for pcap in (scenario.lo, scenario.access):
        assert malformed_count(pcap, ports=scenario.ports, lua=True, dictionary=True) == 0
        ex = expert(pcap, ports=scenario.ports, lua=True, dictionary=True)
        assert not ex.get("Errors"), ex.get("Errors")
        assert not [w for w in ex.get("Warns", {}) if "Lua" in w or "Unknown" in w]
    rows = fields(scenario.access, "mip.type == 1", ["mipvpn.cvse.type",
                                                      "mipvpn.cvse.previous_coa"], lua=True)
    assert [r[1] for r in rows] == ["", "10.0.0.11"]
    assert rows[1][0] == "1"


def _binding_pcap(path: Path) -> list[bytes]:
    """Our codec's experimental binding messages on UDP 434 and on two ephemeral ports
    (as roles talk on loopback), an RRQ carrying our CVSE and NVSE, and one malformed
    Binding Request (the dissector must flag it)."""
    from scapy.all import Ether, wrpcap
    from scapy.layers.inet import IP, UDP

    from controller.proto import mip
    # CVSE type 3 (VPN tunnel): sub-TLVs SubType(8) Length(8) Value -- tunnel id,
    # end A gateway, end A selector 10.30.0.0/24, QoS DSCP 46
    tunnel = (bytes([1, 9]) + b"t/ha-cngw" + bytes([2, 2]) + b"ha"
              + bytes([4, 5, 10, 30, 0, 0, 24]) + bytes([12, 1, 46]))
    bu = mip.encode(mip.BindingUpdate(
        mip.BU_FLAG_A | mip.BU_FLAG_I, 300, "10.10.0.100", "10.0.0.12", 0x1122334455667788,
        [mip.CriticalVendorExtension(VENDOR_ID, 1, bytes([10, 0, 0, 11])),
         mip.CriticalVendorExtension(VENDOR_ID, 3, tunnel),
         mip.NormalVendorExtension(VENDOR_ID, 7, b"\x01\x02")]))
    # RO authentication (experimental type 35, MN-HA layout): Type Length=20 SPI=400 auth
    bu += bytes([35, 20]) + struct.pack("!I", 400) + bytes(16)
    msgs = [mip.encode(mip.BindingWarning("10.10.0.100", ["10.0.0.31"])),
            mip.encode(mip.BindingRequest("10.10.0.100", 0x0123456789ABCDEF)),
            bu,
            mip.encode(mip.BindingAck(mip.BACK_IDENTIFICATION_MISMATCH, "10.10.0.100", 9))]
    rrq = mip.append_auth(mip.encode(mip.RegistrationRequest(
        mip.FLAG_T, 300, "10.10.0.100", "10.0.0.1", "10.0.0.12", 7,
        [mip.NaiExtension("alice@home.example"),
         mip.CriticalVendorExtension(VENDOR_ID, 1, bytes([10, 0, 0, 11])),
         mip.NormalVendorExtension(VENDOR_ID, 7, b"\xaa")])), mip.AuthKind.MN_AAA, 300,
        bytes(16))
    frames = [Ether() / IP(src="10.0.0.1", dst="10.0.0.31") / UDP(sport=434, dport=434) / m
              for m in msgs]
    frames += [Ether() / IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=40001, dport=40002)
               / m for m in msgs]
    frames.append(Ether() / IP(src="10.10.0.100", dst="255.255.255.255")
                  / UDP(sport=434, dport=434) / rrq)
    frames.append(Ether() / IP(src="10.0.0.1", dst="10.0.0.31") / UDP(sport=434, dport=434)
                  / (bytes([mip.BINDING_REQUEST]) + bytes(10)))
    wrpcap(str(path), frames)
    return msgs


@needs_tshark
def test_lua_dissector_decodes_binding_messages(tmp_path: Path) -> None:
    from controller.proto import mip
    pcap = tmp_path / "binding.pcap"
    _binding_pcap(pcap)
    rows = fields(pcap, "mipvpn", ["frame.number", "mipvpn.type", "mipvpn.homeaddr",
                                   "mipvpn.target", "mipvpn.ident", "mipvpn.status",
                                   "mipvpn.lifetime", "mipvpn.coa", "mipvpn.flags.a",
                                   "mipvpn.cvse.previous_coa", "mipvpn.nvse.type",
                                   "mipvpn.ext.spi", "mipvpn.ext.type", "mipvpn.cvse.type",
                                   "mipvpn.tunnel.text", "mipvpn.tunnel.address",
                                   "mipvpn.tunnel.prefixlen", "mipvpn.tunnel.uint"],
                  lua=True)
    by_frame = {int(r[0]): r[1:] for r in rows}
    types = [mip.BINDING_WARNING, mip.BINDING_REQUEST, mip.BINDING_UPDATE, mip.BINDING_ACK]
    for base in (1, 5):      # UDP 434 (in front of the mip dissector), then heuristic
        bw, breq, bu, back = (by_frame[base + i] for i in range(4))
        assert [int(x[0]) for x in (bw, breq, bu, back)] == types
        assert {x[1] for x in (bw, breq, bu, back)} == {"10.10.0.100"}
        assert bw[2] == "10.0.0.31"
        assert int(breq[3], 16) == 0x0123456789ABCDEF
        assert back[4] == "133"
        assert (bu[5], bu[6], bu[7]) == ("300", "10.0.0.12", "1")
        assert (bu[8], bu[9], int(bu[10], 0)) == ("10.0.0.11", "7", 400)
        assert bu[11].split("|") == ["38", "38", "134", "35"]     # ext types, in order
        assert bu[12].split("|") == ["1", "3"]                    # CVSE types
        assert (bu[13], bu[14], bu[15], bu[16]) == ("t/ha-cngw|ha", "10.30.0.0", "24", "46")
    # the RRQ still goes to Wireshark's own mip dissector; our NVSE/CVSE trees added
    rrq = fields(pcap, "frame.number == 9", ["mip.nai", "mipvpn.nvse.type",
                                             "mipvpn.cvse.previous_coa"], lua=True)
    assert rrq == [["alice@home.example", "7", "10.0.0.11"]]
    # exactly one malformed packet: the truncated Binding Request, flagged by us
    bad = tshark(pcap, "-Y", "_ws.malformed || _ws.expert.severity == error", "-T",
                 "fields", "-e", "frame.number", "-e", "_ws.expert.message", lua=True)
    assert bad.split()[:1] == ["10"] and len(bad.splitlines()) == 1, bad
    # without the script, stock tshark cannot decode them (PROTOCOLS.md §1)
    assert "mipvpn" not in tshark(pcap, "-V")


# ====================================================================== ESP

@dataclass(frozen=True)
class ChildSa:
    name: str
    spi_in: int
    spi_out: int
    keys: dict[str, bytes]     # "initiator"/"responder" -> AES-GCM key (16 + 4 salt)
    proposal: str


def child_sas_from_log(log: Path) -> list[ChildSa]:
    """CHILD_SAs and their ESP keys from charon's chd-level-4 log."""
    keys: dict[str, dict[str, bytes]] = {}
    proposals: dict[str, str] = {}
    out: list[ChildSa] = []
    current: tuple[str, str] | None = None
    for line in log.read_text().splitlines():
        m = re.search(r"<([^>]+)> encryption (initiator|responder) key => \d+ bytes", line)
        if m:
            current = (m.group(1), m.group(2))
            keys.setdefault(m.group(1), {})[m.group(2)] = b""
            continue
        m = re.search(r"<([^>]+)>\s+\d+: ((?:[0-9A-F]{2} )+)", line)
        if m and current and m.group(1) == current[0]:
            keys[current[0]][current[1]] += bytes.fromhex(m.group(2).replace(" ", ""))
            continue
        current = None
        m = re.search(r"<([^>]+)> selected proposal: (ESP:\S+)", line)
        if m:
            proposals[m.group(1)] = m.group(2)
        m = re.search(r"<([^>]+)> CHILD_SA (\S+)\{\d+\} established with SPIs "
                      r"([0-9a-f]{8})_i ([0-9a-f]{8})_o", line)
        if m and m.group(1) in keys:
            out.append(ChildSa(m.group(2), int(m.group(3), 16), int(m.group(4), 16),
                               keys.pop(m.group(1)), proposals.get(m.group(1), "")))
    return out


def _decrypt(src: str, dst: str, esp: bytes, key: bytes) -> Any:
    from scapy.layers.inet import IP
    from scapy.layers.ipsec import ESP, SecurityAssociation
    spi = struct.unpack("!I", esp[:4])[0]
    sa = SecurityAssociation(ESP, spi=spi, crypt_algo="AES-GCM", crypt_key=key,
                             auth_algo="NULL")
    return sa.decrypt(IP(src=src, dst=dst, proto=50) / ESP(esp))


@needs_root
@needs_tshark
def test_esp_decrypts_with_the_negotiated_keys(scenario: Scenario) -> None:
    """Every ESP SPI seen on the HA's core link belongs to a CHILD_SA the HA logged, uses
    the profile's aes128gcm16-ecp256 (AES-GCM, 16-byte ICV, 128-bit key; ECP-256 only in
    a CREATE_CHILD_SA: the first CHILD_SA, in IKE_AUTH, has no DH), and its first packet
    decrypts and authenticates with exactly one of the SA's two keys; a flipped bit
    fails authentication."""
    from scapy.all import rdpcap
    from scapy.layers.inet import IP, UDP

    sas = child_sas_from_log(scenario.ha_log)
    assert sas, "no keys in the HA's charon log (test-only chd=4 overlay)"
    assert {s.proposal for s in sas} <= {"ESP:AES_GCM_16_128/NO_EXT_SEQ",
                                         "ESP:AES_GCM_16_128/ECP_256/NO_EXT_SEQ"}
    assert all(len(k) == 20 for s in sas for k in s.keys.values())   # 16 key + 4 salt
    by_spi = {spi: s for s in sas for spi in (s.spi_in, s.spi_out)}
    first: dict[int, tuple[str, str, bytes]] = {}
    for pkt in rdpcap(str(scenario.esp)):
        if UDP not in pkt:
            continue
        payload = bytes(pkt[UDP].payload)
        if len(payload) < 8 or payload[:4] == b"\0\0\0\0":   # non-ESP marker: IKE
            continue
        first.setdefault(struct.unpack("!I", payload[:4])[0],
                         (pkt[IP].src, pkt[IP].dst, payload))
    assert first, "no ESP captured on the HA's core interface"
    assert set(first) <= set(by_spi), [hex(s) for s in set(first) - set(by_spi)]
    inner_flows = set()
    for spi, (src, dst, esp) in first.items():
        good = []
        for role, key in by_spi[spi].keys.items():
            try:
                inner = _decrypt(src, dst, esp, key)
            except Exception:  # noqa: BLE001 - wrong key: GCM tag mismatch
                continue
            good.append(role)
            ip = inner[IP].payload if isinstance(inner[IP].payload, IP) else inner[IP]
            inner_flows.add((by_spi[spi].name, ip.src, ip.dst))
        assert len(good) == 1, (hex(spi), good)
        key = by_spi[spi].keys[good[0]]
        tampered = esp[:-20] + bytes([esp[-20] ^ 1]) + esp[-19:]
        with pytest.raises(Exception):
            _decrypt(src, dst, tampered, key)
    # the probe MN -> CN crossed both the HA<->FA tunnel and the static HA<->CN-GW one
    names = {n for n, _s, _d in inner_flows}
    assert "alice_home.example/ha-fa1" in names and "static/ha-cngw" in names, inner_flows
    assert any(s == "10.10.0.100" and d == "10.30.0.10" for _n, s, d in inner_flows)
