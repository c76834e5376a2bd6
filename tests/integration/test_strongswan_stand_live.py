"""Issue 14 (2026-12-08), real charons: the tunnel an MN left is kept standing on its
live CHILD_SA (``StrongSwanGateway.stand_live`` at both ends) for the HA's preparation
of that same tunnel, instead of being removed and stood up anew.  Nothing is created
or deleted: the IKE_SA and CHILD_SA ids stay; the HA's downlink stays with the FA the
MN moved to (the kept SA is not the newest of the shared reqid); the move back
promotes it like any standing CHILD_SA (the move's key, then the HA's rekey), and the
downlink is back at FA1.  Mininet + three charons (the lab of ``test_strongswan.py``)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.core.vpn import new_psk
# (``lab`` is a fixture; ``pytestmark``: root, charon and ping, as that lab needs)
from tests.integration.test_strongswan import (  # noqa: F401
    CN, MN_HOA, Lab, _mn_at, counters, down, lab, mn_tunnel, ping, promote, pytestmark,
    report, static_tunnel, up)


def _ids(the_lab: Lab, gw: str, tid: str) -> tuple[str, list[str]]:
    st = the_lab.gws[gw].tunnel(tid)
    assert st is not None, f"{gw}: {tid} gone"
    return st.unique_id, [c.unique_id for c in st.children if c.state == "INSTALLED"]


def test_the_tunnel_the_mn_left_stands_on_its_live_child_sa(lab: Lab) -> None:  # noqa: F811
    h = lab.hosts
    if not lab.gws["ha"].uses_libipsec():
        pytest.skip("kernel XFRM: standing CHILD_SAs are kernel-libipsec's")
    static, fa1_ha, fa2_ha = static_tunnel(), mn_tunnel("fa"), mn_tunnel("fa2")
    tid1, tid2 = fa1_ha.tunnel_id, fa2_ha.tunnel_id
    lefts: list[float] = []
    try:
        up(lab, static)
        for _ in range(2):
            up(lab, fa1_ha)
            assert ping(h["mn"], CN)[0]
            _mn_at(h, fa2=True)                              # the move to FA2
            up(lab, fa2_ha)
            assert ping(h["cn"], MN_HOA, count=3)[0]         # the downlink via FA2
            before = {gw: _ids(lab, gw, tid1) for gw in ("ha", "fa")}
            prepared = replace(fa1_ha, psk=new_psk())        # the HA's preparation
            for gw in sorted(prepared.ends(), key=lambda g: g == prepared.initiator):
                left = lab.gws[gw].stand_live(prepared.side_for(gw))
                assert left is not None and left > 0, (gw, left)
                lefts.append(left)
            # nothing made or deleted: the same IKE_SA and CHILD_SA at both ends
            assert {gw: _ids(lab, gw, tid1) for gw in ("ha", "fa")} == before
            # the HA's downlink stays with FA2: nothing out on FA1's SA
            out1 = counters(lab, "ha", tid1)[1]
            ok, out = ping(h["cn"], MN_HOA, count=10)
            assert ok, out
            assert counters(lab, "ha", tid1)[1] == out1, "the kept SA took the downlink"
            # the move back promotes it: the move's key, then the HA's rekey
            _mn_at(h, fa2=False)
            promote(lab, replace(fa1_ha, psk=new_psk()))
            out2 = counters(lab, "ha", tid2)[1]
            assert ping(h["cn"], MN_HOA, count=3)[0]         # the downlink back at FA1
            assert ping(h["mn"], CN, count=3)[0]
            assert counters(lab, "ha", tid2)[1] == out2, "FA2's SA kept the downlink"
            down(lab, fa2_ha)
            down(lab, fa1_ha)
        report("kept standing: s until charon's own rekey: "
               + ", ".join(f"{x:.0f}" for x in lefts))
    finally:
        for t in (fa1_ha, fa2_ha, static):
            down(lab, t)
        _mn_at(h, fa2=False)
