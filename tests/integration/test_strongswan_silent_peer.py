"""A move back on a live IKE_SA deletes the tunnel's CHILD_SA first
(``StrongSwanGateway._terminate_children``).  Here the HA drops every INFORMATIONAL
exchange from the FA (a peer that does not answer the DELETE: dead to it, or slow):
the CHILD_SA stays at the FA, and the initiate after it would wait behind the
unanswered DELETE (or meet charon's "existing duplicate").  The driver terminates the
IKE_SA, forced, after the 1 s VICI timeout, and the initiate sets up a new one: the
add succeeds, one CHILD_SA, traffic passes.  Mininet + two charons (the lab of
``test_strongswan.py``); the drop is a tc u32 filter out of the FA's core port (no
nftables here)."""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import replace

import pytest

from controller.core.vpn import new_psk
from tests.integration.test_strongswan import (  # noqa: F401  (``lab`` is a fixture)
    P, Lab, _sh, down, lab, mn_tunnel, ping, report, static_tunnel, up)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.path.exists("/usr/lib/ipsec/charon"), reason="no charon"),
    pytest.mark.skipif(shutil.which("tc") is None, reason="no tc"),
]

IKE_INFORMATIONAL = 37
CN = "10.30.0.10"


def _drop_informational(the_lab: Lab, on: bool) -> None:
    """Out of the FA's core port: IKE INFORMATIONAL (exchange type at byte 18 of the
    IKE header; UDP 500, or 4500 after its 4-byte non-ESP marker; a 20-byte IPv4
    header: u32 offsets from the IP header, 20 + 8 + 18 = 46, or 50) classified into an
    HTB class whose queue holds nothing (pfifo limit 0: dropped); everything else
    takes HTB's direct queue.  No tc action module needed (none loads here)."""
    dev = f"{P}fa-core"
    if not on:
        _sh(the_lab.hosts["fa"], f"tc qdisc del dev {dev} root 2>/dev/null; true")
        return
    match = "u32 match ip protocol 17 0xff match ip dport"
    out = _sh(the_lab.hosts["fa"], f"""
        tc qdisc add dev {dev} root handle 1: htb default 0
        tc class add dev {dev} parent 1: classid 1:3 htb rate 1mbit
        tc qdisc add dev {dev} parent 1:3 handle 30: pfifo limit 0
        tc filter add dev {dev} parent 1: protocol ip prio 1 {match} 500 0xffff match u8 {IKE_INFORMATIONAL} 0xff at 46 flowid 1:3
        tc filter add dev {dev} parent 1: protocol ip prio 2 {match} 4500 0xffff match u8 {IKE_INFORMATIONAL} 0xff at 50 flowid 1:3
        tc filter show dev {dev} | grep -c 'flowid 1:3' """)
    assert out.strip().endswith("2"), out


def _dropped(the_lab: Lab) -> int:
    out = _sh(the_lab.hosts["fa"], f"tc -s qdisc show dev {P}fa-core | grep -A1 'pfifo 30:'")
    m = re.search(r"dropped (\d+)", out)
    return int(m.group(1)) if m else -1


def test_a_move_back_with_a_peer_silent_to_the_delete_sets_up_a_new_ike_sa(
        lab: Lab) -> None:  # noqa: F811  (the fixture imported above)
    static, fa_ha = static_tunnel(), mn_tunnel("fa")
    tid = fa_ha.tunnel_id
    try:
        up(lab, static)
        up(lab, fa_ha)
        before = lab.gws["fa"].tunnel(tid)
        assert before is not None and before.established
        _drop_informational(lab, True)
        again = replace(fa_ha, psk=new_psk())
        t0 = time.monotonic()
        for gw in sorted(again.ends(), key=lambda g: g == again.initiator):
            lab.gws[gw].add_prepared(again.side_for(gw))
        took = time.monotonic() - t0
        dropped = _dropped(lab)
        report(f"add_prepared took {took * 1000:.0f} ms, INFORMATIONAL dropped {dropped}")
        after = lab.gws["fa"].tunnel(tid)
        assert after is not None and after.established
        assert after.unique_id != before.unique_id          # a new IKE_SA
        assert [c.state for c in after.children] == ["INSTALLED"], after
        ok, out = ping(lab.hosts["mn"], CN, count=5)
        report(f"move back, peer silent to the DELETE: up in {took * 1000:.0f} ms on a "
               f"new IKE_SA; ping {'ok' if ok else 'FAILED'}; INFORMATIONAL dropped {dropped}")
        assert dropped >= 1                                 # the DELETE did not pass
        assert ok, out
    finally:
        _drop_informational(lab, False)
        for t in (fa_ha, static):
            down(lab, t)
