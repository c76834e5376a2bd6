"""strongSwan adapter against real charons in Mininet hosts: the VPN data path.

Topology (Mininet hosts linked directly, no switches; names prefixed ``sw``)::

    mn ── fa  ──┐                      10.21.0.0/24 (mn holds 10.10.0.100/32)
     └── fa2 ──┤ br0 in ha 10.0.0.0/24   10.22.0.0/24
               ha ── home0 10.10.0.0/24 (veth pair inside ha)
    cn ── cngw ┘                      10.30.0.0/24

The core is one subnet: the HA's core-side interfaces are enslaved to a Linux bridge
``br0`` inside the HA namespace (10.0.0.1), so fa 10.0.0.11, fa2 10.0.0.12 and
cngw 10.0.0.31 share it.  Nothing routes 10.10/10.21/10.22/10.30 across the core in the
main tables: only the tunnels (table 220 via ``ipsec0``) do.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from controller.adapters.strongswan import (
    CharonProcess, StrongSwanGateway, TunnelError, charon_plugins, detect_kernel_esp)
from controller.core.vpn import TunnelEnd, TunnelSpec, new_psk, tunnel_name

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.path.exists("/usr/lib/ipsec/charon"), reason="no charon"),
    pytest.mark.skipif(shutil.which("ping") is None, reason="no ping (iputils-ping)"),
]

MN_HOA = "10.10.0.100"
MN2_HOA = "10.10.0.101"
CN = "10.30.0.10"
CORE = {"ha": "10.0.0.1", "fa": "10.0.0.11", "fa2": "10.0.0.12", "cngw": "10.0.0.31"}
P = "sw"  # name prefix: Mininet interface names live in the root namespace briefly


@dataclass
class Lab:
    net: Any
    hosts: dict[str, Any]
    charons: dict[str, CharonProcess]
    gws: dict[str, StrongSwanGateway]


def _sh(host: Any, script: str) -> str:
    """Run a (multi-line) script in a host's shell; one line for Mininet's ``cmd``."""
    line = "; ".join(part.strip() for part in script.strip().splitlines() if part.strip())
    out: str = host.cmd(line)
    return out


def _build(run_dir: str) -> Lab:
    from mininet.net import Mininet
    net = Mininet(topo=None, controller=None, build=False, autoSetMacs=False)
    hosts = {}
    for role in ("mn", "fa", "fa2", "ha", "cngw", "cn"):
        private = ["/run"] if role in ("fa", "fa2", "ha", "cngw") else []
        hosts[role] = net.addHost(P + role, ip=None, privateDirs=private)
    h = hosts

    def link(a: str, ia: str, b: str, ib: str) -> None:
        net.addLink(h[a], h[b], intfName1=f"{P}{a}-{ia}", intfName2=f"{P}{b}-{ib}")

    link("mn", "e0", "fa", "in")
    link("mn", "e1", "fa2", "in")
    link("fa", "core", "ha", "fa")
    link("fa2", "core", "ha", "fa2")
    link("cngw", "core", "ha", "cngw")
    link("cngw", "in", "cn", "e0")
    net.build()

    # mn: home address /32 on both access links; only the FA link is up
    _sh(h["mn"], f"""
        ip addr add {MN_HOA}/32 dev {P}mn-e0; ip addr add {MN2_HOA}/32 dev {P}mn-e0
        ip addr add {MN_HOA}/32 dev {P}mn-e1; ip addr add {MN2_HOA}/32 dev {P}mn-e1
        ip link set {P}mn-e1 down
        ip route replace default via 10.21.0.1 dev {P}mn-e0 onlink""")
    # FAs: inside subnet + core address; the visitor gets a /32 on-link host route
    _sh(h["fa"], f"""
        ip addr add 10.21.0.1/24 dev {P}fa-in; ip addr add {CORE['fa']}/24 dev {P}fa-core
        ip route add {MN_HOA}/32 dev {P}fa-in; ip route add {MN2_HOA}/32 dev {P}fa-in""")
    _sh(h["fa2"], f"""
        ip addr add 10.22.0.1/24 dev {P}fa2-in
        ip addr add {CORE['fa2']}/24 dev {P}fa2-core""")
    # HA: core bridge br0 over its three core links; home network on a local veth pair
    _sh(h["ha"], f"""
        ip link add br0 type bridge; ip link set br0 up
        for i in {P}ha-fa {P}ha-fa2 {P}ha-cngw; do ip link set $i master br0; done
        ip addr add {CORE['ha']}/24 dev br0
        ip link add home0 type veth peer name home0p
        ip link set home0 up; ip link set home0p up; ip addr add 10.10.0.1/24 dev home0""")
    _sh(h["cngw"], f"""
        ip addr add {CORE['cngw']}/24 dev {P}cngw-core
        ip addr add 10.30.0.1/24 dev {P}cngw-in""")
    _sh(h["cn"], f"""
        ip addr add {CN}/24 dev {P}cn-e0; ip route add default via 10.30.0.1""")

    charons: dict[str, CharonProcess] = {}
    gws: dict[str, StrongSwanGateway] = {}
    lab = Lab(net, hosts, charons, gws)
    for role in ("fa", "fa2", "ha", "cngw"):
        charons[role] = CharonProcess(h[role], run_dir, name=role)
        charons[role].start()
        # netns found through the file CharonProcess writes next to the socket
        gws[role] = StrongSwanGateway(role, charons[role].vici_socket)
    return lab


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    run_dir = tempfile.mkdtemp(prefix="mvss-", dir="/tmp")
    lab: Lab | None = None
    net = None
    try:
        from mininet.net import Mininet  # noqa: F401 - fail early if not importable
        lab = _build(run_dir)
        net = lab.net
        yield lab
    finally:
        if lab is not None:
            for gw in lab.gws.values():
                gw.close()
            for charon in lab.charons.values():
                charon.stop()
            net = lab.net
        if net is not None:
            net.stop()
        if os.environ.get("MIPVPN_KEEP_LOGS"):
            print("charon logs kept in", run_dir)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


# --------------------------------------------------------------------------- helpers

def spec(owner: str, a: tuple[str, tuple[str, ...]], b: tuple[str, ...] | Any,
         initiator: str, psk: bytes | None = None) -> TunnelSpec:
    (ga, sa), (gb, sb) = a, b
    return TunnelSpec(tunnel_name(owner, ga, gb),
                      TunnelEnd(ga, CORE[ga], sa), TunnelEnd(gb, CORE[gb], sb),
                      psk=psk or new_psk(), initiator=initiator)


def static_tunnel() -> TunnelSpec:
    """HA <-> CN-GW: home network <-> CN's network; the CN-GW initiates."""
    return spec("static", ("ha", ("10.10.0.0/24",)), ("cngw", ("10.30.0.0/24",)), "cngw")


def mn_tunnel(fa: str, hoa: str = MN_HOA, owner: str = "mn1") -> TunnelSpec:
    """FA <-> HA for one MN: its home address <-> the CN's network; the FA initiates."""
    return spec(owner, (fa, (f"{hoa}/32",)), ("ha", ("10.30.0.0/24",)), fa)


def up(lab: Lab, t: TunnelSpec, timeout: float = 5.0) -> float:
    """Responder first (loads), then initiator (initiates, blocks). Returns seconds."""
    t0 = time.monotonic()
    for gw in sorted(t.ends(), key=lambda g: g == t.initiator):
        lab.gws[gw].add_tunnel(t.side_for(gw), timeout=timeout)
    return time.monotonic() - t0


def down(lab: Lab, t: TunnelSpec) -> None:
    for gw in t.ends():
        lab.gws[gw].remove_tunnel(t.tunnel_id)


def ping(src: Any, dst: str, count: int = 1, wait: float = 1.0,
         source: str | None = None, interval: float = 0.01) -> tuple[bool, str]:
    opt = f"-I {source} " if source else ""
    out = _sh(src, f"ping -n -q {opt}-c {count} -i {interval} -W {wait} {dst}; echo rc=$?")
    assert "rc=127" not in out, out
    return out.strip().endswith("rc=0"), out


def rtt_avg_ms(out: str) -> float:
    m = re.search(r"= [\d.]+/([\d.]+)/", out)
    assert m, out
    return float(m.group(1))


def counters(lab: Lab, gw: str, tid: str) -> tuple[int, int]:
    st = lab.gws[gw].tunnel(tid)
    assert st is not None and st.established, f"{gw}: {tid} not established: {st}"
    return st.packets_in, st.packets_out


def report(msg: str) -> None:
    print(f"\n[strongswan] {msg}")


# --------------------------------------------------------------------------- tests

def test_detection_and_plugins() -> None:
    kernel_esp = detect_kernel_esp()
    plugins = charon_plugins(kernel_esp).split()
    if not kernel_esp:
        assert plugins.index("kernel-libipsec") < plugins.index("kernel-netlink")
    else:
        assert "kernel-libipsec" not in plugins
    assert plugins[-1] == "vici"


def test_charons_answer(lab: Lab) -> None:
    for name, gw in lab.gws.items():
        assert gw.version()["daemon"] == "charon"
        assert gw.tunnels() == [] and gw.connections() == []
        assert lab.charons[name].pid is not None


def test_no_tunnels_no_path(lab: Lab) -> None:
    ok, out = ping(lab.hosts["mn"], CN, wait=0.3)
    assert not ok, out
    ok, out = ping(lab.hosts["cn"], MN_HOA, wait=0.3)
    assert not ok, out


def test_wrong_psk_fails_fast_without_leaking(lab: Lab) -> None:
    t = mn_tunnel("fa")
    bad = TunnelSpec(t.tunnel_id, t.a, t.b, psk=b"x" * 32, initiator=t.initiator)
    lab.gws["ha"].add_tunnel(t.side_for("ha"))
    t0 = time.monotonic()
    try:
        with pytest.raises(TunnelError) as err:
            lab.gws["fa"].add_tunnel(bad.side_for("fa"), timeout=3.0)
        assert time.monotonic() - t0 < 3.5
        assert t.psk.hex() not in str(err.value) and "xxxx" not in str(err.value)
    finally:
        down(lab, t)
    assert lab.gws["fa"].connections() == [] and lab.gws["ha"].tunnels() == []


def test_ha_anchored_path_two_tunnels(lab: Lab) -> None:
    h = lab.hosts
    static, fa_ha = static_tunnel(), mn_tunnel("fa")
    try:
        t_static = up(lab, static)
        t_fa = up(lab, fa_ha)
        report(f"add_tunnel static {t_static*1e3:.1f} ms, fa-ha {t_fa*1e3:.1f} ms")
        assert sorted(lab.gws["ha"].connections()) == sorted([static.tunnel_id,
                                                              fa_ha.tunnel_id])
        before = {(gw, tid): counters(lab, gw, tid) for gw, tid in
                  (("ha", static.tunnel_id), ("ha", fa_ha.tunnel_id),
                   ("cngw", static.tunnel_id), ("fa", fa_ha.tunnel_id))}
        ok, out = ping(h["mn"], CN, count=20)
        assert ok, out
        report(f"ping mn -> cn through fa-ha + ha-cngw: avg RTT {rtt_avg_ms(out):.3f} ms")
        ok, out = ping(h["cn"], MN_HOA, count=20)
        assert ok, out
        after = {key: counters(lab, *key) for key in before}
        # 40 echo requests + 40 replies crossed each tunnel in each direction
        for key in before:
            d_in = after[key][0] - before[key][0]
            d_out = after[key][1] - before[key][1]
            assert d_in >= 40 and d_out >= 40, (key, before[key], after[key])
        # the HA decrypted from the FA and re-encrypted to the CN-GW (and back)
        ha_static = lab.gws["ha"].tunnel(static.tunnel_id)
        assert ha_static is not None and ha_static.remote_address == CORE["cngw"]

        down(lab, fa_ha)
        assert lab.gws["fa"].tunnel(fa_ha.tunnel_id) is None
        assert fa_ha.tunnel_id not in lab.gws["ha"].connections()
        ok, out = ping(h["mn"], CN, wait=0.3)
        assert not ok, out
        ok, out = ping(h["cn"], MN_HOA, wait=0.3)
        assert not ok, out
    finally:
        down(lab, fa_ha)
        down(lab, static)


def _move_mn(mn: Any, to_fa2: bool) -> None:
    old, new, gw = ("e0", "e1", "10.22.0.1") if to_fa2 else ("e1", "e0", "10.21.0.1")
    _sh(mn, f"ip link set {P}mn-{old} down; ip link set {P}mn-{new} up; "
            f"ip route replace default via {gw} dev {P}mn-{new} onlink")


def _mn_at(h: dict[str, Any], fa2: bool) -> None:
    """The MN's link and default route at FA2 (or FA1), and the FA's on-link route to
    its home address there instead of at the other FA."""
    here, there = ("fa2", "fa") if fa2 else ("fa", "fa2")
    _sh(h[there], f"ip route del {MN_HOA}/32 2>/dev/null")
    _move_mn(h["mn"], to_fa2=fa2)
    _sh(h[here], f"ip route replace {MN_HOA}/32 dev {P}{here}-in")


def _first_reply_after(t0_wall: float, proc: subprocess.Popen[bytes]) -> float:
    """Seconds from ``t0_wall`` to the first echo reply ping printed (``-D`` stamps)."""
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)       # ping flushes and exits
    out, _ = proc.communicate(timeout=10)
    for line in out.decode().splitlines():
        m = re.match(r"\[(\d+\.\d+)\] \d+ bytes from", line)
        if m:
            return float(m.group(1)) - t0_wall
    raise AssertionError("no reply:\n" + out.decode()[-2000:])


def test_repoint_to_second_fa(lab: Lab) -> None:
    h = lab.hosts
    static, fa1_ha, fa2_ha = static_tunnel(), mn_tunnel("fa"), mn_tunnel("fa2")
    results = []
    try:
        up(lab, static)
        up(lab, fa1_ha)
        assert ping(h["mn"], CN)[0]
        for round_ in range(5):
            old_t, new_t = (fa1_ha, fa2_ha) if round_ % 2 == 0 else (fa2_ha, fa1_ha)
            new_fa = new_t.a.gateway
            old_fa = old_t.a.gateway
            # the move: the old tunnel goes, the MN's link changes, the new FA learns it
            down(lab, old_t)
            _sh(h[old_fa], f"ip route del {MN_HOA}/32 2>/dev/null")
            _move_mn(h["mn"], to_fa2=(new_fa == "fa2"))
            _sh(h[new_fa], f"ip route replace {MN_HOA}/32 dev {P}{new_fa}-in")
            assert not ping(h["mn"], CN, wait=0.2)[0]
            # ping until the first reply, 2 ms apart, timestamps on; then re-point
            proc = h["mn"].popen(["ping", "-D", "-n", "-i", "0.002", CN],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                time.sleep(0.05)
                t0_wall = time.time()
                took = up(lab, new_t)
                gap = _first_reply_after(t0_wall, proc)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            results.append((took, gap))
            assert ping(h["cn"], MN_HOA, count=3)[0]
            st = lab.gws["ha"].tunnel(new_t.tunnel_id)
            assert st is not None and st.established and st.remote_address == CORE[new_fa]
        adds = sorted(r[0] * 1e3 for r in results)
        gaps = sorted(r[1] * 1e3 for r in results)
        report(f"re-point add_tunnel (ha load + fa initiate) ms: "
               f"{', '.join(f'{x:.1f}' for x in adds)}")
        report(f"re-point add_tunnel call -> first ping reply ms: "
               f"{', '.join(f'{x:.1f}' for x in gaps)}")
        assert gaps[len(gaps) // 2] < 500
    finally:
        for t in (fa1_ha, fa2_ha, static):
            down(lab, t)
        _mn_at(h, fa2=False)


def test_two_tunnels_same_gateway_pair(lab: Lab) -> None:
    h = lab.hosts
    static = static_tunnel()
    t1 = mn_tunnel("fa", MN_HOA, owner="mn1")
    t2 = mn_tunnel("fa", MN2_HOA, owner="mn2")
    try:
        up(lab, static)
        up(lab, t1)
        up(lab, t2)
        states = {s.tunnel_id: s for s in lab.gws["fa"].tunnels()}
        assert set(states) == {t1.tunnel_id, t2.tunnel_id}
        assert all(s.established for s in states.values())
        before = {t.tunnel_id: counters(lab, "ha", t.tunnel_id) for t in (t1, t2)}
        assert ping(h["mn"], CN, count=10, source=MN_HOA)[0]
        assert ping(h["mn"], CN, count=10, source=MN2_HOA)[0]
        after = {t.tunnel_id: counters(lab, "ha", t.tunnel_id) for t in (t1, t2)}
        for tid in before:  # each MN's traffic used its own tunnel
            assert after[tid][0] - before[tid][0] >= 10, (tid, before, after)
            assert after[tid][1] - before[tid][1] >= 10, (tid, before, after)
        # idempotent re-add replaces the tunnel (still exactly one IKE_SA, still works)
        up(lab, t1)
        assert [s.tunnel_id for s in lab.gws["fa"].tunnels()].count(t1.tunnel_id) == 1
        assert ping(h["mn"], CN, count=3, source=MN_HOA)[0]
        # removing one leaves the other working
        down(lab, t1)
        assert not ping(h["mn"], CN, source=MN_HOA, wait=0.3)[0]
        assert ping(h["mn"], CN, count=3, source=MN2_HOA)[0]
        assert ping(h["cn"], MN2_HOA, count=3)[0]
        down(lab, t1)  # idempotent
    finally:
        for t in (t1, t2, static):
            down(lab, t)
    for gw in lab.gws.values():
        assert gw.tunnels() == [] and gw.connections() == []


def forwarding_tunnel(old: str, new: str, hoa: str = MN_HOA) -> TunnelSpec:
    """Smooth handoff old FA -> new FA: the CN's network <-> the home address, the new FA
    initiates; at the new FA its selectors equal those of its tunnel to the HA."""
    return spec("mn1", (old, ("10.30.0.0/24",)), (new, (f"{hoa}/32",)), new)


def up_secondary(lab: Lab, t: TunnelSpec, secondary_at: str, secondary: bool = True) -> None:
    for gw in sorted(t.ends(), key=lambda g: g == t.initiator):
        side = t.side_for(gw)
        if gw == secondary_at:
            side = replace(side, secondary=secondary)
        lab.gws[gw].add_tunnel(side)


def child_ids(lab: Lab, gw: str, tid: str) -> set[str]:
    st = lab.gws[gw].tunnel(tid)
    return {c.unique_id for c in st.children if c.state == "INSTALLED"} if st else set()


def test_secondary_tunnel_never_carries_the_primarys_traffic(lab: Lab) -> None:
    """The new FA's end of the forwarding tunnel (claims 22-23) only receives: the MN's
    uplink stays in the FA's tunnel to the HA, what the old FA forwards is accepted, and
    removing the forwarding tunnel leaves the tunnel to the HA (policy, route) intact."""
    h = lab.hosts
    static, fa_ha, fwd = static_tunnel(), mn_tunnel("fa"), forwarding_tunnel("fa2", "fa")
    libipsec = lab.gws["fa"].uses_libipsec()
    assert libipsec == (not detect_kernel_esp())      # VICI stats: the loaded plugins
    try:
        up(lab, static)
        up(lab, fa_ha)
        assert ping(h["mn"], CN, count=3)[0]
        if libipsec:
            # why: as an ordinary tunnel, the newest of two with equal selectors takes
            # the outbound traffic under kernel-libipsec -- the MN's uplink is lost
            up_secondary(lab, fwd, "fa", secondary=False)
            out0 = counters(lab, "fa", fwd.tunnel_id)[1]
            assert not ping(h["mn"], CN, count=5, wait=0.3)[0]
            assert counters(lab, "fa", fwd.tunnel_id)[1] - out0 >= 5
            down(lab, fwd)
            assert ping(h["mn"], CN, count=3)[0]
        primary_before = child_ids(lab, "fa", fa_ha.tunnel_id)
        up_secondary(lab, fwd, "fa")
        if libipsec:   # the primary was rekeyed after the secondary came up
            assert child_ids(lab, "fa", fa_ha.tunnel_id) - primary_before
        before = {t.tunnel_id: counters(lab, "fa", t.tunnel_id) for t in (fa_ha, fwd)}
        ok, out = ping(h["mn"], CN, count=20)
        assert ok, out
        # what the old FA forwards (source in the CN's network, the old FA's anchor
        # 10.30.0.0) is accepted and delivered: the MN answers, through the primary
        _sh(h["fa2"], f"ping -n -q -c 10 -i 0.01 -W 0.3 -I 10.30.0.0 {MN_HOA}")
        after = {t.tunnel_id: counters(lab, "fa", t.tunnel_id) for t in (fa_ha, fwd)}
        d_fwd = [a - b for a, b in zip(after[fwd.tunnel_id], before[fwd.tunnel_id])]
        d_ha = [a - b for a, b in zip(after[fa_ha.tunnel_id], before[fa_ha.tunnel_id])]
        assert d_fwd[1] == 0, (before, after)           # nothing left through it
        assert d_fwd[0] >= 10, (before, after)          # forwarded packets came in
        assert d_ha[1] >= 30 and d_ha[0] >= 20, (before, after)   # uplink + answers
        report(f"secondary: fa-ha out +{d_ha[1]}, forwarding in +{d_fwd[0]} out +{d_fwd[1]}")
        # the forwarding tunnel ends (lifetime): the primary's route and policy stay
        route = "10.30.0.0/24 dev ipsec0"
        assert route in _sh(h["fa"], "ip route show table 220")
        down(lab, fwd)
        assert route in _sh(h["fa"], "ip route show table 220")
        ok, out = ping(h["mn"], CN, count=10)
        assert ok, out
        assert ping(h["cn"], MN_HOA, count=3)[0]
    finally:
        for t in (fwd, fa_ha, static):
            down(lab, t)
    for gw in lab.gws.values():
        assert gw.tunnels() == [] and gw.connections() == []


def test_secondary_over_two_primaries(lab: Lab) -> None:
    """Route optimisation + smooth handoff: the new FA has a tunnel to the HA (home
    address <-> CN 1) and one to a CN-GW (<-> CN 2, here 10.31.0.0/24); the forwarding
    tunnel's selectors (<-> both) equal neither.  It becomes one CHILD_SA per primary,
    each sharing its primary's reqid; the uplink stays in the primaries."""
    h = lab.hosts
    static, fa_ha = static_tunnel(), mn_tunnel("fa")
    ro = spec("mn1", ("fa", (f"{MN_HOA}/32",)), ("cngw", ("10.31.0.0/24",)), "fa")
    fwd = spec("mn1", ("fa2", ("10.30.0.0/24", "10.31.0.0/24")), ("fa", (f"{MN_HOA}/32",)),
               "fa")
    libipsec = lab.gws["fa"].uses_libipsec()
    try:
        for t in (static, fa_ha, ro):
            up(lab, t)
        assert ping(h["mn"], CN, count=3)[0]
        up_secondary(lab, fwd, "fa")
        children = [c for st in lab.gws["fa"].tunnels() if st.tunnel_id == fwd.tunnel_id
                    for c in st.children if c.state == "INSTALLED"]
        remotes = sorted(c.remote_ts for c in children)
        if libipsec:
            assert remotes == [("10.30.0.0/24",), ("10.31.0.0/24",)], remotes
        time.sleep(1.5)      # the rekeyed primaries' old CHILD_SAs are gone (1 s)
        before = counters(lab, "fa", fa_ha.tunnel_id)
        ok, out = ping(h["mn"], CN, count=10)
        assert ok, out
        assert counters(lab, "fa", fa_ha.tunnel_id)[1] - before[1] >= 10
        out_fwd = sum(c.packets_out for st in lab.gws["fa"].tunnels()
                      if st.tunnel_id == fwd.tunnel_id for c in st.children)
        assert out_fwd == 0
        # forwarded packets of both prefixes come in (old FA's anchors 10.30.0.0, 10.31.0.0)
        for src in ("10.30.0.0", "10.31.0.0"):
            _sh(h["fa2"], f"ping -n -q -c 5 -i 0.01 -W 0.3 -I {src} {MN_HOA}")
        in_fwd = sum(c.packets_in for st in lab.gws["fa"].tunnels()
                     if st.tunnel_id == fwd.tunnel_id for c in st.children)
        assert in_fwd >= 10
        down(lab, fwd)
        assert ping(h["mn"], CN, count=5)[0]
    finally:
        for t in (fwd, ro, fa_ha, static):
            down(lab, t)
    for gw in lab.gws.values():
        assert gw.tunnels() == [] and gw.connections() == []


def test_prepared_ike_sa_then_only_create_child_sa(lab: Lab) -> None:
    """Issue 14: FA2's IKE_SA to the HA stands ahead without a CHILD_SA (it steers
    nothing: the MN's traffic keeps going through FA1's tunnel); at the move
    add_tunnel(keep_sa=True) at both ends brings the CHILD_SA up on that IKE_SA.
    Measured against bringing the same tunnel up from nothing, alternately."""
    h = lab.hosts
    static, fa1_ha, fa2_ha = static_tunnel(), mn_tunnel("fa"), mn_tunnel("fa2")
    fresh: list[float] = []
    prepared: list[float] = []
    try:
        up(lab, static)
        up(lab, fa1_ha)
        for round_ in range(6):
            side_ha, side_fa2 = fa2_ha.side_for("ha"), fa2_ha.side_for("fa2")
            if round_ % 2:
                t0 = time.monotonic()
                up(lab, fa2_ha)
                fresh.append(time.monotonic() - t0)
            else:
                lab.gws["ha"].prepare_tunnel(side_ha)
                lab.gws["fa2"].prepare_tunnel(side_fa2)
                st = lab.gws["fa2"].tunnel(fa2_ha.tunnel_id)
                assert st is not None and st.state == "ESTABLISHED" and st.children == ()
                ike_id = st.unique_id
                assert ike_id
                # the standing IKE_SA takes nothing: FA1's tunnel still carries the MN
                assert ping(h["mn"], CN)[0]
                assert lab.gws["ha"].tunnel(fa1_ha.tunnel_id) is not None
                t0 = time.monotonic()
                lab.gws["ha"].add_tunnel(side_ha, keep_sa=True)
                lab.gws["fa2"].add_tunnel(side_fa2, keep_sa=True)
                prepared.append(time.monotonic() - t0)
                st = lab.gws["fa2"].tunnel(fa2_ha.tunnel_id)
                assert st is not None and st.children, st
                assert st.unique_id == ike_id      # the same IKE_SA, not a new one
                assert len([t for t in lab.gws["fa2"].tunnels()
                            if t.tunnel_id == fa2_ha.tunnel_id]) == 1
            down(lab, fa2_ha)
        report("FA2 tunnel up from nothing (ha load + fa2 IKE_SA_INIT, IKE_AUTH) ms: "
               + ", ".join(f"{x * 1e3:.1f}" for x in fresh))
        report("FA2 tunnel up on a prepared IKE_SA (ha load + fa2 CREATE_CHILD_SA) ms: "
               + ", ".join(f"{x * 1e3:.1f}" for x in prepared))
        assert sorted(prepared)[1] < sorted(fresh)[1] * 1.5   # not slower (medians of 3)
    finally:
        for t in (fa2_ha, fa1_ha, static):
            down(lab, t)


def test_a_move_back_keeps_the_live_ike_sa_without_leaking_child_sas(lab: Lab) -> None:
    """Issue 14: a move back while the tunnel is still live at both ends (smooth
    handoff's retire cancelled) re-adds it with a new PSK and keep_sa at both ends: the
    same IKE_SA carries a new CHILD_SA, the older one is deleted (one CHILD_SA per
    tunnel however many moves back and forth), traffic passes."""
    h = lab.hosts
    static, fa_ha = static_tunnel(), mn_tunnel("fa")
    try:
        up(lab, static)
        up(lab, fa_ha)
        ike_id = lab.gws["fa"].tunnel(fa_ha.tunnel_id).unique_id   # type: ignore[union-attr]
        for _ in range(6):
            again = replace(fa_ha, psk=new_psk())     # a move's key (tunnel_psk)
            for gw in sorted(again.ends(), key=lambda g: g == again.initiator):
                lab.gws[gw].add_prepared(again.side_for(gw))
            assert ping(h["mn"], CN)[0]
        deadline = time.monotonic() + 3.0
        while True:
            states = {gw: lab.gws[gw].tunnel(fa_ha.tunnel_id) for gw in fa_ha.ends()}
            children = {gw: len([c for c in st.children if c.state == "INSTALLED"])
                        for gw, st in states.items() if st is not None}
            if children == {"fa": 1, "ha": 1} or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert children == {"fa": 1, "ha": 1}, states
        assert all(len(st.children) == 1 for st in states.values() if st), states
        assert states["fa"] is not None and states["fa"].unique_id == ike_id
        assert ping(h["mn"], CN, count=5)[0]
    finally:
        for t in (fa_ha, static):
            down(lab, t)


def _fresh_ike_sa_from(lab: Lab, gw: str, tid: str) -> None:
    """Terminate ``tid``'s IKE_SA at ``gw`` and initiate a new one (IKE only: no CHILD_SA,
    whose route would need the selector anchor's local route back) with what charon
    holds there now (no load): it authenticates only if both ends hold the same key."""
    drv = lab.gws[gw]
    drv._call(drv._terminate, tid)
    drv._call(lambda s: list(s.initiate({"ike": tid, "timeout": 5000,
                                         "init-limits": "no"})))


def test_a_connection_loaded_ahead_comes_up_with_the_moves_key_held_at_both_ends(
        lab: Lab) -> None:
    """Issue 14: a prepared tunnel's move loads no connection again (the responder only
    the move's key, the initiator its CHILD_SA's initiate and the key after it).  The
    CHILD_SA comes up on the prepared IKE_SA, and both ends hold the move's key: a new
    IKE_SA, initiated with what charon holds, authenticates.  A prepared IKE_SA that
    is gone by the move is started afresh."""
    static, fa1_ha, fa2_ha = static_tunnel(), mn_tunnel("fa"), mn_tunnel("fa2")
    tid = fa2_ha.tunnel_id
    try:
        up(lab, static)
        up(lab, fa1_ha)
        for gone in (False, True):
            for gw in sorted(fa2_ha.ends(), key=lambda g: g == fa2_ha.initiator):
                lab.gws[gw].prepare_tunnel(fa2_ha.side_for(gw))
            st = lab.gws["fa2"].tunnel(tid)
            assert st is not None and st.state == "ESTABLISHED" and st.children == ()
            ike_id = st.unique_id
            if gone:   # e.g. a DPD took it meanwhile
                lab.gws["fa2"]._call(lab.gws["fa2"]._terminate, tid)
            move = replace(fa2_ha, psk=new_psk())
            lab.gws["ha"].add_prepared(move.side_for("ha"))
            lab.gws["fa2"].add_prepared(move.side_for("fa2"))
            st = lab.gws["fa2"].tunnel(tid)
            assert st is not None and st.established and st.children, st
            assert (st.unique_id == ike_id) is not gone
            _fresh_ike_sa_from(lab, "fa2", tid)   # the move's key at both ends
            st = lab.gws["fa2"].tunnel(tid)
            assert st is not None and st.state == "ESTABLISHED" and st.unique_id != ike_id, st
            down(lab, fa2_ha)
    finally:
        for t in (fa2_ha, fa1_ha, static):
            down(lab, t)


def test_make_before_break_at_the_ha_keeps_the_new_path(lab: Lab) -> None:
    """Issue 14: the HA loads its end of the new FA's tunnel while the old FA's (same
    selectors at the HA) is still up, the new FA brings it up, then the old one is
    removed at both ends: the new path carries the MN's traffic both ways, and the
    HA's selector anchor survives the removal (refcounted)."""
    h = lab.hosts
    static, fa1_ha, fa2_ha = static_tunnel(), mn_tunnel("fa"), mn_tunnel("fa2")
    try:
        up(lab, static)
        up(lab, fa1_ha)
        assert ping(h["mn"], CN)[0]
        _sh(h["fa"], f"ip route del {MN_HOA}/32 2>/dev/null")
        _move_mn(h["mn"], to_fa2=True)
        _sh(h["fa2"], f"ip route replace {MN_HOA}/32 dev {P}fa2-in")
        up(lab, fa2_ha)                   # make (the old one still up) ...
        assert lab.gws["ha"].tunnel(fa1_ha.tunnel_id) is not None
        down(lab, fa1_ha)                 # ... then break
        assert ping(h["mn"], CN, count=3)[0]
        assert ping(h["cn"], MN_HOA, count=3)[0]
        st = lab.gws["ha"].tunnel(fa2_ha.tunnel_id)
        assert st is not None and st.established and st.remote_address == CORE["fa2"]
    finally:
        for t in (fa1_ha, fa2_ha, static):
            down(lab, t)
        _mn_at(h, fa2=False)


def _downlink_child(lab: Lab, tid: str) -> str | None:
    """The unique id of ``tid``'s installed CHILD_SA at the HA (None: none)."""
    st = lab.gws["ha"].tunnel(tid)
    ids = [c.unique_id for c in st.children if c.state == "INSTALLED"] if st else []
    return ids[-1] if ids else None


def promote(lab: Lab, t: TunnelSpec) -> float:
    """The move onto a standing CHILD_SA, as ``Gateways.add_tunnel`` runs it: both ends
    load the move's key (``promote_tunnel``), then the HA rekeys the CHILD_SA (a rekey's
    responder would install its outbound SA only at the old SA's DELETE).  Seconds."""
    t0 = time.monotonic()
    for gw in sorted(t.ends(), key=lambda g: g == t.initiator):
        lab.gws[gw].promote_tunnel(t.side_for(gw))
    lab.gws["ha"].promote_tunnel(t.side_for("ha"), rekey=True)
    return time.monotonic() - t0


def _gap_after(lab: Lab, switch: Any) -> tuple[float, float]:
    """MN (at FA2) pings the CN every 2 ms; ``switch()`` runs; returns (seconds the
    switch call took, seconds from its start to the first echo reply)."""
    h = lab.hosts
    proc = h["mn"].popen(["ping", "-D", "-n", "-i", "0.002", CN],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.05)
        t0_wall = time.time()
        took = switch()
        gap = _first_reply_after(t0_wall, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return took, gap


def _lost(proc: subprocess.Popen[bytes]) -> int:
    """Stop a running ``ping`` and count the sequence numbers it got no reply for
    (before its last reply)."""
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    seqs = [int(m) for m in re.findall(r"icmp_seq=(\d+)", out.decode())]
    assert seqs, out.decode()[-2000:]
    return max(seqs) - len(set(seqs))


def test_a_standing_child_sa_at_the_neighbour_only_promoted_at_the_move(lab: Lab) -> None:
    """Issue 14 spike: FA2's tunnel to the HA stands *with* its CHILD_SA before the
    move, secondary at the HA (the primary, FA1's, rekeyed after it: its SA is the
    newest of the shared reqid again).  (a) The HA's downlink stays with FA1; (b) the
    MN's uplink through FA2 passes at once (FA2's SA, the shared reqid's inbound
    policy at the HA); (c) at the move one rekey of FA2's CHILD_SA at the HA switches
    the downlink.  Alternately against today's move (a prepared IKE_SA, the CHILD_SA
    created at the move), both timed from the switch call to the MN's first reply."""
    h = lab.hosts
    libipsec = lab.gws["ha"].uses_libipsec()
    if not libipsec:
        pytest.skip("kernel XFRM: the secondary's priority steers, no rekey needed")
    static, fa1_ha, fa2_ha = static_tunnel(), mn_tunnel("fa"), mn_tunnel("fa2")
    tid1, tid2 = fa1_ha.tunnel_id, fa2_ha.tunnel_id
    rows: dict[str, list[tuple[float, float]]] = {"standing": [], "prepared": []}
    stand_ms: list[float] = []
    stolen: list[int] = []
    try:
        up(lab, static)
        for round_ in range(12):
            way = "standing" if round_ % 2 == 0 else "prepared"
            up(lab, fa1_ha)
            assert ping(h["mn"], CN)[0]
            side_ha, side_fa2 = fa2_ha.side_for("ha"), fa2_ha.side_for("fa2")
            if way == "standing":
                # the CN pings the MN (at FA1) every 2 ms while FA2's CHILD_SA stands up
                proc = h["cn"].popen(["ping", "-n", "-i", "0.002", MN_HOA],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                time.sleep(0.1)
                t0 = time.monotonic()
                first = _downlink_child(lab, tid1)
                lab.gws["ha"].prepare_tunnel(side_ha, child=True)
                lab.gws["fa2"].prepare_tunnel(side_fa2, child=True)
                # the HA (responder) reasserts FA1's CHILD_SA from a thread: wait until
                # FA1's rekeyed CHILD_SA is installed
                deadline = time.monotonic() + 2.0
                while time.monotonic() < deadline:
                    st = lab.gws["ha"].tunnel(tid1)
                    if st and any(c.state == "INSTALLED" and c.unique_id != first
                                  for c in st.children):
                        break
                    time.sleep(0.0005)
                stand_ms.append((time.monotonic() - t0) * 1e3)
                time.sleep(0.1)
                stolen.append(_lost(proc))
                # (a) the downlink still goes to FA1: CN -> MN (at FA1) answered
                out2 = counters(lab, "ha", tid2)[1]
                ok, out = ping(h["cn"], MN_HOA, count=10)
                assert ok, out
                assert counters(lab, "ha", tid2)[1] == out2, "FA2's SA took the downlink"
            else:
                lab.gws["ha"].prepare_tunnel(side_ha)
                lab.gws["fa2"].prepare_tunnel(side_fa2)
            # the MN moves to FA2
            _sh(h["fa"], f"ip route del {MN_HOA}/32 2>/dev/null")
            _move_mn(h["mn"], to_fa2=True)
            _sh(h["fa2"], f"ip route replace {MN_HOA}/32 dev {P}fa2-in")
            if way == "standing":
                # (b) the uplink through FA2 passes before the switch (the replies
                # still go to FA1, so the ping itself fails)
                in2 = counters(lab, "ha", tid2)[0]
                out1 = counters(lab, "ha", tid1)[1]
                ping(h["mn"], CN, count=5, wait=0.2)
                assert counters(lab, "ha", tid2)[0] - in2 >= 5
                assert counters(lab, "ha", tid1)[1] - out1 >= 5
                moved = replace(fa2_ha, psk=new_psk())     # the move's key
                took, gap = _gap_after(lab, lambda: promote(lab, moved))
            else:
                def create() -> float:
                    t0 = time.monotonic()
                    lab.gws["ha"].add_prepared(side_ha)
                    lab.gws["fa2"].add_prepared(side_fa2)
                    return time.monotonic() - t0
                took, gap = _gap_after(lab, create)
            rows[way].append((took, gap))
            assert ping(h["cn"], MN_HOA, count=3)[0]
            out1 = counters(lab, "ha", tid1)[1]
            assert ping(h["mn"], CN, count=5)[0]
            assert counters(lab, "ha", tid1)[1] == out1     # nothing left for FA1
            down(lab, fa1_ha)
            down(lab, fa2_ha)
            _mn_at(h, fa2=False)
        for way, vals in rows.items():
            report(f"{way}: switch call ms: "
                   + ", ".join(f"{t * 1e3:.1f}" for t, _ in vals)
                   + "; switch call -> first reply ms: "
                   + ", ".join(f"{g * 1e3:.1f}" for _, g in vals)
                   + "; its return -> first reply ms: "
                   + ", ".join(f"{(g - t) * 1e3:.1f}" for t, g in vals))
        report("standing CHILD_SA set up (secondary + FA1 reasserted) ms: "
               + ", ".join(f"{x:.1f}" for x in stand_ms)
               + "; CN -> MN echoes lost meanwhile (2 ms apart): "
               + ", ".join(str(n) for n in stolen))
        med = {w: sorted(g for _, g in v)[len(v) // 2] for w, v in rows.items()}
        assert med["standing"] < med["prepared"] * 1.5, med   # not slower (noisy host)
    finally:
        for t in (fa1_ha, fa2_ha, static):
            down(lab, t)
        _mn_at(h, fa2=False)


def test_a_move_back_within_the_retire_promotes_the_live_child_sa(lab: Lab) -> None:
    """Issue 14: the MN moves FA1 -> FA2 and back while FA1's tunnel is still live at
    both ends (smooth handoff's retire).  The move back promotes FA1's CHILD_SA as it
    stands (the move's key at both ends, no DELETE, no CREATE_CHILD_SA: the FA's
    CHILD_SA keeps its id): the MN's uplink passes through FA1 at once, and the HA's
    rekey takes the downlink back from FA2."""
    h = lab.hosts
    if not lab.gws["ha"].uses_libipsec():
        pytest.skip("kernel XFRM: the promotion's rekey is libipsec's switch")
    static, fa1_ha, fa2_ha = static_tunnel(), mn_tunnel("fa"), mn_tunnel("fa2")
    tid1, tid2 = fa1_ha.tunnel_id, fa2_ha.tunnel_id
    try:
        up(lab, static)
        for _ in range(3):
            up(lab, fa1_ha)
            assert ping(h["mn"], CN)[0]
            _mn_at(h, fa2=True)                            # to FA2
            up(lab, fa2_ha)                    # FA1's end stays (the retire)
            assert ping(h["cn"], MN_HOA, count=3)[0]       # the downlink via FA2
            child = lab.gws["fa"].tunnel(tid1).children[-1].unique_id  # type: ignore[union-attr]
            _mn_at(h, fa2=False)                           # back to FA1
            back = replace(fa1_ha, psk=new_psk())          # the move's key
            for gw in sorted(back.ends(), key=lambda g: g == back.initiator):
                lab.gws[gw].promote_tunnel(back.side_for(gw))
            st = lab.gws["fa"].tunnel(tid1)
            assert st is not None and [c.unique_id for c in st.children
                                       if c.state == "INSTALLED"] == [child], st
            # the uplink passes through FA1 before the HA's switch (the replies still
            # go to FA2, so the ping itself may fail)
            in1 = counters(lab, "ha", tid1)[0]
            ping(h["mn"], CN, count=5, wait=0.2)
            assert counters(lab, "ha", tid1)[0] - in1 >= 5
            lab.gws["ha"].promote_tunnel(back.side_for("ha"), rekey=True)
            out2 = counters(lab, "ha", tid2)[1]
            assert ping(h["cn"], MN_HOA, count=3)[0]       # the downlink back at FA1
            assert ping(h["mn"], CN, count=3)[0]
            assert counters(lab, "ha", tid2)[1] == out2, "FA2's SA kept the downlink"
            down(lab, fa2_ha)
            down(lab, fa1_ha)
    finally:
        for t in (fa1_ha, fa2_ha, static):
            down(lab, t)
        _mn_at(h, fa2=False)
